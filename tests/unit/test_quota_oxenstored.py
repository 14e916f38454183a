"""XenStore quota under oxenstored (issue 15): limits from its config, node usage from its answer.

The answers are the ones oxenstored 4.17 gave in the lab to CONTROL ``quota`` (``OK``) and
``quota 0`` (``dom0 quota: 16/1000``); here they come from a stand-in for the request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from grantscope.sources.hvdump import ToolResult
from grantscope.sources.quota import oxenstored_limits, parse_oxenstored_usage, read_quota

CONF = """# oxenstored.conf
pid-file = /var/run/xen/xenstored.pid
quota-activate = true
quota-maxentity = 1000
quota-maxsize = 2048
quota-maxwatch = 100   # watches
quota-transaction = 10
quota-maxoutstanding = 1024
# quota-maxwatch = 5
"""


def _answers(answer: Callable[[Sequence[str]], str]) -> Callable[[Sequence[str]], ToolResult]:
    """A CONTROL stand-in: ``answer(args)`` is xenstored's text for ``quota [DOMID]``."""
    return lambda args: ToolResult(("xenstore CONTROL", *args), True, answer(args), "")


def test_limits_come_from_the_config_file() -> None:
    assert oxenstored_limits(CONF) == {"nodes": 1000, "watches": 100, "transactions": 10,
                                       "outstanding": 1024}


def test_usage_is_the_node_count_of_that_domain() -> None:
    usage, limit = parse_oxenstored_usage("dom0 quota: 16/1000\n", 0)
    assert usage is not None and usage.usage == {"nodes": 16} and limit == 1000
    assert parse_oxenstored_usage("dom3 quota: not set", 3) == (None, None)
    assert parse_oxenstored_usage("dom3 quota: 1/2", 4) == (None, None)


def test_read_quota_under_oxenstored(tmp_path: Path) -> None:
    conf = tmp_path / "oxenstored.conf"
    conf.write_text(CONF.replace("maxentity = 1000", "maxentity = 900"))
    ask = _answers(lambda a: "dom0 quota: 16/1000\n" if a == ["quota", "0"] else
                   f"dom{a[1]} quota: not set\n")
    snap = read_quota([0, 5], ask=ask, daemon="oxenstored", oxenstored_conf=str(conf))
    assert [(u.domid, u.usage) for u in snap.usage] == [(0, {"nodes": 16})]
    assert snap.limits["nodes"] == 1000          # the daemon's own answer wins over the file
    assert snap.limits["watches"] == 100
    assert snap.limits_source == f"oxenstored ({conf})"
    assert any("d5" in p and "not set" in p for p in snap.unavailable)
    assert any("only nodes" in p for p in snap.unavailable)


def test_an_unreadable_config_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    ask = _answers(lambda a: f"dom{a[1]} quota: 3/1000\n")
    snap = read_quota([1], ask=ask, daemon="oxenstored",
                      oxenstored_conf=str(tmp_path / "absent.conf"))
    assert snap.limits == {"nodes": 1000}
    assert any("absent.conf" in p for p in snap.unavailable)


def test_c_xenstored_keeps_its_own_path() -> None:
    ask = _answers(lambda a: "Quota settings:\nnodes : 1000 Nodes per domain\n" if len(a) == 1
                   else f"Domain {a[1]}:\nnodes : 7\n")
    snap = read_quota([2], ask=ask, daemon="xenstored")
    assert snap.limits_source == "xenstored" and snap.limits == {"nodes": 1000}
    assert [(u.domid, u.usage) for u in snap.usage] == [(2, {"nodes": 7})]
