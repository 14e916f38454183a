"""``report`` against real Xen, INSIDE dom0 of the lab:

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_report.py

- a deliberate leak: a process offers a page (gntalloc), a peer maps it, the offering process
  is SIGKILLed: the grant stays mapped and ``report`` says so, naming the mapper;
- a deliberate storm: a peer process notifies in a loop: ``report`` names the IRQ;
- with a PV domU running, ``report --json`` shows the joined device rows;
- the dump capture reads complete g/e dumps through the real console ring.

The collection runs in this process (:func:`collect_observation`); one test spawns the CLI to
check the process boundary (exit status, one JSON document).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope.cli.report import collect_observation
from grantscope.lab.domu import DomU
from grantscope.model.findings import Thresholds, analyze
from grantscope.sources.hvdump import capture_dumps
from grantscope.sources.lsevtchn import read_lsevtchn
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntdev import GrantMapping
from grantscope.xen.xenstore import XenStore

pytestmark = pytest.mark.xen

GRANTSCOPE = [str(Path(sys.executable).with_name("grantscope"))]

OFFERER = """
import os, sys, time
from grantscope.xen.gntalloc import GrantOffer
offer = GrantOffer(0, pages=1, writable=True)
offer.write(0, b"leaked page")
sys.stdout.write(f"{offer.grefs[0]}\\n")
sys.stdout.flush()
time.sleep(600)
"""

NOTIFIER = """
import sys
from grantscope.xen.evtchn import EventChannel
ch = EventChannel()
port = ch.bind_interdomain(0, int(sys.argv[1]))
sys.stdout.write("bound\\n")
sys.stdout.flush()
while True:
    ch.notify(port)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def test_capture_reads_complete_dumps() -> None:
    cap = capture_dumps("ge")
    assert cap.unavailable == "", cap.unavailable
    assert cap.problems == ()
    assert cap.parse is not None and cap.parse.unparsed == ()
    g = cap.parse.grants
    assert g is not None and g.complete and 0 in [t.domid for t in g.tables]
    ev = cap.parse.events
    assert ev is not None and ev.begin_seen and ev.domains[0].domid == 0
    # dom0's own VIRQ_TIMER port is always there.
    assert any(p.state_name == "virq" for p in ev.domains[0].ports)


def test_leak_after_the_offering_process_is_killed() -> None:
    offerer = _spawn(OFFERER)
    try:
        assert offerer.stdout is not None
        gref = int(offerer.stdout.readline())
        mapping = GrantMapping(0, [gref], writable=False)
    except BaseException:
        _stop(offerer)
        raise
    try:
        assert mapping.read(0, 11) == b"leaked page"
        offerer.send_signal(signal.SIGKILL)
        offerer.wait(timeout=30)
        obs, _extra, _cap = collect_observation(interval=0.5)
        found = [
            f for f in analyze(obs).findings
            if f.code in ("grant-orphaned", "grant-unowned") and f.subject.get("ref") == gref
            and f.subject.get("granter") == 0
        ]
        assert len(found) == 1, [f.to_json() for f in analyze(obs).findings]
        leak = found[0]
        assert leak.code == "grant-orphaned" and leak.severity == "error"
        assert leak.subject["mapper"] == 0
        assert any(f"pid {os.getpid()} " in e for e in leak.evidence), leak.evidence
    finally:
        mapping.close()
        _stop(offerer)
    # Unmapped: the kernel frees the page, and the finding is gone.
    obs, _extra, _cap = collect_observation(interval=0.0)
    assert not [f for f in analyze(obs).findings if f.subject.get("ref") == gref
                and f.subject.get("granter") == 0]


@pytest.fixture
def receiver() -> Iterator[tuple[EventChannel, int]]:
    with EventChannel() as ch:
        yield ch, ch.bind_unbound(0)


def test_storm_from_a_peer_notifying_in_a_loop(receiver: tuple[EventChannel, int]) -> None:
    ch, port = receiver
    stop = threading.Event()
    received = [0]

    def drain() -> None:  # keep unmasking, as a real consumer would
        while not stop.is_set():
            received[0] += len(ch.wait(0.2))

    notifier = _spawn(NOTIFIER, str(port))
    thread = threading.Thread(target=drain, daemon=True)
    try:
        assert notifier.stdout is not None and notifier.stdout.readline() == "bound\n"
        thread.start()
        obs, _extra, _cap = collect_observation(interval=3.0, dumps=False)
    finally:
        stop.set()
        thread.join(timeout=10)
        _stop(notifier)
    comm = Path("/proc/self/comm").read_text().strip()[:15]
    assert obs.interrupts_before is not None and obs.interrupts_after is not None
    before = obs.interrupts_before.by_irq()
    rates = {
        r.irq: (r.total - before[r.irq].total) / obs.interval
        for r in obs.interrupts_after.rows
        if r.irq in before and r.chip.startswith("xen-dyn")
    }
    evidence = ({r.irq: (r.action, round(rates.get(r.irq, 0), 1))
                 for r in obs.interrupts_after.rows if r.chip.startswith("xen-dyn")},
                received[0], obs.interval)
    # Under TCG on a loaded 2-core host a Python consumer manages tens to hundreds of events a
    # second (real hardware: tens of thousands), so the threshold is set to what this lab can
    # show; the default (500/s) is a policy for real hosts, tested in tests/unit.  The storm
    # must still be the busiest event-channel irq and be named with this process.
    storms = [f for f in analyze(obs, Thresholds(storm_rate=20)).findings
              if f.code == "irq-storm"]
    mine = [f for f in storms if f.subject["action"] == f"evtchn:{comm}"]
    assert mine, ([f.to_json() for f in storms], evidence)
    assert rates[mine[0].subject["irq"]] == max(rates.values()), evidence
    assert f"'{comm}'" in mine[0].action


def _wait_ports_released(domid: int, timeout: float = 120.0) -> None:
    """After a domU is destroyed, xenstored and xenconsoled unbind their ports to it a little
    later; wait for that so the leak check does not blame this test for their ports."""
    deadline = time.monotonic() + timeout
    while True:
        ports, why = read_lsevtchn(0)
        left = [p for p in ports if p.remote_domid == domid]
        if not why and not left:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"dom0 ports to destroyed d{domid} remain after {timeout:g} s: "
                        f"{[p.to_json() for p in left]} {why}")
        time.sleep(1.0)


def test_report_with_a_pv_domu_shows_joined_rows() -> None:
    with DomU("offer", {"text": "joined"}) as peer:
        # Generous: under TCG on a loaded host the guest takes minutes to publish.
        peer.wait_key("data/port", timeout=600)
        domid = peer.domid
        with XenStore.open() as xs:
            gref = int(xs.read(f"/local/domain/{domid}/data/gref"))
        with GrantMapping(domid, [gref], writable=False) as m:
            assert m.read(0, 6) == b"joined"
            proc = subprocess.run([*GRANTSCOPE, "report", "--json", "--interval", "0.5"],
                                  capture_output=True, text=True, timeout=600, check=False)
    _wait_ports_released(domid)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["unparsed"] == [] and doc["dump_problems"] == []
    names = [d["name"] for d in doc["devices"]]
    mine = [d for d in doc["devices"] if d["frontend_domid"] == domid]
    assert mine, names
    # The domU's grant mapped by this process appears in the g dump, mapped by d0.
    tables = {t["domid"]: t for t in doc["grant_tables"]}
    assert any(e["ref"] == gref and e["mapper"] == 0 for e in tables[domid]["entries"])
    # Its event channels are in the e dump too.
    assert domid in [d["domid"] for d in doc["event_domains"]]
    assert any(q["domid"] == domid for q in doc["quota"]["usage"])
