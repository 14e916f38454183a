"""The lab's configurations: which host a ``lab run --config NAME`` boots (issue 15).

Each configuration names what it changes from the lab's base host (Debian 12: Xen 4.17,
Linux 6.1, Python 3.11, C xenstored).  The host's configurations boot the host's build and run
dom0 from the host's ``/``; one with a :class:`~grantscope.lab.release.Release` (``trixie``)
boots that release's Xen and kernel and runs dom0 from a root of that release
(grantscope/lab/release.py).  What differs travels to dom0's init as ``gs_*`` words on its kernel
command line (grantscope/lab/init/dom0-init and dom0-stage2 read them), and each run writes its
configuration into the results directory (:data:`RECORD_NAME`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grantscope.errors import UsageError
from grantscope.lab.paths import LAB_RESULTS_ENV
from grantscope.lab.release import Release

DEFAULT = "bookworm"
RECORD_NAME = "lab-config.json"

# XenStore daemons dom0's init knows how to start (the gs_xenstored word).
C_XENSTORED = "xenstored"
OXENSTORED = "oxenstored"


@dataclass(frozen=True)
class LabConfig:
    """One lab configuration: its name, what it is, and the dom0 words that make it so."""

    name: str
    summary: str
    xen: str = "4.17"
    kernel: str = "6.1"
    python: str = "3.11"
    xenstored: str = C_XENSTORED
    changes: tuple[str, ...] = field(default_factory=tuple)   # what differs from the base
    release: Release | None = None      # None: the host's own Xen, kernel and root

    def dom0_words(self) -> dict[str, str]:
        """The ``gs_*`` kernel words dom0's init reads for this configuration (a release
        configuration's root path is added by the runner, which knows where it was built)."""
        words = {"gs_config": self.name, "gs_xenstored": self.xenstored}
        if self.release is not None:
            words["gs_xen"] = self.xen
        return words

    def to_json(self) -> dict[str, Any]:
        """What a run records about its configuration."""
        return {"name": self.name, "summary": self.summary, "xen": self.xen,
                "kernel": self.kernel, "python": self.python, "xenstored": self.xenstored,
                "changes": list(self.changes),
                "release": None if self.release is None else self.release.suite}


# What xl needs for an HVM guest: the device model (qemu-system-i386 built for Xen) and the
# BIOS libxl loads (Debian's Xen looks for /usr/share/seabios/bios-256k.bin).
HVM_PACKAGES = ("qemu-system-xen", "seabios")


def _release(suite: str, xen: str, extra: tuple[str, ...] = ()) -> Release:
    """Debian ``suite`` with its Xen ``xen``: the hypervisor package and a dom0 root with that
    release's Xen tools and Python (and the ``extra`` packages)."""
    return Release(
        suite, f"xen-hypervisor-{xen}-amd64", f"boot/xen-{xen}-amd64.gz",
        # gcc and python3-dev: the install compiles pingpong's C loop, as on the host (the core
        # suite checks the C loop ran).
        root_packages=("python3", "python3-venv", "python3-dev", "gcc", "libc6-dev",
                       f"xen-utils-{xen}", "xenstore-utils", "procps", "kmod", "iproute2",
                       "strace", *extra))


CONFIGS: Mapping[str, LabConfig] = MappingProxyType({
    c.name: c for c in (
        LabConfig(DEFAULT, "Debian 12: Xen 4.17, Linux 6.1, Python 3.11, C xenstored"),
        LabConfig("bookworm-oxenstored",
                  "Debian 12 with oxenstored (the OCaml XenStore daemon of XCP-ng/XenServer)",
                  xenstored=OXENSTORED,
                  changes=("dom0's XenStore daemon is /usr/lib/xen-4.17/bin/oxenstored "
                           "(/etc/xen/oxenstored.conf) instead of the C xenstored",)),
        LabConfig("trixie", "Debian 13: Xen 4.20, Linux 6.12, Python 3.13, C xenstored",
                  xen="4.20", kernel="6.12", python="3.13",
                  changes=("Xen 4.20 and Linux 6.12 from Debian 13 (trixie)",
                           "dom0 runs from a Debian 13 root (mmdebstrap) with xen-utils-4.20 "
                           "and Python 3.13, grantscope in a venv there",
                           "that root holds the HVM device model and SeaBIOS (qemu-system-xen, "
                           "seabios), so HVM guests run there too",),
                  release=_release("trixie", "4.20", HVM_PACKAGES)),
        LabConfig("bullseye", "Debian 11: Xen 4.14, Linux 5.10, Python 3.9, C xenstored",
                  xen="4.14", kernel="5.10", python="3.9",
                  changes=("Xen 4.14 and Linux 5.10 from Debian 11 (bullseye), the oldest "
                           "long-term hosts users still run",
                           "dom0 runs from a Debian 11 root (mmdebstrap) with xen-utils-4.14 "
                           "and Python 3.9, grantscope in a venv there",),
                  release=_release("bullseye", "4.14")),
    )
})


def get(name: str | None) -> LabConfig:
    """The configuration called ``name`` (None: the default); a clear error for an unknown one."""
    key = DEFAULT if name is None else name
    try:
        return CONFIGS[key]
    except KeyError:
        known = ", ".join(CONFIGS)
        raise UsageError(f"unknown lab configuration {key!r}",
                         f"Known configurations: {known}.") from None


def record(config: LabConfig, results: Path, booted: Mapping[str, str] | None = None) -> Path:
    """Write ``config`` (and ``booted``: the exact packages and root the run boots) into the
    run's results directory; returns the file written."""
    path = results / RECORD_NAME
    data = config.to_json()
    if booted is not None:
        data["booted"] = dict(booted)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def booted() -> dict[str, Any]:
    """Inside a lab run's dom0: the configuration it was booted as (what :func:`record` wrote
    into the run's results directory, ``GRANTSCOPE_LAB_RESULTS``)."""
    data: dict[str, Any] = json.loads(
        (Path(os.environ[LAB_RESULTS_ENV]) / RECORD_NAME).read_text())
    return data
