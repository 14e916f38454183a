"""The join and the findings on what the lab recorded with a PV domU running (no Xen needed)."""

from __future__ import annotations

import re
from pathlib import Path

from grantscope.model.devices_join import join_devices
from grantscope.model.dumps import parse_console
from grantscope.model.findings import Observation, analyze
from grantscope.model.interrupts import parse_interrupts
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot, parse_quota_usage
from grantscope.xen.xs_escape import unescape_value

LAB = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17" / "domu-offer"
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
        ("grant-unowned", {"granter": 0, "ref": 9, "mapper": 0}),
        # The recording's 2 s notify loop (loop.txt: 1161 round trips) between the samples.
        ("irq-storm", {"irq": 48, "action": "evtchn:python", "rate": 580.5}),
    ]
    assert any("pid 181 (python, 3 pages" in e for e in a.findings[0].evidence)
    # d1's ref 8 is named by /local/domain/1/data/gref; refs 0 and 1 are reserved; the
    # console's state 1 is xenconsoled's normal, not a stuck device.
    assert a.not_checked == ()
