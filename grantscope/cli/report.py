"""``grantscope report [--json]``: findings and the joined tables for the running host.

Reads (never writes): the XenStore tree, the hypervisor's ``g`` and ``e`` dumps that the console
ring holds (dom0 only; with ``--capture`` it sends ``g`` and ``e`` first, see
:mod:`grantscope.sources.hvdump`; the ring is never emptied), two samples of
``/proc/interrupts`` and the xenbus sysfs counters ``--interval`` seconds apart, XenStore
quota per domain, processes holding /dev/xen devices, ``lsevtchn`` and /sys/hypervisor.
Whatever cannot be read is listed with the reason; the findings say which checks did not run.

Under ``--demo`` it reports on the simulated host (labelled SIMULATED, ``"simulated": true``).

Exit status: 0 the report was produced (with or without findings), 2 not a Xen host.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from grantscope.cli.output import print_json, print_lines
from grantscope.cli.progress import Progress, on_terminal
from grantscope.errors import UsageError
from grantscope.host.target import Target, target_for
from grantscope.model.devices_join import state_name
from grantscope.model.dumps import ConsoleParse, GrantEntry
from grantscope.model.findings import Analysis, Observation, Thresholds, analyze
from grantscope.model.runs import consecutive_runs
from grantscope.safefile import check_new_file, write_new_file
from grantscope.sources.observation import COLLECT_STEPS, collect_observation

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


def run_report(args: argparse.Namespace) -> int:
    """Collect an :class:`Observation` from this host, analyze it and print the result."""
    if args.interval < 0 or args.interval > 600:
        raise UsageError(
            f"--interval {args.interval:g} is out of range", "Give 0 to 600 seconds."
        )
    if not args.storm_rate > 0:
        raise UsageError(f"--storm-rate {args.storm_rate:g} must be above 0")
    if args.capture and args.no_dumps:
        raise UsageError("--capture and --no-dumps contradict each other", "Give one of them.")
    target = target_for(args, "report")
    target.require_xen(also="to read a dump saved on another host use 'grantscope dump "
                       "analyze FILE'")
    if target.simulated:
        obs, extra, capture = _simulated(target, dumps=not args.no_dumps)
        if args.save_console:
            raise UsageError("--save-console: the demo host has no console text to save",
                             "Its g and e dumps are built from the simulated tables; "
                             "'grantscope --demo report --json' shows them parsed.")
    else:
        if args.save_console:
            check_new_file(args.save_console, "--save-console")
        with Progress("report", total=COLLECT_STEPS,
                      enabled=on_terminal() and not args.json) as bar:
            started: list[str] = []

            def step(name: str) -> None:
                bar.update(name, completed=len(started))
                started.append(name)

            obs, extra, capture = collect_observation(
                interval=args.interval, dumps=not args.no_dumps, capture=args.capture,
                step=step,
            )
    if args.save_console and capture is not None:
        text = capture.earlier_console + (capture.text if capture.captured else "")
        write_new_file(args.save_console, text.encode(), "--save-console")
    analysis = analyze(obs, Thresholds(storm_rate=args.storm_rate))
    if args.json:
        print_json(target.mark({"ok": True, **analysis_json(analysis, obs.console), **extra}))
    else:
        if target.simulated:
            print(target.banner)
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


def _simulated(target: Target, *, dumps: bool) -> tuple[Observation, dict[str, Any], None]:
    """The demo host's observation (its dumps are always current: --capture changes nothing)."""
    obs = target.sim().observation()
    if not dumps:
        why = dict(obs.unavailable)
        why["grant dump"] = why["event dump"] = "skipped (--no-dumps)"
        obs = dataclasses.replace(obs, console=None, unavailable=why)
    info = target.sim().info()
    extra: dict[str, Any] = {
        "host": {"local_domid": info.domid, "hypervisor": {"type": "xen (simulated)"},
                 "label": info.label},
        "capture": None,
        "earlier_console": None,
        "quota": obs.quota.to_json() if obs.quota is not None else None,
        "lsevtchn": [],
        "interrupts": None,
        "holders": [h.to_json() for h in obs.holders or ()],
        "unavailable": dict(obs.unavailable),
    }
    return obs, extra, None


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
