"""``grantscope report [--json]``: findings and the joined tables for the running host.

Reads (never writes): the XenStore tree, the hypervisor's ``g`` and ``e`` dumps that the console
ring holds (dom0 only; with ``--capture`` it sends ``g`` and ``e`` first, see
:mod:`grantscope.sources.hvdump`; the ring is never emptied), two samples of
``/proc/interrupts`` and the xenbus sysfs counters ``--interval`` seconds apart, XenStore
quota per domain, processes holding /dev/xen devices, ``lsevtchn`` and /sys/hypervisor.
Whatever cannot be read is listed with the reason; the findings say which checks did not run.

Exit status: 0 the report was produced (with or without findings), 2 not a Xen host.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grantscope.cli.output import print_json, print_lines
from grantscope.errors import GrantscopeError, NoXenError, UsageError
from grantscope.model.devices_join import state_name
from grantscope.model.dumps import ConsoleParse, GrantEntry
from grantscope.model.findings import Analysis, Observation, Thresholds, analyze
from grantscope.model.interrupts import InterruptsParse
from grantscope.model.runs import consecutive_runs
from grantscope.safefile import check_new_file, write_new_file

__all__ = ["analysis_json", "collect_observation", "register", "render_text", "run_report"]


def register(subparsers: Any) -> None:
    """Add ``report`` to the top-level parser."""
    p = subparsers.add_parser(
        "report",
        help="what is wrong on this Xen host: findings and joined device tables",
        description="Read XenStore, the hypervisor's g/e dumps (dom0), /proc/interrupts, "
        "xenbus counters and XenStore quota, join them per PV device and print findings. "
        "Without --capture the dumps are those the hypervisor console ring already holds "
        "(no debug key is sent; checks that need a missing dump are listed as not checked). "
        "The console ring is only read, never emptied.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between the two counter samples used for rates (default 2)",
    )
    p.add_argument(
        "--storm-rate",
        type=float,
        default=Thresholds().storm_rate,
        metavar="N",
        help="events per second on one Xen IRQ that count as a storm (default %(default)g)",
    )
    p.add_argument(
        "--capture",
        action="store_true",
        help="send 'g' and 'e' to Xen (xl debug-keys) for fresh dumps; refused with --readonly",
    )
    p.add_argument("--no-dumps", action="store_true",
                   help="do not read the hypervisor console at all")
    p.add_argument(
        "--save-console",
        metavar="FILE",
        help="write the console text read (earlier log, then any captured dumps) to a new "
        "file (mode 0600; an existing file or symlink is refused)",
    )
    p.set_defaults(run=run_report)


def _is_xen() -> bool:
    try:
        if Path("/sys/hypervisor/type").read_text().strip() == "xen":
            return True
    except OSError:
        pass
    proc_xen = Path("/proc/xen")
    return (proc_xen.is_dir() and any(proc_xen.iterdir())) or Path("/dev/xen").is_dir()


def _local_domid(store: Any) -> int | None:
    """This domain's id: 0 for the control domain, else XenStore's relative ``domid``."""
    try:
        caps = Path("/proc/xen/capabilities").read_text()
        if "control_d" in caps:
            return 0
    except OSError:
        pass
    try:
        if Path("/sys/hypervisor/start_flags/initdomain").read_text().strip() == "1":
            return 0
    except OSError:
        pass
    if store is not None:
        try:
            raw = store.read_or_none("domid")
        except GrantscopeError:
            raw = None
        if raw is not None and raw.strip().isdigit():
            return int(raw.strip())
    return None


def _read_xenstore(unavailable: dict[str, str]) -> tuple[Any, dict[str, bytes | None] | None]:
    from grantscope.xen.xenstore import XenStore

    try:
        store = XenStore.open()
    except GrantscopeError as err:
        unavailable["xenstore"] = err.message
        return None, None
    # A domU may not read the whole tree: fall back to what it can see, its own home last.
    roots = ["/", "/local/domain"]
    try:
        own = store.read_or_none("domid")  # relative: resolves under this domain's home
    except GrantscopeError:
        own = None
    if own is not None and own.strip().isdigit():
        roots.append(f"/local/domain/{int(own.strip())}")
    for root in roots:
        try:
            nodes = store.walk(root)
        except GrantscopeError as err:
            unavailable["xenstore"] = f"walk of {root} failed: {err.message}"
            continue
        unavailable.pop("xenstore", None)
        snapshot = {n.path: n.value for n in nodes}
        if root != "/":
            _add_backends(store, snapshot, unavailable)
        return store, snapshot
    return store, None


def _add_backends(store: Any, snapshot: dict[str, bytes | None],
                  unavailable: dict[str, str]) -> None:
    """Walk the backend directory each frontend in ``snapshot`` names, when it is outside.

    A domU cannot list dom0's tree, but the toolstack lets a frontend's domain read its
    backend's directory; without it a domU's report would call every backend absent.
    """
    for path, value in list(snapshot.items()):
        if not path.endswith("/backend") or "/device/" not in path or not value:
            continue
        backend = value.decode("utf-8", "replace")
        if not backend.startswith("/") or backend in snapshot:
            continue
        try:
            snapshot.update((n.path, n.value) for n in store.walk(backend))
        except GrantscopeError as err:
            unavailable[f"xenstore {backend}"] = f"walk failed: {err.message}"


def run_report(args: argparse.Namespace) -> int:
    """Collect an :class:`Observation` from this host, analyze it and print the result."""
    if args.interval < 0 or args.interval > 600:
        raise UsageError(
            f"--interval {args.interval:g} is out of range", "Give 0 to 600 seconds."
        )
    if not args.storm_rate > 0:
        raise UsageError(f"--storm-rate {args.storm_rate:g} must be above 0")
    if not _is_xen():
        raise NoXenError(
            "this machine is not running on Xen",
            "'grantscope report' reads the live hypervisor, XenStore and the kernel's Xen "
            "counters (/sys/hypervisor/type is not 'xen' and /proc/xen, /dev/xen are absent). "
            "To read a dump pasted from another host use 'grantscope dump analyze FILE'.",
        )
    if args.capture and args.no_dumps:
        raise UsageError("--capture and --no-dumps contradict each other", "Give one of them.")
    if args.save_console:
        check_new_file(args.save_console, "--save-console")
    obs, extra, capture = collect_observation(
        interval=args.interval, dumps=not args.no_dumps, capture=args.capture
    )
    if args.save_console and capture is not None:
        text = capture.earlier_console + (capture.text if capture.captured else "")
        write_new_file(args.save_console, text.encode(), "--save-console")
    analysis = analyze(obs, Thresholds(storm_rate=args.storm_rate))
    if args.json:
        print_json({"ok": True, **analysis_json(analysis, obs.console), **extra})
    else:
        print_lines(  # quotes XenStore values and console lines: shown cleaned
            render_text(
                analysis,
                obs.console,
                unavailable=dict(obs.unavailable),
                local_domid=obs.local_domid,
            )
        )
        for note in capture.notes if capture is not None else ():
            print(f"note: {note}")
    return 0


def collect_observation(
    *, interval: float = 2.0, dumps: bool = True, capture: bool = False
) -> tuple[Observation, dict[str, Any], Any]:
    """Read everything ``report`` needs from this host (see the module doc).

    ``dumps`` reads the g/e dumps from the console ring; ``capture`` sends ``g`` and ``e``
    first (refused under ``--readonly``), otherwise the ring is read as it is.

    Returns the :class:`Observation`, extra JSON members (host, quota, lsevtchn, raw
    interrupt rows, device holders, what was unavailable) and the dump capture (or None).
    Never raises for a source that cannot be read: it is listed in ``unavailable``.
    """
    from grantscope.sources.hvdump import capture_dumps, read_ring
    from grantscope.sources.lsevtchn import read_lsevtchn
    from grantscope.sources.procfs import (
        read_hypervisor,
        read_interrupts,
        read_xenbus_counters,
        xen_device_holders,
    )
    from grantscope.sources.quota import read_quota

    unavailable: dict[str, str] = {}
    store, snapshot = _read_xenstore(unavailable)
    local = _local_domid(store)
    if store is not None:
        store.close()

    console: ConsoleParse | None = None
    cap = None
    if not dumps:
        unavailable["grant dump"] = unavailable["event dump"] = "skipped (--no-dumps)"
    else:
        cap = capture_dumps("ge") if capture else read_ring()
        console = cap.parse
        if cap.unavailable:
            unavailable["grant dump"] = unavailable["event dump"] = cap.unavailable
        elif not capture:
            for key, what, got in (("g", "grant dump", console and console.grants),
                                   ("e", "event dump", console and console.events)):
                if got is None:
                    unavailable[what] = (f"the console ring holds no '{key}' dump and none was "
                                         "captured (--capture sends 'g' and 'e')")

    def interrupts() -> InterruptsParse | None:
        got = read_interrupts()
        if isinstance(got, str):
            unavailable["interrupts"] = got
            return None
        return got

    irq_a, cnt_a, t_a = interrupts(), read_xenbus_counters(), time.monotonic()
    time.sleep(interval)
    irq_b, cnt_b, t_b = interrupts(), read_xenbus_counters(), time.monotonic()

    domids = sorted(
        {
            int(m.group(1))
            for p in (snapshot or {})
            for m in [re.match(r"^/local/domain/(\d+)$", p)]
            if m
        }
    )
    if not domids and local is not None:
        domids = [local]
    quota = read_quota(domids)
    if not quota.usage:
        unavailable["quota"] = "; ".join(quota.unavailable) or "no domain to ask about"
    holders = xen_device_holders()
    ports, ls_why = read_lsevtchn(local) if local is not None else ((), "local domid unknown")
    if ls_why:
        unavailable["lsevtchn"] = ls_why
    obs = Observation(
        xenstore=snapshot,
        console=console,
        interrupts_before=irq_a,
        interrupts_after=irq_b,
        counters_before=cnt_a,
        counters_after=cnt_b,
        interval=t_b - t_a,
        quota=quota if quota.usage else None,
        holders=holders,
        local_domid=local,
        unavailable=unavailable,
    )
    extra: dict[str, Any] = {
        "host": {"local_domid": local, "hypervisor": read_hypervisor(), "pid": os.getpid()},
        "capture": cap.to_json() if cap is not None else None,
        # The console ring as it was before any key (read only: it is still in the ring).
        "earlier_console": cap.earlier_console if cap is not None else None,
        "quota": quota.to_json(),
        "lsevtchn": [p.to_json() for p in ports],
        "interrupts": irq_b.to_json() if irq_b is not None else None,
        "holders": [h.to_json() for h in holders],
        "unavailable": unavailable,
    }
    return obs, extra, cap


def analysis_json(analysis: Analysis, console: ConsoleParse | None) -> dict[str, Any]:
    """The JSON members shared by ``report`` and ``dump analyze``."""
    out = analysis.to_json()
    grants = console.grants if console else None
    events = console.events if console else None
    out["grant_tables"] = [t.to_json() for t in grants.tables] if grants else None
    out["event_domains"] = [d.to_json() for d in events.domains] if events else None
    out["dump_problems"] = list(console.problems) if console else []
    out["unparsed"] = (
        [{"line": u.lineno, "text": u.text, "reason": u.reason} for u in console.unparsed]
        if console
        else []
    )
    return out


def _fmt_mappers(m: tuple[tuple[int, int], ...] | None) -> str:
    if m is None:
        return "mappers unknown (no g dump)"
    if not m:
        return "not mapped"
    return ", ".join(f"mapped by d{d} pin 0x{p:08x}" for d, p in m)


def _entry_lines(entries: Sequence[GrantEntry]) -> list[str]:
    """One line per run of consecutive refs with the same mapper, pin and flags: a program
    mapping 200 pages is one line (``--json`` keeps every entry)."""
    lines: list[str] = []
    spans = consecutive_runs([e.ref for e in entries],
                             [(e.mapper, e.pin, e.flags) for e in entries])
    for i, j in spans:
        e, last = entries[i], entries[j]
        refs = (f"ref {e.ref} (0x{e.ref:x})" if i == j else
                f"refs {e.ref}-{last.ref} (0x{e.ref:x}-0x{last.ref:x}, {j - i + 1})")
        lines.append(f"      {refs} mapped by d{e.mapper} pin 0x{e.pin:08x} "
                     f"flags 0x{e.flags:02x}")
    return lines


def render_text(
    analysis: Analysis,
    console: ConsoleParse | None,
    *,
    unavailable: dict[str, str] | None = None,
    local_domid: int | None = None,
) -> str:
    """Findings, devices, dumps and what could not be read or parsed, as plain text."""
    lines: list[str] = []
    n = len(analysis.findings)
    lines.append(f"Findings: {n}" if n else "Findings: none")
    for f in analysis.findings:
        lines.append(f"  [{f.severity.upper()}] {f.code}: {f.title}")
        lines.extend(f"      evidence: {e}" for e in f.evidence)
        lines.append(f"      do: {f.action}")
    if analysis.not_checked:
        lines.append("Not checked:")
        lines.extend(f"  - {c}" for c in analysis.not_checked)
    if analysis.devices:
        lines.append(f"PV devices: {len(analysis.devices)}")
        for d in analysis.devices:
            lines.append(
                f"  {d.name}: frontend {state_name(d.frontend_state)}, "
                f"backend {state_name(d.backend_state)}"
            )
            for link in d.grants:
                lines.append(f"      {link.key} = {link.ref}: {_fmt_mappers(link.mappers)}")
            for pl in d.ports:
                fe = pl.frontend
                be = pl.backend
                desc = f"      {pl.key} = {pl.frontend_port}"
                if fe is None:
                    desc += ": not in the e dump" if console and console.events else ""
                else:
                    desc += (
                        f" [{fe.state_name} p={int(fe.pending)} m={int(fe.masked)}]"
                        + (f" -> d{fe.remote_domid}:{fe.remote_port}" if fe.remote_port else "")
                    )
                    if be is not None:
                        desc += f" [{be.state_name} p={int(be.pending)} m={int(be.masked)}]"
                lines.append(desc)
            if d.irqs:
                for i in d.irqs:
                    lines.append(f"      irq {i.irq} {i.action}: {i.total} events ({i.match})")
            for c in d.counters:
                lines.append(
                    f"      sysfs {c.device}: events={c.events} spurious={c.spurious_events} "
                    f"eoi_delayed_jiffies={c.jiffies_eoi_delayed}"
                )
            lines.extend(f"      problem: {msg}" for msg in d.problems)
            lines.extend(f"      note: {msg}" for msg in d.notes)
    if console is not None:
        g = console.grants
        if g is not None:
            lines.append(
                "Grant tables ('g' dump" + ("" if g.complete else ", INCOMPLETE") + "):"
            )
            for t in g.tables:
                lines.append(
                    f"  d{t.domid} v{t.version}: {t.frames}/{t.max_frames} frames, "
                    f"{t.maptrack_frames}/{t.max_maptrack_frames} maptrack, "
                    f"{len(t.entries)} active entries"
                )
                lines.extend(_entry_lines(t.entries))
        ev = console.events
        if ev is not None:
            lines.append("Event channels ('e' dump):")
            for dom in ev.domains:
                lines.append(f"  d{dom.domid}: {len(dom.ports)} ports")
                for p in dom.ports:
                    extra = ""
                    if p.remote_domid is not None:
                        extra = f" d={p.remote_domid}"
                        if p.remote_port is not None:
                            extra += f" p={p.remote_port}"
                    elif p.virq is not None:
                        extra = f" virq={p.virq}"
                    elif p.pirq is not None:
                        extra = f" pirq={p.pirq}"
                    lines.append(
                        f"      {p.port:5d} {p.state_name:<11} pending={int(p.pending)} "
                        f"masked={int(p.masked)}{extra}"
                    )
        if console.problems:
            lines.append("Dump problems:")
            lines.extend(f"  - {p}" for p in console.problems)
        if console.unparsed:
            lines.append(f"Could not parse ({len(console.unparsed)} lines):")
            for u in console.unparsed:
                lines.append(f"  line {u.lineno}: {u.text}")
                lines.append(f"      ({u.reason})")
    if unavailable:
        lines.append("Unavailable:")
        lines.extend(f"  - {k}: {v}" for k, v in sorted(unavailable.items()))
    return "\n".join(lines)
