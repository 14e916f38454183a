"""The join and the findings on what the lab recorded with a PV domU running (no Xen needed)."""

from __future__ import annotations

import re
from pathlib import Path

from grantscope.model.devices_join import join_devices
from grantscope.model.dumps import parse_console
from grantscope.model.findings import Observation, analyze
from grantscope.model.interrupts import parse_interrupts
from grantscope.model.runs import consecutive_runs, ref_ranges
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot, parse_quota_usage
from grantscope.sources.procfs import read_xenbus_counters
from grantscope.xen.xs_escape import unescape_value

LAB = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17" / "domu-offer"
# A PV guest with a vif (dom0's netback) whose user-space frontend notifies with no work, and
# whose grant and maptrack frames are at their limits (record_vif.py, README.md).
VIF = LAB.parent / "domu-vif"
LINE = re.compile(r'^(/\S*) = "(.*)"$')


def xenstore_ls(text: str) -> dict[str, bytes | None]:
    """``xenstore-ls -f`` output back into a ``{path: value}`` snapshot."""
    out: dict[str, bytes | None] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, line
        out[m.group(1)] = unescape_value(m.group(2))
    return out


def observation(holders: tuple[DeviceHolder, ...]) -> Observation:
    console = parse_console((LAB / "xl-dmesg-g.txt").read_text()
                            + (LAB / "xl-dmesg-e.txt").read_text())
    return Observation(
        xenstore=xenstore_ls((LAB / "xenstore-ls-f.txt").read_text()),
        console=console,
        interrupts_before=parse_interrupts((LAB / "interrupts-1.txt").read_text()),
        interrupts_after=parse_interrupts((LAB / "interrupts-2.txt").read_text()),
        counters_before=(),
        counters_after=(),
        interval=2.0,
        quota=QuotaSnapshot(
            limits={"nodes": 1000, "watches": 128},
            limits_source="xenstored",
            usage=(parse_quota_usage((LAB / "xenstore-control-quota-0.txt").read_text(), 0),),
            unavailable=(),
        ),
        holders=holders,
        local_domid=0,
    )


def test_parses_cleanly() -> None:
    c = observation(()).console
    assert c is not None and c.unparsed == () and c.problems == ()
    assert c.grants is not None and [t.domid for t in c.grants.tables] == [0, 1]
    assert c.events is not None and [d.domid for d in c.events.domains] == [0, 1]


def test_primary_console_is_joined_through_reserved_grant_0() -> None:
    obs = observation(())
    assert obs.xenstore is not None and obs.console is not None
    rows = join_devices(obs.xenstore, obs.console.grants, obs.console.events)
    # device/suspend/event-channel is a key, not a device: only the console is a device.
    assert [r.name for r in rows] == ["console d1/0 (backend d0)"]
    (con,) = rows
    assert con.primary_console and con.notes
    assert [(g.key, g.granter, g.ref, g.mappers) for g in con.grants] == [
        ("(reserved grant 0)", 1, 0, ((0, 2),))
    ]
    (port,) = con.ports
    assert port.frontend_port == 2 and port.frontend is not None
    assert port.backend is not None and (port.backend.domid, port.backend.port) == (0, 28)


def test_findings_on_the_domu_recording() -> None:
    # The recording process (pid 181) held gntalloc: only ref 9 of d0 lacks an owner.
    alive = (DeviceHolder(181, "python", "/dev/xen/gntalloc", 1, 2),
             DeviceHolder(181, "python", "/dev/xen/gntdev", 1, 3))
    a = analyze(observation(alive))
    assert [(f.code, f.subject) for f in a.findings] == [
        ("grant-unowned", {"granter": 0, "ref": 9, "mapper": 0, "refs": [9]}),
        # The recording's 2 s notify loop (loop.txt: 1161 round trips) between the samples.
        ("irq-storm", {"irq": 48, "action": "evtchn:python", "rate": 580.5}),
    ]
    assert any("pid 181 (python, 3 pages" in e for e in a.findings[0].evidence)
    # d1's ref 8 is named by /local/domain/1/data/gref; refs 0 and 1 are reserved; the
    # console's state 1 is xenconsoled's normal, not a stuck device.
    assert a.not_checked == ()


# ------------------------------------------------------------------ domu-vif: a real PV device


def vif_observation(g_dump: str = "xl-dmesg-g.txt") -> Observation:
    return Observation(
        xenstore=xenstore_ls((VIF / "xenstore-ls-f.txt").read_text()),
        console=parse_console((VIF / g_dump).read_text() + (VIF / "xl-dmesg-e.txt").read_text()),
        interrupts_before=parse_interrupts((VIF / "interrupts-1.txt").read_text()),
        interrupts_after=parse_interrupts((VIF / "interrupts-2.txt").read_text()),
        counters_before=read_xenbus_counters((str(VIF / "sysfs-1" / "xen-backend"),)),
        counters_after=read_xenbus_counters((str(VIF / "sysfs-2" / "xen-backend"),)),
        interval=2.0,
        local_domid=0,
    )


def test_vif_row_joins_rings_port_irq_and_counters() -> None:
    obs = vif_observation()
    assert obs.console is not None and obs.console.unparsed == ()
    rows = {d.name: d for d in analyze(obs).devices}
    vif = rows["vif d1/0 (backend d0)"]
    assert (vif.frontend_state, vif.backend_state) == (4, 4)  # Connected both
    # setup.txt: tx-ring-ref 8, rx-ring-ref 9, event-channel 8; netback (d0) maps both rings.
    assert sorted((g.key, g.ref, g.mappers) for g in vif.grants) == [
        ("rx-ring-ref", 9, ((0, 1),)), ("tx-ring-ref", 8, ((0, 1),))]
    (port,) = vif.ports
    assert port.frontend_port == 8 and port.backend is not None and port.backend.domid == 0
    assert port.backend.remote_port == 8 and port.backend.remote_domid == 1
    # netback's IRQ, by name; the sysfs counters, by the nodename Linux writes relative to
    # dom0's home ("backend/vif/1/0").
    assert vif.irqs is not None and [i.action for i in vif.irqs] == ["vif1.0-q0"]
    assert [c.device for c in vif.counters] == ["vif-1-0"]
    assert vif.counters[0].nodename == "backend/vif/1/0"


def test_vif_findings_name_the_rogue_frontend_and_the_full_tables() -> None:
    a = analyze(vif_observation())
    codes = [(f.code, f.severity, f.subject.get("domid", f.subject.get("device")))
             for f in a.findings if f.code != "grant-unowned"]
    assert codes == [("grant-frames", "error", 1), ("maptrack-frames", "error", 1),
                     ("evtchn-spurious", "warning", "vif-1-0")]
    spurious = next(f for f in a.findings if f.code == "evtchn-spurious")
    assert spurious.evidence == (
        "spurious_events rose 858 -> 1459 in 2 s",
        "jiffies_eoi_delayed rose 425 -> 727 in 2 s",
        "XenStore node: /local/domain/0/backend/vif/1/0 (vif d1/0 (backend d0))",
    )
    assert spurious.subject["path"] == "/local/domain/0/backend/vif/1/0"


def test_many_unowned_grants_of_one_mapper_are_one_finding() -> None:
    # The guest held 200 of dom0's pages mapped (refs 8-207): one finding, not 200.
    (leak,) = [f for f in analyze(vif_observation()).findings if f.code == "grant-unowned"]
    assert leak.subject["refs"] == list(range(8, 208)) and "ref" not in leak.subject
    assert leak.title == ("200 grants of d0 (refs 8-207) are still mapped by d1 with no "
                          "XenStore owner (possible leak)")
    assert leak.evidence[0].startswith("'g' dump: d0 refs 8-207 (200 grants) mapped by d1")


def test_tables_below_the_threshold_before_the_guest_grew_them() -> None:
    a = analyze(vif_observation("xl-dmesg-g-before-grow.txt"))
    # 1 of 2 grant frames (50 %) and 0 of 2 maptrack frames: nothing to say yet.
    assert not [f for f in a.findings if f.code in ("grant-frames", "maptrack-frames")]


def test_ref_ranges() -> None:
    assert ref_ranges([12, 8, 9, 10, 10]) == "8-10, 12"
    assert ref_ranges([5]) == "5" and ref_ranges([]) == ""
    # with kinds: a run also ends where the kind changes
    assert consecutive_runs([1, 2, 3, 4], ["a", "a", "b", "b"]) == [(0, 1), (2, 3)]
