"""How many CPUs the lab emulates: one when a PVH or HVM guest runs (issue 18)."""

from __future__ import annotations

import pytest

from grantscope.cli.lab import default_cpus
from grantscope.lab.paths import GUEST_TYPES_ENV


def test_a_pvh_or_hvm_guest_gets_a_lab_with_one_emulated_cpu() -> None:
    assert default_cpus("pvh") == 1
    assert default_cpus("hvm:offer") == 1
    assert default_cpus("pvh:agent") == 1


def test_guest_type_tests_that_name_pvh_or_hvm_get_one_emulated_cpu() -> None:
    assert default_cpus(None, "pvh,hvm") == 1
    assert default_cpus(None, " HVM ") == 1
    assert default_cpus("offer", "pv,pvh") == 1


def test_the_environment_names_the_guest_types_when_none_are_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GUEST_TYPES_ENV, "pv,hvm")
    assert default_cpus(None) == 1
    monkeypatch.setenv(GUEST_TYPES_ENV, "pv")
    assert default_cpus(None) == 2


def test_otherwise_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GUEST_TYPES_ENV, raising=False)
    assert default_cpus(None) == 2
    assert default_cpus("offer") == 2
    assert default_cpus("pv:echo") == 2
    assert default_cpus(None, "pv") == 2
    assert default_cpus(None, "") == 2
