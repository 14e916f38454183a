"""The device join and every finding, on hand-built snapshots (plain dicts, no Xen)."""

from __future__ import annotations

from pathlib import Path

from grantscope.model.devices_join import find_devices, join_devices
from grantscope.model.dumps import parse_console
from grantscope.model.findings import Observation, Thresholds, analyze
from grantscope.model.interrupts import XenbusCounters, parse_interrupts
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot, QuotaUsage

LAB = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17"

FE = "/local/domain/1/device/vif/0"
BE = "/local/domain/0/backend/vif/1/0"
VBD_FE = "/local/domain/1/device/vbd/51712"
VBD_BE = "/local/domain/0/backend/vbd/1/51712"


def store() -> dict[str, bytes | None]:
    s: dict[str, bytes | None] = {
        "/local": b"",
        "/local/domain": b"",
        "/local/domain/0": b"",
        "/local/domain/1": b"",
        FE: b"",
        f"{FE}/backend": BE.encode(),
        f"{FE}/backend-id": b"0",
        f"{FE}/state": b"4",
        f"{FE}/tx-ring-ref": b"768",
        f"{FE}/rx-ring-ref": b"769",
        f"{FE}/event-channel": b"12",
        BE: b"",
        f"{BE}/frontend": FE.encode(),
        f"{BE}/state": b"4",
        VBD_FE: b"",
        f"{VBD_FE}/state": b"3",
        f"{VBD_FE}/ring-ref0": b"800",
        f"{VBD_FE}/ring-ref1": b"oops\x01",
        f"{VBD_FE}/event-channel": b"13",
        VBD_BE: b"",
        f"{VBD_BE}/state": b"2",
        "/local/domain/0/backend/vif/5": b"",
        "/local/domain/0/backend/vif/5/0": b"",
        "/local/domain/0/backend/vif/5/0/state": b"6",
        "/local/domain/1/data/vchan-ref": b"900",
    }
    return s


G_DUMP = """\
(XEN) gnttab_usage_print_all [ key 'g' pressed
(XEN)       -------- active --------       -------- shared --------
(XEN) [ref] localdom mfn      pin          localdom gmfn     flags
(XEN) grant-table for remote d0 (v1)
(XEN)   1 frames (64 max), 60 maptrack frames (64 max)
(XEN) [0x001]      0 0x11111 0x00000001          0 0x011111 0x19
(XEN) [0x010]      0 0x11112 0x00000001          0 0x011112 0x19
(XEN)       -------- active --------       -------- shared --------
(XEN) [ref] localdom mfn      pin          localdom gmfn     flags
(XEN) grant-table for remote d1 (v1)
(XEN)   32 frames (32 max), 1 maptrack frames (1024 max)
(XEN) [0x300]      0 0x22222 0x00000001          0 0x022222 0x19
(XEN) [0x301]      0 0x22223 0x00000001          0 0x022223 0x19
(XEN) [0x384]      0 0x22224 0x00000001          0 0x022224 0x19
(XEN) [0x3e8]      2 0x22225 0x00000101          2 0x022225 0x19
(XEN) [0x3e9]      0 0x22226 0x00000001          0 0x022226 0x19
(XEN) gnttab_usage_print_all ] done
(XEN) 'e' pressed -> dumping event-channel info
(XEN) Event channel information for domain 0:
(XEN) Polling vCPUs: {}
(XEN)     port [p/m/s]
(XEN)       40 [0/0/1]: s=3 n=0 x=0 d=1 p=12
(XEN) Event channel information for domain 1:
(XEN) Polling vCPUs: {}
(XEN)     port [p/m/s]
(XEN)       12 [1/1/1]: s=3 n=0 x=0 d=0 p=40
(XEN)       13 [0/0/1]: s=2 n=0 x=0 d=0
"""

IRQ_A = """\
           CPU0       CPU1
 50:        100          0   xen-dyn    -event     vif1.0
 51:         10          0   xen-dyn-lateeoi    -event     evtchn:peerloop
 52:          5          5  xen-percpu    -virq      timer0
"""
IRQ_B = """\
           CPU0       CPU1
 50:        150          0   xen-dyn    -event     vif1.0
 51:       5010          0   xen-dyn-lateeoi    -event     evtchn:peerloop
 52:      90005          5  xen-percpu    -virq      timer0
"""


def counters(spurious: int) -> tuple[XenbusCounters, ...]:
    # Linux writes nodename relative to its own home (seen in the lab: "backend/vif/1/0").
    return (XenbusCounters("vif-1-0", "backend/vif/1/0", 1, 100, spurious, 0, 10000),)


def full_observation(**kw: object) -> Observation:
    base: dict[str, object] = {
        "xenstore": store(),
        "console": parse_console(G_DUMP),
        "interrupts_before": parse_interrupts(IRQ_A),
        "interrupts_after": parse_interrupts(IRQ_B),
        "counters_before": counters(3),
        "counters_after": counters(9),
        "interval": 2.0,
        "quota": QuotaSnapshot(
            limits={"nodes": 1000, "watches": 128},
            limits_source="xenstored",
            usage=(QuotaUsage(1, {"nodes": 990, "watches": 3}, ()),
                   QuotaUsage(0, {"nodes": 17, "watches": 128}, ())),
            unavailable=(),
        ),
        "holders": (DeviceHolder(321, "qemu", "/dev/xen/gntdev", 1, 4),
                    DeviceHolder(322, "idle", "/dev/xen/gntdev", 1, 0)),
        "local_domid": 0,
    }
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def test_find_devices_pairs_both_sides() -> None:
    devs = find_devices(store())
    assert [(k, fe, i, be) for k, fe, i, be, _f, _b in devs] == [
        ("vbd", 1, "51712", 0), ("vif", 1, "0", 0), ("vif", 5, "0", 0),
    ]
    vif = next(d for d in devs if d[0] == "vif" and d[1] == 1)
    assert vif[4:] == (FE, BE)
    stale = next(d for d in devs if d[1] == 5)
    assert stale[4] is None and stale[5] == "/local/domain/0/backend/vif/5/0"


def test_join_grants_ports_irqs_counters() -> None:
    c = parse_console(G_DUMP)
    rows = {d.name: d for d in join_devices(store(), c.grants, c.events,
                                            parse_interrupts(IRQ_B), counters(9),
                                            local_domid=0)}
    vif = rows["vif d1/0 (backend d0)"]
    assert [(g.key, g.ref, g.mappers) for g in vif.grants] == [
        ("rx-ring-ref", 769, ((0, 1),)), ("tx-ring-ref", 768, ((0, 1),)),
    ]
    (port,) = vif.ports
    assert port.frontend is not None and port.frontend.pending and port.frontend.masked
    assert port.backend is not None and (port.backend.domid, port.backend.port) == (0, 40)
    assert vif.irqs is not None and [(i.irq, i.total) for i in vif.irqs] == [(50, 150)]
    assert [c.device for c in vif.counters] == ["vif-1-0"]
    vbd = rows["vbd d1/51712 (backend d0)"]
    assert [(g.key, g.ref, g.mappers) for g in vbd.grants] == [("ring-ref0", 800, ())]  # unmapped
    assert len(vbd.problems) == 1 and 'ring-ref1 is not a decimal grant ref: "oops\\001"' in (
        vbd.problems[0])
    assert vbd.ports[0].frontend is not None and vbd.ports[0].backend is None


def test_join_without_dumps_says_unknown_not_none() -> None:
    (vif,) = [d for d in join_devices(store(), None, None) if d.kind == "vif" and
              d.frontend_domid == 1]
    assert vif.grants[0].mappers is None
    assert vif.ports[0].frontend is None and vif.irqs is None


def test_all_findings() -> None:
    a = analyze(full_observation())
    codes = sorted((f.code, f.severity) for f in a.findings)
    assert codes == sorted([
        ("grant-frames", "error"),            # d1 32/32
        ("maptrack-frames", "warning"),       # d0 60/64
        ("grant-unowned", "warning"),         # d1 ref 0x3e8 mapped by d2, no d1->d2 device
        ("grant-orphaned", "error"),          # d0 ref 0x10: no gntalloc holder in d0
        ("evtchn-spurious", "warning"),       # vif-1-0 3 -> 9
        ("irq-storm", "warning"),             # irq 51: 2500/s
        ("xenstore-quota", "warning"),        # d1 nodes 990/1000
        ("xenstore-quota", "error"),          # d0 watches 128/128
        ("stale-backend", "warning"),         # vif for d5
        ("device-state", "warning"),          # vbd 3/2
    ])
    assert a.findings[0].severity == "error"
    leak = next(f for f in a.findings if f.code == "grant-unowned")
    assert leak.subject == {"granter": 1, "ref": 1000, "mapper": 2, "refs": [1000]}
    assert any("inside d2" in e for e in leak.evidence)
    orphan = next(f for f in a.findings if f.code == "grant-orphaned")
    assert orphan.subject == {"granter": 0, "ref": 16, "mapper": 0, "refs": [16]}
    # The mapping process named is the one with gntdev pages mapped, not the idle holder.
    assert any("pid 321 (qemu, 4 pages" in e for e in orphan.evidence)
    assert not any("pid 322" in e for e in orphan.evidence)
    storm = next(f for f in a.findings if f.code == "irq-storm")
    assert storm.subject["irq"] == 51 and storm.subject["rate"] == 2500.0
    assert "peerloop" in storm.action
    stale = next(f for f in a.findings if f.code == "stale-backend")
    assert stale.subject["path"] == "/local/domain/0/backend/vif/5"
    state = next(f for f in a.findings if f.code == "device-state")
    assert "Initialised" in state.title and "InitWait" in state.title
    assert a.not_checked == ()


def test_refs_named_in_xenstore_reserved_or_device_data_are_not_leaks() -> None:
    a = analyze(full_observation())
    leaks = [f.subject["ref"] for f in a.findings if f.code.startswith("grant-")
             and "ref" in f.subject]
    # 0x300/0x301 are ring refs, 0x384 (900) is named by data/vchan-ref, 0x001 is reserved,
    # 0x3e9 is a data grant of the live vif d1 -> d0.
    assert sorted(leaks) == [16, 1000]


def test_orphaned_when_local_granter_has_no_gntalloc_holder() -> None:
    text = (LAB / "xl-dmesg-g.txt").read_text()
    snap = {"/local/domain": b"", "/local/domain/0": b"", "/local/domain/0/data/gref": b"8"}
    obs = Observation(xenstore=snap, console=parse_console(text), local_domid=0, holders=())
    fs = [f for f in analyze(obs).findings if f.code.startswith("grant-")]
    assert sorted((f.code, f.subject["ref"]) for f in fs) == [
        ("grant-orphaned", 8), ("grant-orphaned", 9),
    ]
    assert all(f.severity == "error" for f in fs)
    ref8 = next(f for f in fs if f.subject["ref"] == 8)
    assert any("/local/domain/0/data/gref" in e for e in ref8.evidence)
    # With the offering process alive, ref 8 is owned (XenStore names it), ref 9 is not.
    alive = (DeviceHolder(157, "python", "/dev/xen/gntalloc", 1, 2),)
    obs2 = Observation(xenstore=snap, console=parse_console(text), local_domid=0,
                       holders=alive)
    assert [(f.code, f.subject["ref"]) for f in analyze(obs2).findings] == [
        ("grant-unowned", 9)]


def test_dump_only_observation_lists_what_was_not_checked() -> None:
    a = analyze(Observation(console=parse_console(G_DUMP),
                            unavailable={"xenstore": "a saved dump holds no XenStore tree"}))
    assert {f.code for f in a.findings} == {"grant-frames", "maptrack-frames"}
    assert any(c.startswith("grants mapped with no owner (xenstore: a saved dump")
               for c in a.not_checked)
    assert any("event storms" in c for c in a.not_checked)
    assert a.devices == ()


def test_thresholds_are_parameters() -> None:
    quiet = analyze(full_observation(), Thresholds(headroom=1.01, storm_rate=1e9))
    codes = {f.code for f in quiet.findings}
    assert "irq-storm" not in codes and "maptrack-frames" not in codes
    assert "xenstore-quota" not in codes and "grant-frames" not in codes


def test_lab_real_interrupts_storm() -> None:
    a = parse_interrupts((LAB / "interrupts-1.txt").read_text())
    b = parse_interrupts((LAB / "interrupts-2.txt").read_text())
    obs = Observation(interrupts_before=a, interrupts_after=b, interval=2.0, local_domid=0)
    storms = [f for f in analyze(obs).findings if f.code == "irq-storm"]
    # Only the evtchn loop (3883 in 2 s) passes 500/s; virtio and per-CPU timers do not count.
    assert [f.subject["irq"] for f in storms] == [46]


def test_domu_view_does_not_judge_stale_backends() -> None:
    a = analyze(full_observation(local_domid=3))
    assert "stale-backend" not in {f.code for f in a.findings}
    assert any(c.startswith("stale backend directories (this is d3") for c in a.not_checked)


def _left_behind(gone: frozenset[int] | None) -> Observation:
    """dom0 with a vif backend for d9, whose home is still there: destroyed outside the
    toolstack (seen in the lab after a raw domctl destroy: home, backend, no domain)."""
    xs: dict[str, bytes | None] = {
        "/local/domain/0": None, "/local/domain/0/name": b"Domain-0",
        "/local/domain/9": None, "/local/domain/9/name": b"gone",
        "/local/domain/9/device": None, "/local/domain/9/device/vif": None,
        "/local/domain/9/device/vif/0": None,
        "/local/domain/9/device/vif/0/backend": b"/local/domain/0/backend/vif/9/0",
        "/local/domain/9/device/vif/0/backend-id": b"0",
        "/local/domain/0/backend": None, "/local/domain/0/backend/vif": None,
        "/local/domain/0/backend/vif/9": None, "/local/domain/0/backend/vif/9/0": None,
        "/local/domain/9/device/vif/0/state": b"6",
        "/local/domain/0/backend/vif/9/0/frontend": b"/local/domain/9/device/vif/0",
        "/local/domain/0/backend/vif/9/0/frontend-id": b"9",
        "/local/domain/0/backend/vif/9/0/state": b"6",
    }
    return Observation(xenstore=xs, local_domid=0, gone_domids=gone)


def test_a_home_left_by_a_destroyed_domain_does_not_keep_its_backend_alive() -> None:
    found = {f.code: f for f in analyze(_left_behind(frozenset({9}))).findings}
    stale = found["stale-backend"]
    assert stale.subject == {"backend": 0, "kind": "vif", "frontend": 9,
                             "path": "/local/domain/0/backend/vif/9"}
    assert any("IS_DOMAIN_INTRODUCED" in e and "/local/domain/9 was left behind" in e
               for e in stale.evidence)
    assert "'xenstore-rm /local/domain/9'" in stale.action
    assert "device-state" not in found  # the device is reported as stale, not as a state


def test_without_xenstoreds_answer_a_home_counts_as_a_live_domain() -> None:
    for gone in (None, frozenset()):
        codes = {f.code for f in analyze(_left_behind(gone)).findings}
        assert "stale-backend" not in codes and "device-state" in codes


def _storm_at(count: int) -> str:
    """The lab's interrupts with irq 46 (an evtchn loop) at ``count`` on CPU1."""
    text = (LAB / "interrupts-1.txt").read_text()
    return text.replace(" 46:          0         50", f" 46:          0 {count:>10}")


def test_a_bursty_storm_is_judged_over_the_earlier_poll_when_there_is_one() -> None:
    """The TUI's analysis: its own 1 s sample caught a lull (300/s), but the Events view
    polled 9 s before and the IRQ rose 9000 since: 900/s over the window is a storm."""
    from grantscope.sources.observation import Sample, build_observation

    earlier = Sample(parse_interrupts(_storm_at(1000)), None, at=100.0)
    first = Sample(parse_interrupts(_storm_at(9700)), (), at=109.0)
    second = Sample(parse_interrupts(_storm_at(10000)), (), at=110.0)
    one_second = build_observation(first=first, second=second, local_domid=0)
    assert one_second.irq_interval == 1.0
    assert "irq-storm" not in {f.code for f in analyze(one_second).findings}

    windowed = build_observation(first=first, second=second, local_domid=0,
                                 interrupts_from=earlier)
    assert windowed.interval == 1.0 and windowed.irq_interval == 10.0
    storms = [f for f in analyze(windowed).findings if f.code == "irq-storm"]
    assert [f.subject["irq"] for f in storms] == [46]
    assert "fires 900 times a second" in storms[0].title
    assert "1000 -> 10000 in 10 s" in storms[0].evidence[0]

    # a poll newer than the first sample (or without interrupts) is not a longer window
    later = Sample(parse_interrupts(_storm_at(9800)), None, at=109.5)
    assert build_observation(first=first, second=second, interrupts_from=later).irq_interval \
        == 1.0
    assert build_observation(first=first, second=second,
                             interrupts_from=Sample(None, None, 100.0)).irq_interval == 1.0
