"""When a lab guest that died may be booted or run again, and when never.

Under QEMU's emulation PVH and HVM lab guests sometimes die by themselves (Xen logs
``dNv0 Triple fault``; docs/LAB.md); PV guests never did.  A retry hides whatever killed the
guest, so it is narrow and always said:

- only a death Xen logged for that domain (:func:`xen_death_line`), only for PVH/HVM guests;
- a guest that died while booting, before its agent answered (nothing of grantscope ran in it),
  may be booted again up to :data:`BOOT_RETRIES` times;
- a death during a test, after grantscope acted in the guest, is retried at most
  :data:`TEST_RETRIES` time;
- an assertion failure (about grantscope's own output) is never retried.

Every retry is recorded in the JUnit report as a ``guest_death_retry`` property
(:data:`RETRY_PROPERTY`), and the suite's summary (scripts/junit_summary.py) counts them per
guest type.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

__all__ = ["BOOT_RETRIES", "RETRIED_KINDS", "RETRY_PROPERTY", "TEST_RETRIES", "Decision",
           "logged_death", "may_retry", "xen_death_line"]

BOOT_RETRIES = 3
TEST_RETRIES = 1
RETRIED_KINDS = frozenset({"pvh", "hvm"})
# The JUnit property (pytest's record_property) a test writes once per guest death it retried.
RETRY_PROPERTY = "guest_death_retry"


def xen_death_line(dmesg: str, domid: int) -> str | None:
    """The line of ``xl dmesg`` output in which Xen logged domain ``domid``'s death, or None.

    A triple fault (``d5v0 Triple fault - invoking HVM shutdown action 1``) or a domain crash
    (``Domain 5 (vcpu#0) crashed on cpu#1:``, ``Domain 5 reported crashed by domain 0 ...``).
    """
    death = re.compile(rf"\bd{domid}v\d+ Triple fault\b|\bDomain {domid} (\(vcpu#\d+\) crashed"
                       rf"|reported crashed)")
    for line in dmesg.splitlines():
        if death.search(line):
            return line.strip()
    return None


def logged_death(domid: int | None) -> str | None:
    """What Xen logged about domain ``domid``'s death (``xl dmesg``), None if nothing."""
    if domid is None:
        return None
    try:
        proc = subprocess.run(["xl", "dmesg"], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return xen_death_line(proc.stdout, domid) if proc.returncode == 0 else None


@dataclass(frozen=True)
class Decision:
    """Whether to boot or run again, and why (said in the failure or recorded with the retry)."""

    retry: bool
    why: str


def may_retry(kind: str, *, booting: bool, retries: int, death: str | None,
              error: BaseException | None = None) -> Decision:
    """May a guest of ``kind`` that died be booted (``booting``) or its test run again?

    ``retries`` is how many times this boot or test was already retried; ``death`` is what
    Xen logged (:func:`logged_death`); ``error`` is what the test raised.
    """
    if isinstance(error, AssertionError):
        return Decision(False, "an assertion failure is never retried, even when the guest died")
    if kind not in RETRIED_KINDS:
        return Decision(False, f"a {kind} guest that died is never retried (only PVH/HVM "
                               "guests die by themselves in the lab)")
    if death is None:
        return Decision(False, "Xen logged no triple fault or crash of the guest: its death "
                               "is not the lab's and is not retried")
    limit = BOOT_RETRIES if booting else TEST_RETRIES
    stage = "while booting" if booting else "during a test"
    if retries >= limit:
        return Decision(False, f"died {stage} again after {retries} retries (at most {limit})")
    return Decision(True, f"died {stage} (retry {retries + 1} of at most {limit}); "
                          f"Xen: {death}")
