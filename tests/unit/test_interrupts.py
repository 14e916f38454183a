"""/proc/interrupts Xen rows (three kernel formats), xenbus counters, quota and lsevtchn text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from grantscope.model.interrupts import parse_interrupts, parse_xenbus_counters
from grantscope.model.toolout import parse_lsevtchn, parse_quota_settings, parse_quota_usage
from grantscope.sources.procfs import read_hypervisor, read_interrupts, read_xenbus_counters

LAB = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17"

THREE_FORMATS = """\
           CPU0       CPU1
  0:         44          0   IO-APIC   2-edge      timer
 96:        740          0   xen-dyn-event     xenbus
 97:          3          1   xen-dyn-lateeoi-event     evtchn:xenstored
 54:        266          3   xen-dyn    -event     xenbus
 21:          0          1   xen-dyn     Edge    -event     xenbus
 48:     773698          0  xen-percpu    -virq      timer0
 37:          0       6046  xen-pirq    -msi       ahci[0000:00:03.0]
NMI:          0          0   Non-maskable interrupts
 62:          x          6  xen-dyn-lateeoi -event     evtchn:broken
"""


def test_three_kernel_formats() -> None:
    r = parse_interrupts(THREE_FORMATS)
    assert r.cpus == 2
    rows = r.by_irq()
    assert sorted(rows) == [21, 37, 48, 54, 96, 97]
    assert (rows[96].chip, rows[96].handler, rows[96].action) == ("xen-dyn", "event", "xenbus")
    assert (rows[97].chip, rows[97].evtchn_comm) == ("xen-dyn-lateeoi", "xenstored")
    assert (rows[54].chip, rows[54].handler, rows[54].counts) == ("xen-dyn", "event", (266, 3))
    assert (rows[21].trigger, rows[21].handler, rows[21].total) == ("Edge", "event", 1)
    assert (rows[48].chip, rows[48].handler, rows[48].action) == ("xen-percpu", "virq", "timer0")
    assert rows[37].action == "ahci[0000:00:03.0]" and rows[37].handler == "msi"
    # The malformed Xen row is reported, the IO-APIC and NMI rows are simply not Xen rows.
    assert r.unparsed == (" 62:          x          6  xen-dyn-lateeoi -event     evtchn:broken",)


def test_lab_recording() -> None:
    a = parse_interrupts((LAB / "interrupts-1.txt").read_text())
    b = parse_interrupts((LAB / "interrupts-2.txt").read_text())
    assert a.unparsed == () and b.unparsed == ()
    assert a.cpus == 2 and len(b.rows) == 28
    row = b.by_irq()[46]
    assert (row.chip, row.handler, row.evtchn_comm) == ("xen-dyn-lateeoi", "event", "python")
    assert row.total - a.by_irq()[46].total == 3883
    assert b.by_irq()[41].handler == "msi-x" and b.by_irq()[9].handler == "ioapic-level"
    assert b.by_irq()[36].action == "xenbus"


def test_read_interrupts_missing_file(tmp_path: Path) -> None:
    got = read_interrupts(str(tmp_path / "nope"))
    assert isinstance(got, str) and "could not be read" in got


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_interrupts_never_raise(text: str) -> None:
    r = parse_interrupts(text)
    assert all(row.counts for row in r.rows)


def test_xenbus_counters_from_sysfs_tree(tmp_path: Path) -> None:
    dev = tmp_path / "xen-backend" / "vif-1-0"
    (dev / "xenbus").mkdir(parents=True)
    (dev / "nodename").write_text("/local/domain/0/backend/vif/1/0\n")
    (dev / "xenbus" / "events").write_text("120\n")
    (dev / "xenbus" / "spurious_events").write_text("7\n")
    (dev / "xenbus" / "jiffies_eoi_delayed").write_text("0\n")
    (dev / "xenbus" / "event_channels").write_text("2\n")
    old = tmp_path / "xen" / "vbd-51712"
    old.mkdir(parents=True)
    (old / "nodename").write_text("device/vbd/51712\n")
    got = {c.device: c for c in read_xenbus_counters((str(tmp_path / "xen-backend"),
                                                      str(tmp_path / "xen"),
                                                      str(tmp_path / "absent")))}
    assert got["vif-1-0"].nodename == "/local/domain/0/backend/vif/1/0"
    assert (got["vif-1-0"].events, got["vif-1-0"].spurious_events) == (120, 7)
    assert got["vif-1-0"].spurious_threshold is None
    # An older kernel without the counters: known device, unknown counts.
    assert got["vbd-51712"].events is None and got["vbd-51712"].nodename == "device/vbd/51712"
    assert parse_xenbus_counters("x", {"xenbus/events": "garbage"}).events is None


def test_sys_hypervisor_tree(tmp_path: Path) -> None:
    (tmp_path / "version").mkdir()
    (tmp_path / "version" / "major").write_text("4\n")
    (tmp_path / "type").write_text("xen\n")
    assert read_hypervisor(str(tmp_path)) == {"type": "xen", "version/major": "4"}
    assert read_hypervisor(str(tmp_path / "none")) == {}


def test_quota_lab_recording() -> None:
    limits, bad = parse_quota_settings((LAB / "xenstore-control-quota.txt").read_text())
    assert bad == ()
    assert limits["nodes"] == 1000 and limits["watches"] == 128
    assert limits["memory"] == 2621440 and limits["transaction-nodes"] == 1024
    usage = parse_quota_usage((LAB / "xenstore-control-quota-0.txt").read_text(), 0)
    assert usage.unparsed == ()
    assert usage.usage == {"nodes": 17, "watches": 6, "transactions": 0, "outstanding": 0,
                           "memory": 1299}


def test_quota_other_domain_and_junk_are_reported() -> None:
    u = parse_quota_usage("Domain 3:\nnodes           :       17\nwhat is this\n", 0)
    assert u.usage == {"nodes": 17}
    assert u.unparsed == ("Domain 3:", "what is this")


def test_lsevtchn_lab_recording() -> None:
    ports, bad = parse_lsevtchn((LAB / "lsevtchn-0.txt").read_text(), 0)
    assert bad == () and len(ports) == 28
    by = {p.port: p for p in ports}
    assert (by[1].kind, by[1].number, by[1].vcpu) == ("virq", 0, 0)
    assert by[2].kind == "ipi"
    assert (by[13].kind, by[13].remote_domid, by[13].remote_port) == ("interdomain", 0, 26)
    assert (by[21].kind, by[21].number) == ("pirq", 415)


def test_lsevtchn_unbound_and_unknown() -> None:
    text = ("   5: VCPU 0: Interdomain (Waiting connection) - Remote Domain 3\n"
            "   6: VCPU 1: Unknown\n   7: VCPU 1: Something new\nnot a port line\n")
    ports, bad = parse_lsevtchn(text, 2)
    assert [(p.port, p.kind, p.remote_domid) for p in ports] == [(5, "unbound", 3),
                                                                 (6, "unknown", None)]
    assert bad == ("   7: VCPU 1: Something new", "not a port line")


_CHIPS = st.sampled_from(["xen-dyn", "xen-dyn-lateeoi", "xen-percpu", "xen-pirq"])
_HANDLERS = st.sampled_from(["event", "virq", "ipi", "msi", "msi-x", "ioapic-edge"])
_ACTIONS = st.one_of(
    st.sampled_from(["xenbus", "timer0", "vif1.0-q0-tx", "blkif-backend", "ahci[0000:00:03.0]"]),
    st.from_regex(r"evtchn:[a-z0-9_.-]{1,15}", fullmatch=True),
)


@settings(max_examples=200)
@given(
    st.lists(st.integers(0, 2**40), min_size=1, max_size=4),
    st.integers(0, 4095),
    _CHIPS,
    _HANDLERS,
    _ACTIONS,
    st.sampled_from(["fused", "x86", "arm64"]),
)
def test_generated_rows_round_trip(
    counts: list[int], irq: int, chip: str, handler: str, action: str, style: str
) -> None:
    cells = "".join(f" {c:10d}" for c in counts)
    if style == "fused":
        rest = f"  {chip}-{handler}     {action}"
    elif style == "x86":
        rest = f"  {chip:>8}    -{handler:<8}  {action}"
    else:
        rest = f"  {chip:>8}     Edge    -{handler:<8}  {action}"
    header = "      " + "".join(f"     CPU{i:<5d}" for i in range(len(counts)))
    r = parse_interrupts(f"{header}\n{irq:4d}:{cells}{rest}\n")
    assert r.unparsed == ()
    (row,) = r.rows
    assert (row.irq, row.counts, row.chip, row.handler, row.action) == (
        irq, tuple(counts), chip, handler, action)
    assert row.trigger == ("Edge" if style == "arm64" else None)
