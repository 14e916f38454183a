"""How many CPUs the lab emulates: one when a PVH or HVM guest runs (issue 18)."""

from __future__ import annotations

from grantscope.cli.lab import default_cpus


def test_a_pvh_or_hvm_guest_gets_a_lab_with_one_emulated_cpu() -> None:
    assert default_cpus("pvh") == 1
    assert default_cpus("hvm:offer") == 1
    assert default_cpus("pvh:agent") == 1


def test_otherwise_two() -> None:
    assert default_cpus(None) == 2
    assert default_cpus("offer") == 2
    assert default_cpus("pv:echo") == 2
