"""The Host interface's findings and hypervisor port table on the sim, replay and xen backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bundle_corpus import fake

import grantscope.host.xen as xen_host
import grantscope.sources.observation as observation
from grantscope._compat import zip_strict
from grantscope.bundle.export import export_bundle
from grantscope.bundle.format import BundleError
from grantscope.errors import UsageError
from grantscope.host.base import Host, HvPort, hv_ports_from_dump
from grantscope.host.replay import ReplayHost
from grantscope.host.sim import GONE_DOMID, LEAKED_REF, SimHost
from grantscope.model.dumps import parse_console
from grantscope.model.findings import Observation, analyze
from grantscope.xen.readonly import readonly_session
from grantscope.xen.xenstore import Perms


def _by_code(host: Host) -> dict[str, Any]:
    return {f.code: f for f in host.analyze().findings}


def test_sim_findings_come_from_the_report_analysis() -> None:
    host = SimHost(frozen_at=100.0)
    snap = host.analyze()
    codes = sorted(f.code for f in snap.findings)
    assert codes == ["device-state", "grant-unowned", "stale-backend"]
    found = _by_code(host)
    assert found["grant-unowned"].subject == {"granter": 1, "ref": LEAKED_REF, "mapper": 2,
                                              "refs": [LEAKED_REF]}
    assert found["stale-backend"].subject["frontend"] == GONE_DOMID
    assert found["device-state"].subject["frontend_path"] == "/local/domain/2/device/vif/0"
    # the checks the demo cannot feed are said, with the reason
    assert any("event storms" in c and "not simulated" in c for c in snap.not_checked)
    assert snap.taken_at == 100.0 and "simulated" in snap.source
    # findings() needs no key on the simulated host: nothing to disturb
    assert host.findings() == snap


def test_sim_findings_follow_the_simulated_store() -> None:
    host = SimHost(frozen_at=100.0)
    host.store.rm(f"/local/domain/0/backend/vbd/{GONE_DOMID}")
    host.store.write("/local/domain/1/data/shared-ref", str(LEAKED_REF).encode(),
                     Perms(1, "n", ((0, "r"),)))
    host.store.write("/local/domain/2/device/vif/0/state", b"4")
    host.store.write("/local/domain/0/backend/vif/2/0/state", b"4")
    assert host.analyze().findings == ()


def test_sim_quota_finding_when_a_guest_fills_its_home() -> None:
    host = SimHost(frozen_at=100.0, big_dir=900)  # 900 nodes owned by d2 under data/sessions
    quota = [f for f in host.analyze().findings if f.code == "xenstore-quota"]
    assert [(f.subject["domid"], f.subject["quota"]) for f in quota] == [(2, "nodes")]
    assert quota[0].subject["used"] >= 900 and quota[0].subject["limit"] == 1000


def test_sim_hypervisor_ports_pair_both_ends() -> None:
    host = SimHost(frozen_at=100.0)
    rows = host.events().hypervisor
    assert rows is not None
    by_key = {(r.domid, r.port): r for r in rows}
    assert {r.domid for r in rows} == {0, 1, 2}
    for r in rows:
        if r.state == "interdomain":
            assert r.remote_domid is not None and r.remote_port is not None
            other = by_key[(r.remote_domid, r.remote_port)]
            assert (other.remote_domid, other.remote_port) == (r.domid, r.port)
    # the device channels XenStore names are there, bound to dom0
    vbd = by_key[(1, 5)]
    assert vbd.state == "interdomain" and vbd.remote_domid == 0
    # the guest's unbound offer to dom0
    assert by_key[(1, 1)].state == "unbound" and by_key[(1, 1)].remote_domid == 0
    assert any(r.state == "virq" and r.detail == "virq 0" for r in rows if r.domid == 0)
    assert host.capture_hypervisor_events() == ""


def test_sim_hypervisor_ports_show_a_probe_bind() -> None:
    host = SimHost(frozen_at=100.0)
    devices = host.devices()
    assert devices is not None
    ch = devices.event_channel()
    local = ch.bind_interdomain(1, 1)
    rows = {(r.domid, r.port): r for r in host.events().hypervisor or ()}
    assert (rows[(0, local)].remote_domid, rows[(0, local)].remote_port) == (1, 1)
    assert rows[(1, 1)].state == "interdomain" and rows[(1, 1)].remote_port == local
    assert len({(r.domid, r.port) for r in rows.values()}) == len(rows)


def test_hv_ports_from_a_parsed_dump() -> None:
    dump = parse_console(fake.HVDUMP).events
    assert dump is not None
    assert hv_ports_from_dump(dump) == (
        HvPort(0, 1, "virq", None, None, False, False, 0, "virq 0"),
        HvPort(0, 30, "unbound", 1, None, False, False, 0, ""),
    )


def test_replay_serves_the_bundle_findings(tmp_path: Path) -> None:
    target = tmp_path / "b.tar.gz"
    findings = {"findings": [
        {"code": "stale-backend", "severity": "warning", "title": "stale", "evidence": ["e1"],
         "action": "rm it", "subject": {"backend": 0, "frontend": 7}},
        {"code": "xenstore-quota", "severity": "error", "title": "full", "evidence": [],
         "action": "raise it"},
    ], "devices": [], "not_checked": ["event storms (interrupts: not provided)"]}
    export_bundle(str(target), fake.fake_collectors(findings=findings))
    host = ReplayHost.open(str(target))
    snap = host.findings()
    assert snap is not None and host.analyze() == snap
    assert [(f.code, f.severity, f.evidence, f.subject) for f in snap.findings] == [
        ("stale-backend", "warning", ("e1",), {"backend": 0, "frontend": 7}),
        ("xenstore-quota", "error", (), {}),
    ]
    assert snap.not_checked == ("event storms (interrupts: not provided)",)
    assert "bundle" in snap.source


def test_replay_without_findings_says_so(tmp_path: Path) -> None:
    target = tmp_path / "b.tar.gz"
    export_bundle(str(target), [c for c in fake.fake_collectors() if c.name != "findings"])
    host = ReplayHost.open(str(target))
    assert host.findings() is None
    with pytest.raises(UsageError, match="no findings"):
        host.analyze()


def test_replay_refuses_a_bad_findings_member(tmp_path: Path) -> None:
    target = tmp_path / "b.tar.gz"
    bad = {"findings": [{"code": "x", "severity": "fatal", "title": "t", "evidence": [],
                         "action": "a"}]}
    export_bundle(str(target), fake.fake_collectors(findings=bad))
    with pytest.raises(BundleError):
        ReplayHost.open(str(target))


def test_replay_port_table_from_the_raw_dump_without_an_events_snapshot(tmp_path: Path) -> None:
    target = tmp_path / "raw.tar.gz"
    export_bundle(str(target), [c for c in fake.fake_collectors() if c.name in {"host", "hvdump"}])
    rows = ReplayHost.open(str(target)).events().hypervisor
    assert rows is not None and [(r.domid, r.port, r.state) for r in rows] == [
        (0, 1, "virq"), (0, 30, "unbound")]


def test_xen_analyze_runs_the_report_collection_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": True)
    console = parse_console(fake.HVDUMP)
    calls: list[dict[str, Any]] = []
    # dom0's backend directory for d9, which has no home: a stale backend
    base = "/local/domain/0/backend/vif/9"
    store: dict[str, bytes | None] = {"/local/domain/0": b"", base: b"", f"{base}/0": b"",
                                      f"{base}/0/state": b"4"}

    def collect(**kw: Any) -> tuple[Observation, dict[str, Any], None]:
        calls.append(kw)
        return Observation(xenstore=store, console=console, local_domid=0), {}, None

    monkeypatch.setattr(observation, "collect_observation", collect)
    host = xen_host.XenHost(readonly=True)
    assert host.findings() is None and calls == []  # nothing is captured until asked
    snap = host.analyze()
    assert calls == [{"interval": xen_host.ANALYZE_INTERVAL, "dumps": True, "capture": True,
                      "earlier": None}]  # the Events view never polled: 1 s samples only
    expected = analyze(Observation(xenstore=store, console=console, local_domid=0))
    assert snap.findings == expected.findings
    assert sorted(f.code for f in snap.findings) == ["grant-unowned", "stale-backend"]
    assert host.findings() == snap
    # the dumps the analysis captured refresh the hypervisor tables too
    assert host._hv_ports == hv_ports_from_dump(console.events)  # type: ignore[arg-type]
    assert host._hv is not None and [(g.granter, g.ref, g.mapper) for g in host._hv] == [
        (1, 8, 0)]
    # In a --readonly session 'a' sends no debug key: it analyses the ring as it is.
    calls.clear()
    with readonly_session():
        snap = host.analyze()
    assert calls == [{"interval": xen_host.ANALYZE_INTERVAL, "dumps": True, "capture": False,
                      "earlier": None}]
    assert "no debug key sent" in snap.source


def test_xen_analyze_judges_irq_rates_over_the_events_views_recent_polls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """'a' after the Events view polled: the oldest poll of the last STORM_WINDOW seconds is
    handed to the collection (a bursty storm is judged over it, not one second)."""
    import grantscope.sources.procfs as procfs
    from grantscope.model.interrupts import parse_interrupts

    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": True)
    lab = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17"
    polls = [parse_interrupts((lab / f"interrupts-{i}.txt").read_text()) for i in (1, 2)]
    now = [1000.0]
    calls: list[dict[str, Any]] = []

    def collect(**kw: Any) -> tuple[Observation, dict[str, Any], None]:
        calls.append(kw)
        return Observation(local_domid=0), {}, None

    monkeypatch.setattr(observation, "collect_observation", collect)
    host = xen_host.XenHost()
    monkeypatch.setattr(host, "clock", lambda: now[0])
    for at, parsed in zip_strict((1000.0, 1004.0), polls):
        now[0] = at
        monkeypatch.setattr(procfs, "read_interrupts", lambda p=parsed: p)
        host.events()
    now[0] = 1008.0
    host.analyze()
    earlier = calls[-1]["earlier"]
    assert earlier is not None and earlier.at == 1000.0 and earlier.interrupts is polls[0]
    now[0] = 1000.0 + xen_host.STORM_WINDOW + 1  # the first poll is too old now
    host.analyze()
    assert calls[-1]["earlier"].interrupts is polls[1]
    now[0] = 1004.0 + xen_host.STORM_WINDOW + 1  # and then both
    host.analyze()
    assert calls[-1]["earlier"] is None
