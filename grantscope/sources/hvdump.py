"""Capture the hypervisor's `g` (grant tables) and `e` (event channels) dumps without loss.

``xl debug-keys K`` makes Xen print into its console ring (16 KiB by default) and ``xl dmesg``
reads the ring back.  To keep a dump whole the capture (1) saves and clears the ring with
``xl dmesg -c`` (that earlier log is returned, not thrown away), (2) sends one key, (3) reads
the ring with ``xl dmesg -c`` and checks the dump's markers; one key at a time so two dumps
never share the ring.  A missing marker means the ring was too small: the result says so and
names ``conring_size=``.

Only the keys ``g`` and ``e`` are ever sent, and ``q`` only when the caller passes
``allow_q=True`` (it sends VIRQ_DEBUG to every guest).  Any other key is refused in code
before anything runs: some keys reboot or crash the host (``R``, ``C``).

Nothing here raises for a missing ``xl`` or a domU that may not send keys: the capture records
"unavailable: why" instead.  Commands run with timeouts.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grantscope.errors import UsageError
from grantscope.model.dumps import CONRING_HINT, ConsoleParse, parse_console

__all__ = [
    "ALLOWED_KEYS",
    "DumpCapture",
    "ToolResult",
    "capture_dumps",
    "check_keys",
    "run_tool",
]

#: The debug keys grantscope may send.  ``q`` is allowed only on explicit request.
ALLOWED_KEYS: frozenset[str] = frozenset({"g", "e"})
_Q = "q"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one external command: its output, or why there is none."""

    argv: tuple[str, ...]
    ok: bool
    stdout: str
    why: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (output left out: callers include what they parsed)."""
        return {"argv": list(self.argv), "ok": self.ok, "why": self.why}


def run_tool(argv: Sequence[str], *, timeout: float = 30.0) -> ToolResult:
    """Run ``argv`` read-only with a timeout; never raises.

    A missing program, a timeout or a non-zero exit becomes ``ok=False`` with ``why`` naming
    the cause (the tool's own stderr included, since it usually says it best).
    """
    args = tuple(argv)
    if shutil.which(args[0]) is None:
        return ToolResult(args, False, "", f"{args[0]} not found (install the Xen tools, e.g. "
                          "Debian's xen-utils, and run grantscope in dom0)")
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ToolResult(args, False, "", f"'{' '.join(args)}' did not finish in {timeout:g} s")
    except OSError as err:
        return ToolResult(args, False, "", f"could not run '{' '.join(args)}': {err.strerror}")
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        tail = detail[-1] if detail else "no message"
        return ToolResult(
            args,
            False,
            proc.stdout,
            f"'{' '.join(args)}' exited with status {proc.returncode}: {tail}",
        )
    return ToolResult(args, True, proc.stdout, "")


def check_keys(keys: str, *, allow_q: bool = False) -> tuple[str, ...]:
    """The keys to send, in order, or :class:`UsageError` if any is not allowed.

    This is the one gate every capture goes through: only ``g`` and ``e`` (and ``q`` with
    ``allow_q``) pass; duplicates are dropped.
    """
    allowed = set(ALLOWED_KEYS) | ({_Q} if allow_q else set())
    out: list[str] = []
    for key in keys:
        if key not in allowed:
            extra = " ('q' notifies every guest and needs an explicit request)" if key == _Q else ""
            raise UsageError(
                f"refusing to send debug key {key!r} to Xen{extra}",
                "grantscope only sends 'g' (grant tables) and 'e' (event channels): other keys "
                "change the host's state, and some reboot or crash it.",
            )
        if key not in out:
            out.append(key)
    if not out:
        raise UsageError("no debug key given", "Pass 'g', 'e' or both.")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DumpCapture:
    """What one capture returned.

    ``earlier_console`` is the ring's content saved by the first ``xl dmesg -c`` (so the
    capture destroys no log); ``texts`` the console text read after each key;
    ``parse`` the dumps found in all of them; ``problems`` sentences such as a missing
    marker; ``unavailable`` why nothing could be captured (empty when something was).
    """

    keys: tuple[str, ...]
    earlier_console: str
    texts: dict[str, str]
    parse: ConsoleParse | None
    problems: tuple[str, ...]
    unavailable: str = ""
    steps: tuple[ToolResult, ...] = field(default=())

    @property
    def text(self) -> str:
        """All captured console text, in key order."""
        return "".join(self.texts[k] for k in self.keys if k in self.texts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the raw texts are left out; the parse is included)."""
        return {
            "keys": list(self.keys),
            "unavailable": self.unavailable,
            "problems": list(self.problems),
            "earlier_console_lines": len(self.earlier_console.splitlines()),
            "steps": [s.to_json() for s in self.steps],
        }


def capture_dumps(
    keys: str = "ge", *, allow_q: bool = False, xl: str = "xl", timeout: float = 30.0
) -> DumpCapture:
    """Capture the dumps for ``keys`` (see module doc); never raises except for a bad key."""
    wanted = check_keys(keys, allow_q=allow_q)
    steps: list[ToolResult] = []
    first = run_tool([xl, "dmesg", "-c"], timeout=timeout)
    steps.append(first)
    if not first.ok:
        return DumpCapture(
            keys=wanted,
            earlier_console="",
            texts={},
            parse=None,
            problems=(),
            unavailable=f"hypervisor dumps unavailable: {first.why}",
            steps=tuple(steps),
        )
    texts: dict[str, str] = {}
    problems: list[str] = []
    for key in wanted:
        # check_keys already refused anything else; assert it again where the key is sent.
        if key not in ALLOWED_KEYS and not (allow_q and key == _Q):
            raise UsageError(f"refusing to send debug key {key!r} to Xen")
        sent = run_tool([xl, "debug-keys", key], timeout=timeout)
        steps.append(sent)
        if not sent.ok:
            problems.append(f"key '{key}' not sent: {sent.why}")
            continue
        read = run_tool([xl, "dmesg", "-c"], timeout=timeout)
        steps.append(read)
        if not read.ok:
            problems.append(f"console not read after key '{key}': {read.why}")
            continue
        texts[key] = read.stdout
    parse = parse_console("".join(texts[k] for k in wanted if k in texts)) if texts else None
    if parse is not None:
        problems.extend(parse.problems)
        problems.extend(_marker_problems(wanted, texts, parse))
    unavailable = "" if texts else "hypervisor dumps unavailable: " + "; ".join(problems)
    return DumpCapture(
        keys=wanted,
        earlier_console=first.stdout,
        texts=texts,
        parse=parse,
        problems=tuple(problems),
        unavailable=unavailable,
        steps=tuple(steps),
    )


def _marker_problems(
    keys: tuple[str, ...], texts: dict[str, str], parse: ConsoleParse
) -> list[str]:
    """A dump we asked for but whose begin (or, for 'g', end) marker is absent."""
    out: list[str] = []
    if "g" in texts and not any(d.complete for d in parse.grant_dumps) and not parse.grant_dumps:
        out.append(
            "the 'g' dump was requested but neither of its markers is in the console text. "
            + CONRING_HINT
        )
    if "e" in texts and not parse.event_dumps:
        out.append(
            "the 'e' dump was requested but its begin line is not in the console text. "
            + CONRING_HINT
        )
    return out
