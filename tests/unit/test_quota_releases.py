"""``xenstore-control quota`` as each release's C xenstored prints it, recorded in the lab
(tests/unit/fixtures/dumps/lab-xen-*/xenstore-control-quota*.txt): Debian 11's 4.14 (with the
quota command backported), 4.17, and 4.20, which adds each counter's high-water mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantscope.model.toolout import parse_quota_settings, parse_quota_usage
from grantscope.sources import xsdaemon
from grantscope.sources.hvdump import ToolResult
from grantscope.sources.quota import read_quota

DUMPS = Path(__file__).parent / "fixtures" / "dumps"


def recorded(release: str, name: str) -> str:
    return (DUMPS / f"lab-xen-{release}" / name).read_text()


@pytest.mark.parametrize("release", ["4.14", "4.20"])
def test_settings_of_each_release_parse_whole(release: str) -> None:
    limits, bad = parse_quota_settings(recorded(release, "xenstore-control-quota.txt"))
    assert bad == ()
    assert (limits["nodes"], limits["watches"], limits["transactions"]) == (1000, 128, 10)
    assert (limits["outstanding"], limits["memory"]) == (20, 2621440)


def test_usage_of_4_14_has_no_peaks() -> None:
    found = parse_quota_usage(recorded("4.14", "xenstore-control-quota-0.txt"), 0)
    assert found.unparsed == ()
    assert found.usage == {"nodes": 12, "watches": 6, "transactions": 0, "outstanding": 0,
                           "memory": 1023}
    assert found.peak == {}


def test_usage_of_4_20_keeps_the_value_and_its_peak_apart() -> None:
    # "nodes : 17 (max 17)": the usage is 17 now, the most since xenstored started is 17
    found = parse_quota_usage(recorded("4.20", "xenstore-control-quota-0.txt"), 0)
    assert found.unparsed == ()
    assert (found.usage["nodes"], found.peak["nodes"]) == (17, 17)
    assert (found.usage["memory"], found.peak["memory"]) == (1137, 1697)
    assert (found.usage["outstanding"], found.peak["outstanding"]) == (0, 1)
    assert set(found.usage) == set(found.peak) and len(found.usage) == 9


def test_a_peak_that_is_not_a_number_is_reported_not_guessed() -> None:
    found = parse_quota_usage("Domain 3:\nnodes : 17 (max lots)\nwatches : 2\n", 3)
    assert found.usage == {"watches": 2} and found.unparsed == ("nodes : 17 (max lots)",)


def test_read_quota_on_4_20_gives_the_finding_its_node_count() -> None:
    answers = {("quota",): recorded("4.20", "xenstore-control-quota.txt"),
               ("quota", "0"): recorded("4.20", "xenstore-control-quota-0.txt")}

    def ask(args: object) -> ToolResult:
        key = tuple(args)  # type: ignore[arg-type]
        return ToolResult(("xenstore CONTROL", *key), True, answers[key], "")

    snap = read_quota([0], ask=ask, daemon=xsdaemon.C_XENSTORED)
    assert snap.limits_source == "xenstored" and snap.limits["nodes"] == 1000
    assert snap.usage[0].usage["nodes"] == 17 and snap.usage[0].peak["nodes"] == 17
