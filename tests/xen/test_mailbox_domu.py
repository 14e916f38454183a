"""The seed scenario, both ways, between dom0's CLI and a real PV domU peer.

    grantscope lab run -- .venv/bin/pytest -m xen tests/xen/test_mailbox_domu.py

dom0 -> domU: the domU grants a page and offers a port; ``grantscope map`` sees its greeting and
``grantscope notify --wait`` gets its answer.  domU -> dom0: ``grantscope offer --publish`` in
dom0; the domU maps the page, writes a reply into it and notifies back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grantscope.lab.domu import DomU

pytestmark = pytest.mark.xen

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))


def gs_json(*args: str, timeout: float = 180) -> dict[str, Any]:
    proc = subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_dom0_maps_the_domu_greeting(offer_domu: DomU) -> None:
    home = offer_domu.home
    gref = int(offer_domu.wait_key("data/gref"))
    out = gs_json("map", "--domid", str(offer_domu.domid), "--gref", f"xs:{home}/data/gref",
                  "--json")
    assert out["ok"] is True
    assert out["domid"] == offer_domu.domid and out["grefs"] == [gref]
    assert bytes.fromhex(out["head"]).startswith(b"hello from the offer peer\0")


def test_dom0_notify_gets_the_domu_answer(offer_domu: DomU) -> None:
    home = offer_domu.home
    before = int(offer_domu.read_key("data/notifications") or "0")
    out = gs_json("notify", "--domid", f"xs:{home}/domid", "--port", f"xs:{home}/data/port",
                  "--wait", "10", "--json")
    assert out["ok"] is True
    assert out["notified_back"] is True
    assert out["roundtrip_us"] is not None and out["roundtrip_us"] > 0
    # The domU really saw exactly this notification (not the event Xen raises at bind time).
    offer_domu.wait_value("data/notifications", str(before + 1), timeout=30)
    assert offer_domu.read_key("data/result") == "hello from the offer peer"


def test_dom0_offer_the_domu_maps_replies_and_notifies_back(
    domu_factory: Callable[..., DomU],
) -> None:
    peer = domu_factory("map", path="data/offer", reply="reply from the map peer")
    peer.wait_value("data/status", "waiting")
    out = gs_json("offer", "--to", str(peer.domid), "--writable", "--text", "hello",
                  "--publish", f"{peer.home}/data/offer", "--wait", "60", "--json")
    assert out["ok"] is True and out["domid"] == peer.domid
    assert out["notified"] is True
    assert bytes.fromhex(out["page_head"]).startswith(b"reply from the map peer\0")
    assert peer.read_key("data/seen") == "hello"
    assert peer.read_key("data/status") == "replied"
    # offer removes what it published when it exits.
    assert peer.read_key("data/offer/gref") is None


def test_read_only_offer_the_domu_can_only_answer_by_notify(
    domu_factory: Callable[..., DomU],
) -> None:
    peer = domu_factory("map", path="data/offer", reply="read-only reply")
    peer.wait_value("data/status", "waiting")
    out = gs_json("offer", "--to", str(peer.domid), "--text", "hello",
                  "--publish", f"{peer.home}/data/offer", "--wait", "60", "--json")
    assert out["notified"] is True
    # The grant was read-only: the domU's writable map failed, the page still says hello.
    assert bytes.fromhex(out["page_head"]).startswith(b"hello\0")
    assert peer.read_key("data/status") == "replied-readonly"
    assert peer.read_key("data/seen") == "hello"
    assert "writable map failed" in peer.console_log()
