"""The scriptable command line.

Each command group lives in its own module under ``grantscope.cli`` and exposes
``register(subparsers)``; it adds its sub-commands with ``set_defaults(run=...)``
where ``run(args) -> int`` returns the exit status.  Modules are imported only
when the parser is built, and none of them imports Textual: the TUI is loaded
lazily by :mod:`grantscope.cli.tui` when no command is given.

Exit status: 0 success, 1 the operation failed (explained), 2 bad usage or no Xen.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from grantscope import __version__
from grantscope.cli.output import report_error
from grantscope.errors import GrantscopeError

# Command-group modules, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "doctor", "xs", "grants", "events", "probe", "report", "dump", "bundle", "lab",
)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors name the problem and exit 2 without a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"grantscope: error: {message}\n")
        sys.stderr.write("Run 'grantscope --help' (or 'grantscope COMMAND --help') for usage.\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: global options, the TUI options and every command group."""
    parser = _Parser(
        prog="grantscope",
        description="Diagnostics for Xen grant tables, event channels and XenStore. "
        "Without a command, opens the interactive TUI.",
    )
    parser.add_argument("--version", action="version", version=f"grantscope {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the TUI on a simulated host (pictures and UI only; labelled SIMULATED)",
    )
    parser.add_argument(
        "--readonly", action="store_true", help="hide and refuse every mutating action"
    )
    parser.add_argument(
        "--theme", default=None,
        help="TUI theme: any theme the palette offers (Textual's and grantscope's, plus your "
        "own in $XDG_CONFIG_HOME/grantscope/themes/); the palette's choice is saved",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"grantscope.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.command is None:
            from grantscope.cli.tui import run_tui

            return run_tui(args)
        run = getattr(args, "run", None)
        if run is None:
            parser.parse_args([args.command, "--help"])
            return 2
        return int(run(args))
    except GrantscopeError as err:
        return report_error(err, as_json=bool(getattr(args, "json", False)))
    except KeyboardInterrupt:
        sys.stderr.write("grantscope: interrupted\n")
        return 130
