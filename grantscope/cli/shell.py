"""``grantscope completion SHELL`` and ``grantscope man``: both generated from the parser itself,
so they list every command and option there is, and never drift from ``--help``.

Completion scripts come from shtab (bash, zsh, fish); the man page is written here as roff.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

from grantscope import __version__

SHELLS = ("bash", "zsh", "fish")
_INSTALL = {
    "bash": "grantscope completion bash > ~/.local/share/bash-completion/completions/grantscope",
    "zsh": "grantscope completion zsh > ~/.zfunc/_grantscope  (with fpath+=~/.zfunc before "
    "compinit in ~/.zshrc)",
    "fish": "grantscope completion fish > ~/.config/fish/completions/grantscope.fish",
}


def register(subparsers: Any) -> None:
    """Add ``completion`` and ``man``."""
    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="Print the completion script for SHELL, generated from grantscope's own "
        "parser. Install it with:\n  " + "\n  ".join(_INSTALL.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    p.set_defaults(run=run_completion)
    m = subparsers.add_parser(
        "man",
        help="print the manual page (roff): grantscope man | man -l -",
        description="Print grantscope's manual page in roff, generated from the parser: view "
        "it with 'grantscope man | man -l -', or install it as "
        "~/.local/share/man/man1/grantscope.1.",
    )
    m.set_defaults(run=run_man)


def _root_parser() -> argparse.ArgumentParser:
    from grantscope.cli import build_parser

    return build_parser()


def run_completion(args: argparse.Namespace) -> int:
    """Print the script for ``args.shell``."""
    import shtab

    sys.stdout.write(shtab.complete(_root_parser(), shell=args.shell))
    return 0


def run_man(args: argparse.Namespace) -> int:
    """Print the man page."""
    sys.stdout.write(man_page(_root_parser()))
    return 0


def _roff(text: str) -> str:
    """Text safe in roff: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line
                     for line in text.splitlines())


def _options(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            flags = ", ".join(action.option_strings)
            if action.nargs != 0:
                flags += f" {action.metavar or action.dest.upper()}"
        else:
            flags = str(action.metavar or action.dest)
        out += [".TP", f"\\fB{_roff(flags)}\\fR", _roff(action.help or "")]
    return out


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {c.dest: c.help for c in action._choices_actions}
        for name, sub in action.choices.items():
            path = f"{prefix} {name}".strip()
            out += [".SS", _roff(f"grantscope {path}")]
            usage = sub.format_usage().replace("usage: ", "").strip()
            out += [".PP", f"\\fB{_roff(usage)}\\fR", ".PP", _roff(sub.description
                                                                   or helps.get(name) or "")]
            out += _options(sub)
            out += _commands(sub, path)
    return out


def man_page(parser: argparse.ArgumentParser) -> str:
    """The whole manual page for ``parser`` (the grantscope parser), in roff."""
    from grantscope.cli import EXIT_STATUS

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f'.TH GRANTSCOPE 1 "{date}" "grantscope {__version__}" "User Commands"',
        ".SH NAME",
        "grantscope \\- diagnostics for Xen grant tables, event channels and XenStore",
        ".SH SYNOPSIS",
        f"\\fB{_roff(parser.format_usage().replace('usage: ', '').strip())}\\fR",
        ".SH DESCRIPTION",
        _roff(parser.description or ""),
        ".SH OPTIONS",
        *_options(parser),
        ".SH COMMANDS",
        *_commands(parser, ""),
        ".SH EXIT STATUS",
    ]
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines += [
        ".SH FILES",
        ".TP", "\\fB$XDG_CONFIG_HOME/grantscope/settings.toml\\fR",
        "The theme last chosen in the TUI.",
        ".TP", "\\fB$XDG_CONFIG_HOME/grantscope/themes/*.toml\\fR",
        "Your own TUI themes (the format of the shipped ones).",
        ".TP", "\\fB$XDG_CONFIG_HOME/grantscope/keymap.toml\\fR",
        "Your key bindings, by binding id (F1 in the TUI lists them); "
        "\\fB$GRANTSCOPE_KEYMAP\\fR overrides the path.",
        ".SH SEE ALSO",
        "\\fBxl\\fR(1), \\fBxenstore\\-ls\\fR(1)",
    ]
    return "\n".join(lines) + "\n"
