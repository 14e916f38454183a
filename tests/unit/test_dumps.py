"""The g/e dump parsers against public samples, hand-written dumps and edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantscope.model.dumps import parse_console, split_console_line

FIX = Path(__file__).parent / "fixtures" / "dumps"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_suse_sample_g_without_end_marker_is_reported_incomplete() -> None:
    r = parse_console(read("from-xen-facts-suse-kb-7018590-g.txt"))
    assert len(r.grant_dumps) == 1
    d = r.grant_dumps[0]
    assert d.begin_seen and not d.end_seen and not d.complete
    (t,) = d.tables
    assert (t.domid, t.version, t.frames, t.max_frames) == (0, 1, 1, 64)
    assert (t.maptrack_frames, t.max_maptrack_frames) == (5, 1024)
    assert t.entries == () and t.no_active_line
    assert any("end marker" in p and "conring_size=" in p for p in r.problems)
    assert r.unparsed == ()


def test_qubes_sample_e_fifo_states() -> None:
    r = parse_console(read("from-xen-facts-qubes-7971-e.txt"))
    ev = r.events
    assert ev is not None and ev.begin_seen
    (dom,) = ev.domains
    assert dom.domid == 0 and dom.polling_vcpus == ""
    by_port = {p.port: p for p in dom.ports}
    assert sorted(by_port) == [1, 2, 15, 22]
    assert by_port[1].state_name == "virq" and by_port[1].virq == 0
    assert by_port[2].state_name == "ipi" and by_port[2].masked and not by_port[2].pending
    assert (by_port[15].remote_domid, by_port[15].remote_port) == (7, 10)
    assert by_port[22].state_name == "unbound" and by_port[22].remote_domid == 0
    assert by_port[22].remote_port is None
    assert by_port[1].abi_state == "  -   "
    assert r.problems == () and r.unparsed == ()


def test_multi_domain_dump_with_timestamps_and_guest_lines() -> None:
    r = parse_console(read("handwritten-4.17-multi-domain-boot-timestamps.txt"))
    assert r.unparsed == () and r.problems == ()
    g = r.grants
    assert g is not None and g.complete
    assert [t.domid for t in g.tables] == [0, 1, 2]
    d1 = g.tables[1]
    assert (d1.frames, d1.max_frames) == (60, 64)
    assert [e.ref for e in d1.entries] == [0, 1, 8, 9, 0x1FF]
    e9 = d1.entries[3]
    assert (e9.mapper, e9.pin, e9.host_read_pins, e9.host_write_pins) == (0, 0x100, 1, 0)
    assert e9.readonly and e9.flags == 0x1D and e9.gmfn == 0x3F002 and e9.mfn == 0x3F002
    d2 = g.tables[2]
    assert d2.version == 2 and d2.entries[0].granter == 2 and d2.entries[0].mapper == 1
    ev = r.events
    assert ev is not None
    assert [d.domid for d in ev.domains] == [0, 1]
    p9 = ev.find(0, 9)
    assert p9 is not None and p9.pending and (p9.remote_domid, p9.remote_port) == (1, 3)
    pirq = ev.find(0, 11)
    assert pirq is not None and (pirq.pirq, pirq.irq, pirq.remote_port) == (9, 9, None)
    assert ev.find(1, 1) is not None and ev.find(1, 1).abi_state == "B 12  "  # type: ignore[union-attr]
    p4 = ev.find(1, 4)
    assert p4 is not None and p4.label == "system_u:system_r:domU_t"
    # The guest line and two boot lines are "other", not dump lines.
    assert r.other_lines == 3


def test_wrapped_ring_loses_begin_marker_and_reports_orphan_lines() -> None:
    r = parse_console(read("handwritten-4.19-date-timestamps-ring-wrapped.txt"))
    (d,) = r.grant_dumps
    assert not d.begin_seen and d.end_seen
    assert [t.domid for t in d.tables] == [3]
    assert [u.lineno for u in r.unparsed] == [1, 2]
    assert all("no 'grant-table for remote dN'" in u.reason for u in r.unparsed)
    assert any("begin marker" in p and "conring_size=" in p for p in r.problems)


def test_old_xen_44_format_is_reported_not_parsed() -> None:
    r = parse_console(read("handwritten-xen-4.4-old-format-g.txt"))
    (d,) = r.grant_dumps
    assert d.tables == ()
    assert [u.lineno for u in r.unparsed] == [4, 5]


@pytest.mark.parametrize(
    ("line", "text", "stamp"),
    [
        ("(XEN) [0x008]      0 0x3f001 0x00000001          0 0x03f001 0x19",
         "[0x008]      0 0x3f001 0x00000001          0 0x03f001 0x19", ""),
        ("(XEN) [2026-01-02 03:04:05] hello", "hello", "[2026-01-02 03:04:05]"),
        ("(XEN) [2026-01-02 03:04:05.678] hello", "hello", "[2026-01-02 03:04:05.678]"),
        ("(XEN) [   12.345678] hello", "hello", "[   12.345678]"),
        ("(XEN) [00000001a2b3c4d5] hello", "hello", "[00000001a2b3c4d5]"),
        ("(d12) guest says hi", "guest says hi", ""),
        ("[ref] localdom mfn      pin          localdom gmfn     flags",
         "[ref] localdom mfn      pin          localdom gmfn     flags", ""),
        ("(XEN) ", "", ""),
    ],
)
def test_prefix_and_timestamp_stripping(line: str, text: str, stamp: str) -> None:
    cl = split_console_line(line)
    assert cl.text == text
    assert cl.timestamp == stamp


def test_unprefixed_crlf_paste_parses_the_same() -> None:
    raw = read("handwritten-4.17-multi-domain-boot-timestamps.txt")
    stripped = "\r\n".join(split_console_line(x).text for x in raw.splitlines()
                           if not x.startswith("(d"))
    a, b = parse_console(raw), parse_console(stripped)
    assert a.grants is not None and b.grants is not None
    assert a.grants.tables == b.grants.tables and b.grants.complete
    assert a.events is not None and b.events is not None
    assert a.events.domains == b.events.domains


def test_interleaved_hypervisor_line_inside_e_dump_is_listed_and_ports_continue() -> None:
    text = "\n".join([
        "(XEN) 'e' pressed -> dumping event-channel info",
        "(XEN) Event channel information for domain 0:",
        "(XEN) Polling vCPUs: {}",
        "(XEN)     port [p/m/s]",
        "(XEN)        1 [0/0/1]: s=5 n=0 x=0 v=0",
        "(XEN) d1v0 unrelated hypervisor message",
        "(XEN)        2 [0/0/1]: s=6 n=0 x=0",
        "(XEN) a later message after the dump",
    ])
    r = parse_console(text)
    ev = r.events
    assert ev is not None and [p.port for p in ev.ports()] == [1, 2]
    assert [u.lineno for u in r.unparsed] == [6]
    assert r.other_lines == 1  # the trailing message is not part of the dump


def test_port_fields_that_do_not_fit_the_state_are_not_guessed() -> None:
    text = "\n".join([
        "(XEN) 'e' pressed -> dumping event-channel info",
        "(XEN) Event channel information for domain 0:",
        "(XEN)        5 [0/0/1]: s=3 n=0 x=0 v=3",
    ])
    r = parse_console(text)
    assert r.events is not None and list(r.events.ports()) == []
    assert len(r.unparsed) == 1 and "do not fit" in r.unparsed[0].reason


def test_several_dumps_prefers_the_last_complete_one() -> None:
    one = read("handwritten-4.17-multi-domain-boot-timestamps.txt")
    cut = "\n".join(read("from-xen-facts-suse-kb-7018590-g.txt").splitlines())
    r = parse_console(one + "\n" + cut)
    assert len(r.grant_dumps) == 2
    assert r.grants is r.grant_dumps[0]


def test_empty_and_unrelated_text() -> None:
    r = parse_console("")
    assert r.grants is None and r.events is None and r.total_lines == 0
    r = parse_console("hello\nworld\n(XEN) Xen version 4.17\n")
    assert r.grant_dumps == () and r.event_dumps == () and r.unparsed == ()
    assert r.other_lines == 3


@pytest.mark.parametrize("release", ["lab-xen-4.20", "lab-xen-4.14"])
def test_other_releases_lab_dumps_parse_like_417(release: str) -> None:
    # Recorded in the lab's trixie (Xen 4.20) and bullseye (Xen 4.14) configurations by
    # record_release.py (their README.md): the same holdings as lab-xen-4.17 give the same
    # tables; only frame numbers differ.
    g = parse_console(read(f"{release}/xl-dmesg-g.txt"))
    assert g.unparsed == () and g.problems == ()
    assert g.grants is not None and g.grants.complete
    (table,) = g.grants.tables
    assert (table.domid, table.version, table.frames, table.max_frames) == (0, 1, 1, 64)
    assert (table.maptrack_frames, table.max_maptrack_frames) == (1, 1024)
    assert [e.ref for e in table.entries] == [8, 9]
    assert all(e.mapper == 0 and e.pin == 2 and e.flags == 0x19 for e in table.entries)
    e = parse_console(read(f"{release}/xl-dmesg-e.txt"))
    assert e.unparsed == () and e.problems == ()
    assert e.events is not None
    (dom,) = e.events.domains
    by_port = {p.port: p for p in dom.ports}
    assert len(by_port) == 28
    assert (by_port[27].state_name, by_port[27].remote_domid, by_port[27].remote_port) == (
        "interdomain", 0, 28)
    assert (by_port[28].remote_domid, by_port[28].remote_port) == (0, 27)
    assert by_port[15].state_name == "pirq"
