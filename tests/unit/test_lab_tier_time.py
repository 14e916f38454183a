"""The real-Xen tier's timeouts fit inside its time bound."""

from __future__ import annotations

import re
from pathlib import Path

from grantscope.lab import tier_time
from grantscope.lab.runner import DEFAULT_BOOT_TIMEOUT
from grantscope.lab.tier_time import capped_timeout

ROOT = Path(__file__).resolve().parents[2]


def test_test_all_and_the_module_agree_on_the_tier_bound() -> None:
    script = (ROOT / "scripts" / "test-all.sh").read_text()
    (default,) = re.findall(r"GRANTSCOPE_XEN_TIER_TIMEOUT:-(\d+)", script)
    assert int(default) == tier_time.TIER_TIMEOUT
    assert tier_time.BOOT_ALLOWANCE >= DEFAULT_BOOT_TIMEOUT
    assert "GRANTSCOPE_XEN_DEADLINE=" in script and tier_time.DEADLINE_ENV in script
    per_test = re.findall(r"--timeout=(\d+)", script)
    assert per_test, "no pytest --timeout in test-all.sh"
    assert all(int(t) <= tier_time.LONGEST_TEST for t in per_test), per_test


def test_every_timeout_in_the_real_xen_tier_fits_after_the_boot() -> None:
    found = {}
    for path in sorted((ROOT / "tests" / "xen").glob("*.py")):
        for value in re.findall(r"mark\.timeout\((\d+)", path.read_text()):
            found[f"{path.name}:{value}"] = int(value)
    assert found, "no pytest.mark.timeout in tests/xen: this check reads nothing"
    too_long = {where: s for where, s in found.items() if s > tier_time.LONGEST_TEST}
    assert not too_long, (f"longer than the tier leaves after dom0's boot and the report "
                          f"({tier_time.LONGEST_TEST} s): {too_long}")


def test_a_test_gets_at_most_what_the_tier_has_left() -> None:
    now = 1000.0
    margin = tier_time.REPORT_MARGIN
    assert capped_timeout(900, None, now) == 900
    assert capped_timeout(None, None, now) is None
    assert capped_timeout(0, None, now) is None
    assert capped_timeout(900, now + 5000, now) == 900
    assert capped_timeout(1500, now + 600, now) == 600 - margin
    assert capped_timeout(None, now + 600, now) == 600 - margin
    # Past the deadline: the test still gets a (tiny) timeout, never none.
    assert capped_timeout(900, now - 50, now) == tier_time.LEAST


def test_the_deadline_comes_from_the_environment() -> None:
    assert tier_time.deadline({}) is None
    assert tier_time.deadline({tier_time.DEADLINE_ENV: "1700000000"}) == 1700000000.0
    assert tier_time.deadline({tier_time.DEADLINE_ENV: "soon"}) is None


def test_no_test_starts_once_the_tier_has_too_little_left() -> None:
    deadline = 10_000.0
    enough = deadline - tier_time.REPORT_MARGIN - tier_time.LEAST_TO_START
    assert not tier_time.time_is_up(None, deadline)
    assert not tier_time.time_is_up(deadline, enough - 1)
    assert tier_time.time_is_up(deadline, enough + 1)
    assert tier_time.time_is_up(deadline, deadline + 5)
