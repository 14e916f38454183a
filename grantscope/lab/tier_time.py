"""The real-Xen tier's time bound, handed down to each test's timeout.

``scripts/test-all.sh`` gives the whole tier (dom0's boot included) ``TIER_TIMEOUT`` seconds and
passes its deadline into dom0 as ``GRANTSCOPE_XEN_DEADLINE`` (seconds since the epoch).
tests/xen/conftest.py cuts each test's pytest-timeout to what is left, so a hung test fails on
its own and pytest still writes its report, instead of the lab run being killed with no report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEADLINE_ENV = "GRANTSCOPE_XEN_DEADLINE"
# scripts/test-all.sh's default GRANTSCOPE_XEN_TIER_TIMEOUT (a unit test keeps them equal).
TIER_TIMEOUT = 4800
# What the tier spends outside the tests: dom0's boot (the lab's boot bound,
# grantscope.lab.runner.DEFAULT_BOOT_TIMEOUT) and, after the last test, writing the report,
# collecting the logs and powering off.
BOOT_ALLOWANCE = 480
REPORT_MARGIN = 90
# No single test may be allowed longer than this (unit-tested against every timeout in tests/xen).
LONGEST_TEST = TIER_TIMEOUT - BOOT_ALLOWANCE - REPORT_MARGIN
# A test that starts with less than this left still gets this long: it fails by its timeout.
LEAST = 1.0
# A test that would start with less than this left does not start: the tier stops there, and
# the tests it did not run count as failed (scripts/junit_summary.py counts them as missing).  The
# stop still tears down the module's fixtures (destroying guests): they get this long.
LEAST_TO_START = 60.0


def deadline(environ: Mapping[str, str] = os.environ) -> float | None:
    """The tier's deadline (epoch seconds) from the environment; None if there is none."""
    raw = environ.get(DEADLINE_ENV, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def capped_timeout(own: float | None, tier_deadline: float | None, now: float) -> float | None:
    """The timeout a test may have: its own (None/0: none), cut to what the tier has left.

    Returns None when neither bounds it.  The report margin is kept back so that pytest can
    still write its report after a test that timed out.
    """
    bounded = own if own else None
    if tier_deadline is None:
        return bounded
    left = max(LEAST, tier_deadline - now - REPORT_MARGIN)
    return left if bounded is None else min(bounded, left)


def time_is_up(tier_deadline: float | None, now: float) -> bool:
    """True when the tier has too little left to start another test (see LEAST_TO_START)."""
    return tier_deadline is not None and tier_deadline - now - REPORT_MARGIN < LEAST_TO_START
