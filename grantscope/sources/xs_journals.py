"""The XenStore journals of grantscope processes that no longer run (read-only).

A journal (:mod:`grantscope.xen.xs_journal`) lists the nodes a process created and had not
removed yet; when the process is gone (its pid no longer runs, or now names another process
started later), what is still listed was never cleaned up.
"""

from __future__ import annotations

import json
import os

from grantscope._compat import slotted_dataclass
from grantscope.xen.xs_journal import MAX_BYTES, MAX_NODES, process_start, run_dir

__all__ = ["JournalEntry", "dead_journals"]


@slotted_dataclass(frozen=True)
class JournalEntry:
    """A journal whose process no longer runs: the nodes it created and never removed."""

    file: str
    pid: int
    nodes: tuple[str, ...]
    dirs: tuple[str, ...]


def dead_journals(directory: str | None = None,
                  proc: str = "/proc") -> tuple[tuple[JournalEntry, ...], tuple[str, ...]]:
    """The journals of processes that are gone (or whose pid now names another process), and
    what could not be read; never raises."""
    where = directory or run_dir()
    try:
        names = sorted(n for n in os.listdir(where)
                       if n.startswith("xenstore-") and n.endswith(".json"))
    except FileNotFoundError:
        return (), ()
    except OSError as exc:
        return (), (f"{where}: {exc.strerror or exc}",)
    found: list[JournalEntry] = []
    problems: list[str] = []
    for name in names:
        path = os.path.join(where, name)
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read(MAX_BYTES + 1)[:MAX_BYTES])
            pid, start = int(doc["pid"]), doc.get("start")
            nodes = [str(n) for n in doc.get("nodes", [])][:MAX_NODES]
            dirs = [str(d) for d in doc.get("dirs", [])][:MAX_NODES]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        alive = process_start(pid, proc)
        if alive is not None and (start is None or alive == start):
            continue  # still running: its nodes are in use
        found.append(JournalEntry(path, pid, tuple(nodes), tuple(dirs)))
    return tuple(found), tuple(problems)
