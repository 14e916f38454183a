"""Capture the hypervisor's `g` (grant tables) and `e` (event channels) dumps without loss.

``xl debug-keys K`` makes Xen print into its console ring (16 KiB by default) and ``xl dmesg``
reads the ring back.  The ring is shared by every user of the host (boot messages, MCEs,
earlier warnings), so it is only ever *read*: never ``xl dmesg`` with its clear option.  A
capture (1) reads the ring, (2) sends one key, (3) reads the ring again and cuts the new dump
out of the new text by its markers (``g``: begin and end; ``e``: begin, up to the end of the
new text); one key at a time so two dumps never share the cut.  When the ring wrapped (the
text read before is no longer at the start of the ring) the capture says so; when the dump's
own begin marker was overwritten it is reported incomplete, naming ``conring_size=``.

Only the keys ``g`` and ``e`` are ever sent, and ``q`` only when the caller passes
``allow_q=True`` (it sends VIRQ_DEBUG to every guest).  Any other key is refused in code
before anything runs: some keys reboot or crash the host (``R``, ``C``).  Under ``--readonly``
no key is sent at all (:mod:`grantscope.xen.readonly`); :func:`read_ring` then parses what the
ring already holds.

Nothing here raises for a missing ``xl`` or a domU that may not send keys: the capture records
"unavailable: why" instead.  Commands run with timeouts.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import field
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.errors import UsageError
from grantscope.model.dumps import CONRING_HINT, ConsoleParse, parse_console, split_console_line
from grantscope.xen.readonly import refuse_if_readonly

__all__ = [
    "ALLOWED_KEYS",
    "DumpCapture",
    "ToolResult",
    "capture_dumps",
    "check_keys",
    "cut_dump",
    "new_ring_text",
    "read_ring",
    "run_tool",
]

#: The debug keys grantscope may send.  ``q`` is allowed only on explicit request.
ALLOWED_KEYS: frozenset[str] = frozenset({"g", "e"})
_Q = "q"


@slotted_dataclass(frozen=True)
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


def per_domain_outputs(
    domids: Iterable[int], argv: Callable[[int], Sequence[str]], what: str,
    problems: list[str], *, timeout: float,
    run: Callable[[Sequence[str]], ToolResult] | None = None,
) -> Iterator[tuple[int, str]]:
    """Run a tool once per domain (``argv(domid)``; ``run`` instead of a process, e.g. a
    XenStore request); yield each domain's stdout.

    A failure goes into ``problems`` as "WHAT of dN: why"; a missing tool ends the loop (asking
    again for every other domain would only say the same).
    """
    for domid in domids:
        res = run(argv(domid)) if run is not None else run_tool(argv(domid), timeout=timeout)
        if not res.ok:
            problems.append(f"{what} of d{domid}: {res.why}")
            if "not found" in res.why:
                break
            continue
        yield domid, res.stdout


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


@slotted_dataclass(frozen=True)
class DumpCapture:
    """What one capture (or one read of the ring) returned.

    ``earlier_console`` is the ring's content before the first key (read, not cleared: it is
    still in the ring); ``texts`` the dump cut out of the new text after each key (for
    :func:`read_ring`, key ``""`` holds the whole ring); ``parse`` the dumps found in them;
    ``problems`` sentences such as a dump that lost its start; ``notes`` what the user should
    know but is no failure (the ring wrapped, the dumps came from the ring, not a capture);
    ``unavailable`` why nothing could be read (empty when something was).
    """

    keys: tuple[str, ...]
    earlier_console: str
    texts: dict[str, str]
    parse: ConsoleParse | None
    problems: tuple[str, ...]
    unavailable: str = ""
    steps: tuple[ToolResult, ...] = field(default=())
    notes: tuple[str, ...] = ()
    captured: bool = True

    @property
    def text(self) -> str:
        """All captured console text, in key order (the ring's text for :func:`read_ring`)."""
        if not self.captured:
            return self.texts.get("", "")
        return "".join(self.texts[k] for k in self.keys if k in self.texts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the raw texts are left out; the parse is included)."""
        return {
            "keys": list(self.keys),
            "captured": self.captured,
            "unavailable": self.unavailable,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "earlier_console_lines": len(self.earlier_console.splitlines()),
            "steps": [s.to_json() for s in self.steps],
        }


def new_ring_text(before: str, after: str) -> tuple[str, bool]:
    """(the text ``after`` added to the ring since ``before``, whether the ring wrapped).

    The ring only appends and drops its oldest bytes, so ``after`` is a suffix of ``before``
    followed by the new text.  Without a wrap ``after`` starts with all of ``before``.  After a
    wrap the longest suffix of ``before`` that starts ``after`` is the overlap; when none is
    left the whole of ``after`` is new (and its start may be lost).
    """
    if after.startswith(before):
        return after[len(before):], False
    probe = after[:64]
    if len(probe) == 64:  # an overlap of 64 characters or more starts with these
        pos = before.find(probe)
        while pos >= 0:
            tail = before[pos:]
            if after.startswith(tail):
                return after[len(tail):], True
            pos = before.find(probe, pos + 1)
    for size in range(min(63, len(before), len(after)), 0, -1):  # a short overlap
        if after.startswith(before[-size:]):
            return after[size:], True
    return after, True


def _line_text(line: str) -> str:
    return split_console_line(line).text


def cut_dump(key: str, text: str) -> tuple[str, str]:
    """(the last ``key`` dump in ``text`` by its markers, a problem or "").

    ``g`` runs from its begin marker to its end marker; ``e`` from its begin line to the end
    of ``text`` (it has no end marker).  Without a begin marker the whole ``text`` is returned
    with a problem naming ``conring_size=``.
    """
    lines = text.splitlines(keepends=True)
    if key == "g":
        begin = "gnttab_usage_print_all [ key 'g' pressed"
    else:
        begin = f"'{key}' pressed -> dumping"
    starts = [i for i, ln in enumerate(lines) if _line_text(ln).startswith(begin)]
    if not starts:
        return text, (f"the '{key}' dump's begin marker is not in the new console text: the "
                      f"ring wrapped over its start. {CONRING_HINT}")
    first = starts[-1]
    if key != "g":
        return "".join(lines[first:]), ""
    for j in range(first + 1, len(lines)):
        if _line_text(lines[j]) == "gnttab_usage_print_all ] done":
            return "".join(lines[first:j + 1]), ""
    return "".join(lines[first:]), ""  # the parser reports the missing end marker


def _read(xl: str, timeout: float) -> ToolResult:
    # Reading only: the clear option would empty the ring for every other user of the host.
    return run_tool([xl, "dmesg"], timeout=timeout)


def read_ring(*, xl: str = "xl", timeout: float = 30.0) -> DumpCapture:
    """Parse the dumps the console ring already holds; sends no key (allowed under --readonly)."""
    read = _read(xl, timeout)
    if not read.ok:
        return DumpCapture(keys=(), earlier_console="", texts={}, parse=None, problems=(),
                           unavailable=f"hypervisor console unavailable: {read.why}",
                           steps=(read,), captured=False)
    parse = parse_console(read.stdout)
    notes = ["dumps read from what the console ring already held (no debug key was sent; "
             "--capture sends 'g' and 'e')"]
    return DumpCapture(keys=(), earlier_console=read.stdout, texts={"": read.stdout},
                       parse=parse, problems=tuple(parse.problems), steps=(read,),
                       notes=tuple(notes), captured=False)


def capture_dumps(
    keys: str = "ge", *, allow_q: bool = False, xl: str = "xl", timeout: float = 30.0
) -> DumpCapture:
    """Capture the dumps for ``keys`` (see module doc).

    Raises only for a bad key (UsageError) or under ``--readonly`` (ReadOnlyError, exit 2).
    """
    wanted = check_keys(keys, allow_q=allow_q)
    refuse_if_readonly(f"sending debug key(s) {' '.join(wanted)} to Xen (xl debug-keys)")
    steps: list[ToolResult] = []
    first = _read(xl, timeout)
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
    notes: list[str] = []
    ring = first.stdout
    for key in wanted:
        # check_keys already refused anything else; assert it again where the key is sent.
        if key not in ALLOWED_KEYS and not (allow_q and key == _Q):
            raise UsageError(f"refusing to send debug key {key!r} to Xen")
        sent = run_tool([xl, "debug-keys", key], timeout=timeout)
        steps.append(sent)
        if not sent.ok:
            problems.append(f"key '{key}' not sent: {sent.why}")
            continue
        read = _read(xl, timeout)
        steps.append(read)
        if not read.ok:
            problems.append(f"console not read after key '{key}': {read.why}")
            continue
        new, wrapped = new_ring_text(ring, read.stdout)
        ring = read.stdout
        if wrapped:
            notes.append(
                f"the console ring wrapped while capturing '{key}': its oldest lines were "
                "overwritten by Xen (grantscope clears nothing); boot Xen with a bigger ring "
                "(conring_size=, e.g. conring_size=1m) to keep more history"
            )
        dump, problem = cut_dump(key, new)
        if problem:
            problems.append(problem)
        texts[key] = dump
    parse = parse_console("".join(texts[k] for k in wanted if k in texts)) if texts else None
    if parse is not None:
        problems.extend(p for p in parse.problems if p not in problems)
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
        notes=tuple(notes),
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
