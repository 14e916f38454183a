"""Generated input for the dump parsers: never an exception, and valid dumps round-trip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grantscope.model.dumps import (
    EventDomain,
    EventPort,
    GrantEntry,
    GrantTable,
    format_event_dump,
    format_grant_dump,
    parse_console,
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)
domid = st.integers(min_value=0, max_value=0x7FEF)

# Prefix + timestamp styles Xen may put in front of a console line, and none at all.
prefixes = st.sampled_from(
    [
        "(XEN) ",
        "(XEN) [2026-11-25 18:00:01] ",
        "(XEN) [2026-11-25 18:00:01.123] ",
        "(XEN) [ 1234.567890] ",
        "(XEN) [00000001a2b3c4d5] ",
        "",
    ]
)


@st.composite
def grant_tables(draw: st.DrawFn) -> list[GrantTable]:
    out = []
    for dom in draw(st.lists(domid, min_size=1, max_size=4, unique=True)):
        refs = draw(st.lists(st.integers(0, 2**20), max_size=6, unique=True))
        entries = tuple(
            GrantEntry(
                granter=dom,
                ref=r,
                mapper=draw(domid),
                mfn=draw(st.integers(0, 2**40)),
                pin=draw(u32),
                shared_domid=draw(domid),
                gmfn=draw(st.integers(0, 2**40)),
                flags=draw(st.integers(0, 0xFFFF)),
            )
            for r in refs
        )
        max_frames = draw(st.integers(1, 4096))
        out.append(
            GrantTable(
                domid=dom,
                version=draw(st.sampled_from([1, 2])),
                frames=draw(st.integers(0, max_frames)),
                max_frames=max_frames,
                maptrack_frames=draw(st.integers(0, 4096)),
                max_maptrack_frames=draw(st.integers(1, 4096)),
                entries=entries,
                no_active_line=not entries,
            )
        )
    return out


abi_states = st.one_of(
    st.sampled_from(["0", "1"]),  # 2-level selector bit
    st.sampled_from(["?     ", "  -   ", "B -   "]),  # FIFO without a link
    st.builds(lambda b, n: f"{b} {n:<4d}", st.sampled_from(["B", " "]), st.integers(0, 99999)),
)


@st.composite
def event_port(draw: st.DrawFn, dom: int, port: int) -> EventPort:
    state = draw(st.integers(1, 6))
    kw: dict[str, int] = {}
    if state == 2:
        kw["remote_domid"] = draw(domid)
    elif state == 3:
        kw["remote_domid"] = draw(domid)
        kw["remote_port"] = draw(st.integers(1, 2**17))
    elif state == 4:
        kw["pirq"] = draw(st.integers(0, 4096))
        kw["irq"] = draw(st.integers(-1, 4096))
    elif state == 5:
        kw["virq"] = draw(st.integers(0, 31))
    label = draw(st.one_of(st.none(), st.from_regex(r"[a-z_]{1,8}:[a-z_]{1,8}", fullmatch=True)))
    return EventPort(
        domid=dom,
        port=port,
        pending=draw(st.booleans()),
        masked=draw(st.booleans()),
        abi_state=draw(abi_states),
        state=state,
        notify_vcpu=draw(st.integers(0, 127)),
        xen_consumer=draw(st.integers(0, 9)),
        label=label,
        **kw,
    )


@st.composite
def event_domains(draw: st.DrawFn) -> list[EventDomain]:
    out = []
    for dom in draw(st.lists(domid, min_size=1, max_size=3, unique=True)):
        ports = draw(st.lists(st.integers(1, 2**17), max_size=6, unique=True))
        out.append(
            EventDomain(
                domid=dom,
                polling_vcpus=draw(st.sampled_from(["", "0", "0-1", "0,2-3"])),
                ports=tuple(draw(event_port(dom, p)) for p in sorted(ports)),
            )
        )
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    r = parse_console(text)
    assert r.total_lines == len(text.splitlines())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "gnttab_usage_print_all [ key 'g' pressed",
                    "gnttab_usage_print_all ] done",
                    "grant-table for remote d1 (v1)",
                    "  1 frames (64 max), 1 maptrack frames (1024 max)",
                    "[0x008]      0 0x3f001 0x00000001          0 0x03f001 0x19",
                    "no active grant table entries",
                    "'e' pressed -> dumping event-channel info",
                    "Event channel information for domain 0:",
                    "Polling vCPUs: {}",
                    "    port [p/m/s]",
                    "       1 [0/0/1]: s=5 n=0 x=0 v=0",
                    "       9 [1/0/  -   ]: s=3 n=0 x=0 d=1 p=3",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=40,
    ),
    prefixes,
)
def test_never_raises_on_shuffled_dump_fragments(lines: list[str], prefix: str) -> None:
    r = parse_console("\n".join(prefix + x for x in lines))
    for d in r.grant_dumps:
        for e in d.entries():
            assert any(t.domid == e.granter for t in d.tables)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(grant_tables(), event_domains(), prefixes, st.lists(st.integers(0, 60), max_size=4))
def test_valid_dumps_round_trip(
    tables: list[GrantTable], domains: list[EventDomain], prefix: str, guest_at: list[int]
) -> None:
    lines = [prefix + x for x in format_grant_dump(tables) + format_event_dump(domains)]
    # Guest console lines may interleave anywhere: they must not change the result.
    for pos in sorted(guest_at, reverse=True):
        lines.insert(min(pos, len(lines)), "(d7) guest output [0x001] s=3 p=1")
    r = parse_console("\n".join(lines))
    assert r.unparsed == () and r.problems == ()
    g = r.grants
    assert g is not None and g.complete
    assert list(g.tables) == tables
    ev = r.events
    assert ev is not None and ev.begin_seen
    assert list(ev.domains) == domains
