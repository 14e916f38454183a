"""When a lab guest's death may be retried (grantscope.lab.guest_death): narrow, and said."""

from __future__ import annotations

import pytest

from grantscope.lab.errors import LabError
from grantscope.lab.guest_death import BOOT_RETRIES, may_retry, xen_death_line

DMESG = """\
(XEN) d4v0 Triple fault - invoking HVM shutdown action 1
(XEN) *** Dumping Dom5 vcpu#0 state: ***
(XEN) d5v0 upcall vector f3
(XEN) d15v0 Triple fault - invoking HVM shutdown action 1
(XEN) Domain 7 (vcpu#0) crashed on cpu#1:
(XEN) Domain 8 reported crashed by domain 0 on cpu#0:
"""
TRIPLE = "(XEN) d15v0 Triple fault - invoking HVM shutdown action 1"


def test_only_the_domains_own_death_line_counts() -> None:
    assert xen_death_line(DMESG, 15) == TRIPLE
    assert xen_death_line(DMESG, 4) == "(XEN) d4v0 Triple fault - invoking HVM shutdown action 1"
    assert xen_death_line(DMESG, 7) == "(XEN) Domain 7 (vcpu#0) crashed on cpu#1:"
    assert xen_death_line(DMESG, 8) == "(XEN) Domain 8 reported crashed by domain 0 on cpu#0:"
    # d5 only has other lines; d1 is a prefix of d15 and must not match its death.
    assert xen_death_line(DMESG, 5) is None
    assert xen_death_line(DMESG, 1) is None
    assert xen_death_line("", 15) is None


@pytest.mark.parametrize("kind", ["pvh", "hvm"])
def test_a_logged_boot_death_is_booted_again_up_to_three_times(kind: str) -> None:
    for retries in range(BOOT_RETRIES):
        decision = may_retry(kind, booting=True, retries=retries, death=TRIPLE)
        assert decision.retry, decision
        assert f"retry {retries + 1} of at most 3" in decision.why and TRIPLE in decision.why
    decision = may_retry(kind, booting=True, retries=3, death=TRIPLE)
    assert not decision.retry and "after 3 retries" in decision.why


def test_a_logged_death_during_a_test_is_retried_once() -> None:
    error = LabError("guest gs-pyhvm died while running grantscope notify")
    assert may_retry("hvm", booting=False, retries=0, death=TRIPLE, error=error).retry
    again = may_retry("hvm", booting=False, retries=1, death=TRIPLE, error=error)
    assert not again.retry and "at most 1" in again.why


def test_pv_guests_and_unlogged_deaths_are_never_retried() -> None:
    pv = may_retry("pv", booting=True, retries=0, death=TRIPLE)
    assert not pv.retry and "pv guest" in pv.why
    silent = may_retry("pvh", booting=True, retries=0, death=None)
    assert not silent.retry and "Xen logged no" in silent.why


def test_an_assertion_failure_is_never_retried() -> None:
    decision = may_retry("hvm", booting=False, retries=0, death=TRIPLE,
                         error=AssertionError("doc['ok'] is False"))
    assert not decision.retry and "assertion" in decision.why
