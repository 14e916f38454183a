"""``grantscope probe list`` and ``grantscope probe run NAME [KEY=VALUE ...]``.

``probe list`` needs no Xen.  ``probe run`` checks for Xen and the devices the
probe uses first (exit 2 with an explanation when absent), refuses a mutating
probe under the global ``--readonly`` (exit 2), and always runs the cleanup:
on a failed step, on Ctrl-C, on SIGTERM and on SIGHUP.  It drives the probe through
:func:`grantscope.probing.runner.drive`, as ``map``, ``offer``, ``notify`` and ``pingpong``
do: the same signal handling, cleanup and exit status.

``--step`` runs one step at a time.  Before each step it prints what comes next
and reads one line from standard input: Enter runs the step, ``q`` stops (the
cleanup still runs).  On a terminal that is an interactive prompt; without a
terminal the same lines are read from the pipe or file, so a script can drive
the steps, and end of input stops the probe as ``q`` does.

Exit status: 0 every step ran (a step marked may-fail, like explain-map's map
attempt, may have failed: that is its finding); 1 a step failed or the run was
stopped; 2 bad usage, ``--readonly`` refusal or no Xen; 130 Ctrl-C; 143 SIGTERM; 129 SIGHUP.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from grantscope.cli.output import print_json
from grantscope.errors import UsageError
from grantscope.host.target import target_for
from grantscope.probing.engine import ProbeRun, StepRecord
from grantscope.probing.params import SelfDomid, XsRef, split_assignments
from grantscope.probing.registry import find_probe, load_builtin_probes
from grantscope.probing.runner import Outcome, RunHooks, drive, interrupt_name
from grantscope.probing.steps import SAMPLES_KEY


def register(subparsers: Any) -> None:
    """Add ``probe list`` and ``probe run`` to the top-level parser."""
    parser = subparsers.add_parser(
        "probe",
        help="run step-by-step probes (map a grant, offer a page, notify, ...)",
        description="Step-by-step scenarios against the grant and event-channel devices.",
    )
    sub = parser.add_subparsers(dest="probe_command", metavar="SUBCOMMAND")
    listing = sub.add_parser(
        "list", help="list the built-in probes and their parameters",
        description="Every built-in probe: what it does, whether it changes state "
        "([mutating]), its KEY=VALUE parameters with their defaults (with --demo, also a "
        "command that runs it on the demo host). Needs no Xen.")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(run=run_list)
    run = sub.add_parser(
        "run",
        add_help=False,  # -h/--help after NAME shows that probe's parameters (_ProbeHelp)
        help="run a probe",
        description="Run probe NAME with KEY=VALUE parameters. A domid, gref or port may be "
        "xs:PATH (read from XenStore); a domid may be 'self'. --step runs one step at a "
        "time, reading a line from stdin before each (Enter: run it, q: stop); without a "
        "terminal the lines come from the pipe and end of input stops. Cleanup always runs.",
    )
    run.add_argument("-h", "--help", action=_ProbeHelp, nargs=0,
                     help="show this help; after NAME, that probe's parameters")
    run.add_argument("name", metavar="NAME", help="probe name (see 'grantscope probe list')")
    run.add_argument("params", metavar="KEY=VALUE", nargs="*", help="probe parameters")
    run.add_argument("--step", action="store_true", help="run one step at a time")
    run.add_argument("--json", action="store_true", help="print one JSON document at the end")
    run.set_defaults(run=run_probe_command)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


class _ProbeHelp(argparse.Action):
    """``probe run [NAME] --help``: the generic help, then NAME's summary and parameters.

    An unknown NAME is bad usage (exit 2), not help: the user asked about a probe that does
    not exist."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        name = getattr(namespace, "name", None)
        if name is None:
            parser.print_help()
            parser.exit(0)
        try:
            probe = find_probe(str(name))
        except UsageError as err:
            parser.error(f"{err.message}. {err.explanation}")
        parser.print_help()
        sys.stdout.write(f"\nprobe {_describe(probe, bool(getattr(namespace, 'readonly', False)))}")
        parser.exit(0)


def _describe(probe: Any, readonly: bool) -> str:
    """One probe as ``probe list`` shows it: name, marks, summary, one line per parameter."""
    if readonly and probe.mutating:
        mark = "  [mutating: refused with --readonly]"
    elif probe.mutating:
        mark = "  [mutating]"
    else:
        mark = ""
    lines = [f"{probe.name}{mark}", f"    {probe.summary}"]
    for param in probe.params:
        default = "required" if param.default is None else f"default {param.default!r}"
        lines.append(f"    {param.name}={param.kind.upper()}  ({default}) {param.help}")
    return "\n".join(lines) + "\n"


# -- probe list ------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    """Print the built-in probes; under ``--readonly`` mark those that would be refused."""
    readonly = bool(getattr(args, "readonly", False))
    probes = load_builtin_probes()
    # Under --demo: the values that work on the simulated host, to copy into 'probe run'.
    target = target_for(args, "probe list")
    hints = target.sim().probe_hints() if target.simulated else {}
    if args.json:
        print_json(target.mark(
            {
                "ok": True,
                "readonly": readonly,
                "probes": [
                    {
                        "name": p.name,
                        "summary": p.summary,
                        "mutating": p.mutating,
                        "refused_readonly": readonly and p.mutating,
                        "needs": list(p.needs),
                        "params": [
                            {"name": q.name, "kind": q.kind, "default": q.default, "help": q.help}
                            for q in p.params
                        ],
                        **({"demo_values": hints.get(p.name, {})} if target.simulated else {}),
                    }
                    for p in probes
                ],
            }
        ))
        return 0
    if target.simulated:
        sys.stdout.write(target.banner + "\n")
    for probe in probes:
        sys.stdout.write(_describe(probe, readonly))
        if target.simulated:
            values = " ".join(f"{k}={v}" for k, v in hints.get(probe.name, {}).items())
            sys.stdout.write(f"    on the demo host: grantscope --demo probe run {probe.name}"
                             f"{' ' + values if values else ''}\n")
    return 0


# -- probe run -------------------------------------------------------------------
def _format_args(arguments: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in arguments.items())


def _format_result(result: dict[str, Any]) -> str:
    # Long lists (e.g. explain-map's causes) are worded in the explanation already.
    shown = {k: v for k, v in result.items()
             if not isinstance(v, (list, dict)) or len(repr(v)) <= 80}
    text = _format_args(shown)
    return text + (" (more with --json)" if len(shown) < len(result) else "")


def _print_record(record: StepRecord, total: int, out: TextIO) -> None:
    where = f"{record.index + 1}/{total}" if record.phase == "step" else "cleanup"
    status = "ok" if record.ok else "FAILED"
    if not record.ok and record.errno is not None:
        status += f" ({record.errno_name})"
    out.write(
        f"[{where}] {record.name}: {status}  {record.duration_s * 1000:.1f} ms\n"
        f"    call {record.call} {_format_args(record.arguments)}\n"
    )
    if record.result and record.ok:
        out.write(f"    result {_format_result(record.result)}\n")
    for line in record.explanation.splitlines():
        out.write(f"    {line}\n")
    samples = record.result.get(SAMPLES_KEY) if record.result and record.ok else None
    if isinstance(samples, list) and samples:
        # pingpong's round trips: the histogram 'grantscope pingpong' and the TUI draw
        from grantscope.model.histogram import histogram

        out.write(f"    round trips ({len(samples)}):\n")
        out.writelines(f"    {line}\n" for line in histogram([float(v) for v in samples]))
    out.flush()


def _ask(run: ProbeRun, stdin: TextIO, out: TextIO) -> bool:
    """Show the next step and read one line: True to run it, False to stop."""
    index = run.next_index
    step = run.steps[index]
    change = " (changes state)" if step.mutating else ""
    prompt = f"next {index + 1}/{len(run.step_names)}: {step.name}{change} - Enter runs, q stops: "
    out.write(prompt)
    out.flush()
    line = stdin.readline()
    if not stdin.isatty():
        out.write("\n")
    return bool(line) and line.strip().lower() not in ("q", "quit")


def _hooks(run: ProbeRun, args: argparse.Namespace, out: TextIO) -> RunHooks:
    """Print each step's record as it is made (not with --json); with --step, ask first."""
    total = len(run.step_names)

    def before(run: ProbeRun) -> bool:
        return _ask(run, sys.stdin, out) if args.step else True

    def on_step(record: StepRecord) -> None:
        if not args.json:
            _print_record(record, total, out)

    return RunHooks(before=before, on_step=on_step)


def _outcome_text(done: Outcome) -> str:
    """How the run ended, in the words of the summary line and the JSON ``outcome``."""
    if done.interrupted is not None:
        if isinstance(done.interrupted, KeyboardInterrupt):
            return "interrupted (Ctrl-C)"
        return f"interrupted ({interrupt_name(done.interrupted)})"
    if done.stopped:
        return "stopped"
    return "completed" if done.run.ok else "failed"


def run_probe_command(args: argparse.Namespace) -> int:
    """Run one probe on this host's devices; see the module docstring for exit status."""
    probe = find_probe(args.name)
    values = split_assignments(list(args.params))
    readonly = bool(getattr(args, "readonly", False))
    target = target_for(args, f"probe run {probe.name}")  # --demo: the simulated devices
    devices = target.devices()
    # Check the values and --readonly before looking for Xen: bad input is bad anywhere.
    run = ProbeRun(probe, values, devices, readonly=readonly)
    target.require_devices(tuple(probe.needs))
    devices.preload()  # so the first step's duration is the call, not Python imports
    # With --json the prompts go to stderr so stdout stays one JSON document.
    out = sys.stderr if args.json else sys.stdout
    if not args.json:
        if target.simulated:
            out.write(target.banner + "\n")
        out.write(f"probe {probe.name} ({len(run.step_names)} steps)\n")
    done = drive(run, _hooks(run, args, out))
    outcome, code = _outcome_text(done), done.exit_code
    steps = [r for r in run.records if r.phase == "step"]
    leftovers = [r for r in done.cleanup if not r.ok]
    if args.json:
        print_json(target.mark(
            {
                "ok": code == 0,
                "probe": probe.name,
                "devices": devices.name,
                "outcome": outcome,
                "values": {k: _jsonable(v) for k, v in run.current_values.items()},
                "steps": [r.to_json() for r in steps],
                "not_run": run.step_names[len(steps):],
                "cleanup": [r.to_json() for r in done.cleanup],
            }
        ))
        return code
    for record in done.cleanup:
        _print_record(record, len(run.step_names), out)
    not_run = run.step_names[len(steps):]
    summary = f"probe {probe.name}: {outcome}" + (" (SIMULATED)" if target.simulated else "")
    if not_run:
        summary += f"; not run: {', '.join(not_run)}"
    if leftovers:
        summary += f"; {len(leftovers)} release(s) failed"
    out.write(summary + "\n")
    return code


def _jsonable(value: Any) -> Any:
    if isinstance(value, XsRef):
        return f"xs:{value.path}"
    if isinstance(value, SelfDomid):
        return "self"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
