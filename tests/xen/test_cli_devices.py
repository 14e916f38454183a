"""doctor, map, offer, notify and pingpong as processes, against real Xen in dom0.

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_cli_devices.py

Each CLI process costs seconds under TCG, so only what needs the process boundary
(exit codes, stdout format, signals, cleanup of published XenStore nodes) is here.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope.lab import configs
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.xenstore import XenStore

pytestmark = pytest.mark.xen

GRANTSCOPE = [str(Path(sys.executable).with_name("grantscope"))]
BASE = "/local/domain/0/data/grantscope-test"


def gs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GRANTSCOPE, *args], capture_output=True, text=True, timeout=timeout)


def gs_json(*args: str, code: int = 0) -> dict:
    proc = gs(*args, "--json")
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture()
def store() -> Iterator[XenStore]:
    with XenStore.open() as xs:
        yield xs


def wait_node(store: XenStore, path: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = store.read_or_none(path)
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{path} never appeared")


def start_offer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*GRANTSCOPE, "offer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_doctor_says_usable_dom0() -> None:
    data = gs_json("doctor")
    assert data["ok"] is True and data["xen"] is True
    assert data["role"] == "dom0" and data["domid"] == 0
    # What the configuration booted: Xen 4.17, Linux 6.1, Python 3.11 on bookworm; Xen 4.20,
    # Linux 6.12, Python 3.13 on trixie (grantscope/lab/configs.py).
    config = configs.booted()
    assert data["xen_version"].startswith(config["xen"] + ".")
    assert data["xenstored"] == config["xenstored"]
    summaries = {c["name"]: c["summary"] for c in data["checks"]}
    assert summaries["kernel"].startswith(f"Linux {config['kernel']}.")
    assert summaries["python"].startswith(f"Python {config['python']}.")
    names = {c["name"]: c["status"] for c in data["checks"]}
    for node in ("gntdev", "gntalloc", "evtchn"):
        assert names[f"device {node}"] == "ok"
    assert names["xenstore"] == "ok"
    text = gs("doctor")
    assert text.returncode == 0 and "usable: dom0 0" in text.stdout


def test_offer_publish_then_map_notify_and_cleanup(store: XenStore) -> None:
    path = f"{BASE}/a"
    offer = start_offer("--to", "0", "--writable", "--text", "hello from offer",
                        "--publish", path, "--wait", "900", "--json")
    try:
        grefs = wait_node(store, f"{path}/gref")
        port = int(wait_node(store, f"{path}/port"))
        mapped = gs_json("map", "--domid", "0", "--gref", f"xs:{path}/gref")
        assert mapped["ok"] is True and mapped["domid"] == 0
        assert mapped["grefs"] == [int(g) for g in grefs.split()]
        assert bytes.fromhex(mapped["head"]).startswith(b"hello from offer")
        assert len(mapped["head"]) == 128
        text = gs("map", "--domid", "0", "--gref", f"xs:{path}/gref", "--ro")
        assert text.returncode == 0 and "hello from offer" in text.stdout
        note = gs_json("notify", "--domid", "0", "--port", f"xs:{path}/port")
        assert note["ok"] is True and note["remote_port"] == port
        out, err = offer.communicate(timeout=60)
    finally:
        if offer.poll() is None:
            offer.kill()
    assert offer.returncode == 0, err
    result = json.loads(out)
    assert result["ok"] is True and result["notified"] is True
    assert result["port"] == port
    assert bytes.fromhex(result["page_head"]).startswith(b"hello from offer")
    assert store.read_or_none(f"{path}/gref") is None
    assert store.read_or_none(f"{path}/port") is None


def test_offer_then_map_with_their_defaults_work_together(store: XenStore) -> None:
    """Issue 13: both ends are read-only by default, so the defaults agree on real Xen."""
    path = f"{BASE}/defaults"
    offer = start_offer("--to", "0", "--text", "read-only twice.", "--publish", path,
                        "--wait", "900")
    try:
        wait_node(store, f"{path}/gref")
        mapped = gs("map", "--domid", "0", "--gref", f"xs:{path}/gref")
        assert mapped.returncode == 0, (mapped.stdout, mapped.stderr)
        assert "read-only" in mapped.stdout and "read-only twice." in mapped.stdout
        # asking for more than the grant gives fails, and says what Xen said
        writable = gs("map", "--domid", "0", "--gref", f"xs:{path}/gref", "--writable")
        assert writable.returncode == 1, (writable.stdout, writable.stderr)
        assert "Traceback" not in writable.stderr and writable.stderr.strip()
    finally:
        offer.send_signal(signal.SIGTERM)
        offer.communicate(timeout=60)
    assert store.read_or_none(f"{path}/gref") is None


def test_offer_of_several_pages_grants_each_in_order(store: XenStore) -> None:
    """``offer --pages 3``: three grefs published in page order, the text running on from one
    page into the next, each page mappable by its own gref and all three as one mapping."""
    path = f"{BASE}/pages"
    text = "A" * 4090 + "second page"
    offer = start_offer("--to", "0", "--pages", "3", "--text", text, "--publish", path,
                        "--wait", "900", "--json")
    try:
        grefs = [int(g) for g in wait_node(store, f"{path}/gref").split()]
        assert len(grefs) == 3 and len(set(grefs)) == 3, grefs
        whole = gs_json("map", "--domid", "0", "--gref", f"xs:{path}/gref", "--ro")
        assert whole["grefs"] == grefs
        assert bytes.fromhex(whole["head"]) == b"A" * 64
        second = gs_json("map", "--domid", "0", "--gref", str(grefs[1]), "--ro")
        assert bytes.fromhex(second["head"]).startswith(b" page\0")
        third = gs_json("map", "--domid", "0", "--gref", str(grefs[2]), "--ro")
        assert bytes.fromhex(third["head"]) == b"\0" * 64  # granted, nothing written
        gs_json("notify", "--domid", "0", "--port", f"xs:{path}/port")
        out, err = offer.communicate(timeout=60)
    finally:
        if offer.poll() is None:
            offer.kill()
    assert offer.returncode == 0, err
    result = json.loads(out)
    assert result["grefs"] == grefs and result["notified"] is True
    assert store.read_or_none(path) is None


def test_probe_run_step_by_step_stops_on_q_and_removes_what_it_published(
        store: XenStore) -> None:
    """``probe run --step``: one step per Enter; q after the publish step stops the probe, and
    the cleanup removes the XenStore nodes it wrote (the grant and port go with it)."""
    path = f"{BASE}/step"
    proc = subprocess.Popen([*GRANTSCOPE, "probe", "run", "--step", "--json", "offer-page",
                             "domid=0", f"publish={path}", "message=one step at a time"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    stderr = proc.stderr.fileno()
    prompts = b""

    def next_prompt(number: int) -> bytes:
        """The prompts read so far, once the one for step ``number`` is there (stderr)."""
        nonlocal prompts
        deadline = time.monotonic() + 120
        while f"next {number}/".encode() not in prompts:
            assert time.monotonic() < deadline and proc.poll() is None, (prompts, proc.poll())
            readable, _, _ = select.select([stderr], [], [], 1.0)  # so the deadline can fire
            if readable:
                prompts += os.read(stderr, 4096)
        return prompts

    try:
        assert b"next 1/5: grant a page (changes state)" in next_prompt(1)
        for number in (1, 2, 3, 4):
            assert store.read_or_none(path) is None  # nothing published before step 4 runs
            proc.stdin.write(b"\n")  # Enter runs step `number`; then the next one is asked
            proc.stdin.flush()
            next_prompt(number + 1)
        gref = int(wait_node(store, f"{path}/gref", timeout=5))  # step 4 published
        mapped = gs_json("map", "--domid", "0", "--gref", str(gref), "--ro")
        assert bytes.fromhex(mapped["head"]).startswith(b"one step at a time")
        out, _ = proc.communicate(input=b"q\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == 1, prompts  # stopped before the end: not a completed run
    data = json.loads(out)
    assert data["outcome"] == "stopped"
    assert [s["name"] for s in data["steps"]] == [
        "grant a page", "write the message into the offered page", "bind an unbound port",
        "publish in XenStore"]
    assert data["not_run"] == ["read the offered page"]
    assert data["cleanup"] and all(c["ok"] for c in data["cleanup"]), data["cleanup"]
    assert store.read_or_none(path) is None


def test_map_failure_json_names_the_grant_status() -> None:
    with GrantOffer(7, 1) as offer:
        data = gs_json("map", "--domid", "0", "--gref", str(offer.grefs[0]), code=1)
    assert data["ok"] is False
    err = data["error"]
    assert err["errno"] == 22 and err["call"] == "mmap"
    assert err["gnttab_status"] == -1
    assert "general error" in err["explanation"]
    text = gs("map", "--domid", "0", "--gref", "4000")
    assert text.returncode == 1 and "-3 bad gntref" in text.stderr
    assert "Traceback" not in text.stderr


def _adjacent_offer(held: contextlib.ExitStack) -> GrantOffer:
    """A 2-page offer to dom0 whose grefs are N and N+1.  The kernel reuses freed refs first,
    so after earlier tests its free list may be fragmented: offers that are not adjacent are
    held (in ``held``) until the list reaches refs never used."""
    tried = []
    for _ in range(16):
        offer = held.enter_context(GrantOffer(0, 2, writable=True))
        if sorted(offer.grefs) == [min(offer.grefs), min(offer.grefs) + 1]:
            return offer
        tried.append(offer.grefs)
    pytest.fail(f"gntalloc gave no adjacent grefs in 16 offers: {tried}")


def test_map_consecutive_refs_with_count() -> None:
    with contextlib.ExitStack() as held:
        offer = _adjacent_offer(held)
        low = min(offer.grefs)
        # gntalloc hands out refs in any order: mark the page behind the lower ref.
        offer.write(offer.grefs.index(low) * 4096, b"lower-ref")
        data = gs_json("map", "--domid", "0", "--gref", str(low), "--count", "2")
        assert data["grefs"] == [low, low + 1]
        assert bytes.fromhex(data["head"]).startswith(b"lower-ref")


def test_notify_wait_gets_answer_from_local_echo() -> None:
    with EventChannel() as peer:
        port = peer.bind_unbound(0)
        stop = threading.Event()

        def echo() -> None:
            while not stop.is_set():
                if port in peer.wait(0.2):
                    peer.notify(port)

        t = threading.Thread(target=echo, daemon=True)
        t.start()
        try:
            data = gs_json("notify", "--domid", "0", "--port", str(port), "--wait", "10")
        finally:
            stop.set()
            t.join(5)
    assert data["notified_back"] is True
    assert data["roundtrip_us"] > 0


def test_notify_wait_without_answer_exits_1() -> None:
    with EventChannel() as peer:
        port = peer.bind_unbound(0)
        data = gs_json("notify", "--domid", "0", "--port", str(port), "--wait", "1", code=1)
        # The peer did get the notification itself.
        assert peer.wait(5) == [port]
    assert data["ok"] is False and data["notified_back"] is False
    assert data["roundtrip_us"] is None


def test_pingpong_against_offer_echo_then_sigterm_cleans_up(store: XenStore) -> None:
    path = f"{BASE}/pp"
    offer = start_offer("--to", "0", "--publish", path, "--wait", "300", "--echo", "--json")
    try:
        wait_node(store, f"{path}/port")
        data = gs_json("pingpong", "--domid", "0", "--port", f"xs:{path}/port",
                       "--count", "30")
        assert data["ok"] is True and data["count"] == 30
        assert 0 < data["min_us"] <= data["p50_us"] <= data["p99_us"] <= data["max_us"]
        # The install compiled the C loop: it times the round trips, and the output says so.
        assert data["loop"] == "c" and "loop_note" not in data, data
        text = gs("pingpong", "--domid", "0", "--port", f"xs:{path}/port", "--count", "5")
        assert text.returncode == 0, text.stderr
        assert text.stdout.splitlines()[1] == "  timed by the C loop", text.stdout
        offer.send_signal(signal.SIGTERM)
        out, err = offer.communicate(timeout=60)
    finally:
        if offer.poll() is None:
            offer.kill()
    assert offer.returncode == 128 + signal.SIGTERM, err
    result = json.loads(out)
    assert result["interrupted"] == "SIGTERM"
    assert result["echoed"] >= 35  # 5 warm-up + 30 timed
    assert store.read_or_none(f"{path}/port") is None
    assert store.read_or_none(path) is None  # the offer created it, so it removed it


def test_offer_ctrl_c_cleans_up(store: XenStore) -> None:
    path = f"{BASE}/int"
    offer = start_offer("--to", "0", "--publish", path, "--wait", "300")
    try:
        assert offer.stdout is not None
        first = offer.stdout.readline()  # printed once published, right before waiting
        assert first.startswith("offered 1 page(s) to domain 0")
        assert store.read_or_none(f"{path}/gref") is not None
        time.sleep(1.0)
        offer.send_signal(signal.SIGINT)
        out, err = offer.communicate(timeout=60)
    finally:
        if offer.poll() is None:
            offer.kill()
    assert offer.returncode == 130, err
    assert "interrupted by SIGINT" in out
    assert store.read_or_none(f"{path}/gref") is None
    assert store.read_or_none(path) is None


def test_xs_spec_errors_exit_2(store: XenStore) -> None:
    store.write(f"{BASE}/bad", b"12abc")
    try:
        proc = gs("map", "--domid", "0", "--gref", f"xs:{BASE}/bad")
        assert proc.returncode == 2 and "not a decimal number" in proc.stderr
        proc = gs("notify", "--domid", "0", "--port", f"xs:{BASE}/missing")
        assert proc.returncode == 2 and "does not exist" in proc.stderr
    finally:
        store.rm(f"{BASE}/bad")
