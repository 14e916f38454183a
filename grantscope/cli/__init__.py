"""The scriptable command line.

Each command group lives in its own module under ``grantscope.cli`` and exposes
``register(subparsers)``; it adds its sub-commands with ``set_defaults(run=...)``
where ``run(args) -> int`` returns the exit status.  Modules are imported only
when the parser is built, and none of them imports Textual: the TUI is loaded
lazily by :mod:`grantscope.cli.tui` when no command is given.

Exit status, one rule for every command (``EXIT_STATUS``, also in the README and checked by
``tests/unit/test_cli_conventions.py``): 0 success; 1 the operation ran and failed (explained);
2 bad usage or a refusal: a bad argument, a missing file, an unknown name, ``--readonly``
refusing a mutating command, a command needing Xen on a machine without it. Also 130 Ctrl-C
and 141 when the reader of standard output went away (``| head``), as for any Unix tool.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import sys
import time
from collections.abc import Sequence

from grantscope import __version__
from grantscope.cli.output import report_error
from grantscope.errors import GrantscopeError, UsageError
from grantscope.xen.readonly import readonly_session

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141
EXIT_STATUS = (
    (EXIT_OK, "ok"),
    (EXIT_FAILED, "the operation failed (the message says why)"),
    (EXIT_USAGE, "bad usage or a refusal: a bad argument, a missing file, an unknown name, "
     "--readonly, no Xen on this machine"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (EXIT_PIPE, "the reader of the output went away (| head): nothing is printed about it"),
)

log = logging.getLogger("grantscope")

#: Commands ``--demo`` cannot simulate, and why (a refusal, exit 2, never the real machine).
#: The others take the simulated host through :mod:`grantscope.host.target`.
DEMO_REFUSED = {
    "lab": "'lab' builds and boots a real Xen host under QEMU: there is nothing to simulate. "
    "Run it without --demo.",
}

# Command-group modules, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "doctor", "xs", "grants", "events", "probe", "report", "metrics", "dump", "bundle", "lab",
    "shell",
)

# Which module registers each command word, so that a command imports only its own module
# (``grantscope xs read`` in a shell loop should not pay for every command's imports).
# tests/unit/test_cli_startup.py checks it against what the modules really register.
COMMAND_HOMES: dict[str, str] = {
    "doctor": "doctor", "xs": "xs", "map": "grants", "offer": "grants", "notify": "events",
    "pingpong": "events", "probe": "probe", "report": "report", "metrics": "metrics",
    "dump": "dump", "bundle": "bundle", "lab": "lab", "completion": "shell", "man": "shell",
}

# Global options as _command_word reads them: those that take a value, and those that don't.
_GLOBAL_WITH_VALUE = ("--theme",)
_GLOBAL_FLAGS = ("--demo", "--readonly", "--verbose")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors name the problem and exit 2 without a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"grantscope: error: {message}\n")
        sys.stderr.write("Run 'grantscope --help' (or 'grantscope COMMAND --help') for usage.\n")
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser: global options, the TUI options and every command group; with
    ``only`` (a module of ``COMMAND_MODULES``), that one group alone."""
    parser = _Parser(
        prog="grantscope",
        description="Diagnostics for Xen grant tables, event channels and XenStore. "
        "Without a command, opens the interactive TUI.",
    )
    parser.add_argument("--version", action="version", version=f"grantscope {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log what grantscope does to stderr (-v: info, -vv: debug)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run on a simulated Xen host (dom0 and two guests) instead of this machine: "
        "the TUI, doctor, xs ls/read/watch, report, metrics, bundle export, probe run, map, "
        "offer, notify and pingpong; every output is labelled SIMULATED (\"simulated\": true "
        "with --json). Commands that read a file (dump analyze, bundle inspect/open/diff) do "
        "not need it; lab and dump capture refuse it (exit 2)",
    )
    parser.add_argument(
        "--readonly",
        action="store_true",
        help="a read-only session: no grant offered, no writable map, no event-channel bind "
        "or notify, no XenStore write/rm/mkdir/set-perms, no debug key sent to Xen; each "
        "refused action exits 2 naming --readonly",
    )
    parser.add_argument(
        "--theme", default=None,
        help="TUI theme: any theme the palette offers (Textual's and grantscope's, plus your "
        "own in $XDG_CONFIG_HOME/grantscope/themes/); the palette's choice is saved",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES if only is None else (only,):
        module = importlib.import_module(f"grantscope.cli.{name}")
        module.register(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    """``-v``: info, ``-vv``: debug, on stderr; without it only warnings and errors."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else \
        logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("grantscope: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("grantscope")
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit status."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at interpreter exit, so a closed pipe is caught
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # a pipe other than our output (a socket, a child): not the reader leaving
        # The reader left (| head): say nothing, and keep Python's own final flush quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE


def _stdout_closed() -> bool:
    """True when standard output is a pipe whose reader has gone (poll reports an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names after the global options, or None when it names none, asks
    for help or holds an option this quick reading does not know (the whole parser decides)."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in _GLOBAL_WITH_VALUE:
            index += 2
            continue
        if word in _GLOBAL_FLAGS or word.startswith("--theme=") or (
                len(word) > 1 and word.strip("-v") == "" and word.startswith("-v")):
            index += 1
            continue
        return word if not word.startswith("-") else None
    return None


def _main(argv: Sequence[str] | None) -> int:
    words = list(argv) if argv is not None else sys.argv[1:]
    command = _command_word(words)
    if command is None and words[:1] == ["--version"]:
        print(f"grantscope {__version__}")  # before any command module is imported
        return EXIT_OK
    parser = build_parser(COMMAND_HOMES.get(command or ""))
    args = parser.parse_args(words)
    setup_logging(int(getattr(args, "verbose", 0) or 0))
    started = time.monotonic()
    code = _dispatch(parser, args)
    log.info("%s: exit status %d after %.3f s", args.command or "tui", code,
             time.monotonic() - started)
    return code


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    log.debug("arguments: %s", vars(args))
    try:
        # The policy is enforced where each effect happens (grantscope.xen.readonly), so
        # no command and no TUI action can forget it.
        with readonly_session(bool(args.readonly)):
            if args.command is None:
                from grantscope.cli.tui import run_tui

                return run_tui(args)
            if args.demo and args.command in DEMO_REFUSED:
                raise UsageError(f"'{args.command}' cannot run under --demo",
                                 DEMO_REFUSED[args.command])
            run = getattr(args, "run", None)
            if run is None:
                parser.parse_args([args.command, "--help"])
                return 2
            return int(run(args))
    except GrantscopeError as err:
        return report_error(err, as_json=bool(getattr(args, "json", False)))
    except KeyboardInterrupt:
        sys.stderr.write("grantscope: interrupted\n")
        return EXIT_INTERRUPTED
