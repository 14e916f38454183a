"""A note on disk of the XenStore nodes a grantscope process created, until it removed them.

A process killed with SIGKILL (or by the OOM killer, or a host losing power mid-probe) runs no
cleanup: the nodes it published stay in XenStore, and nothing says whose they are.  So every
:class:`~grantscope.xen.xs_owned.OwnedNodes` that writes to the real XenStore keeps a journal
file, ``/run/grantscope/xenstore-PID-N.json`` (``GRANTSCOPE_RUN_DIR`` elsewhere), listing the
nodes and directories it created, with the process's id and start time; a clean removal
deletes it.  ``grantscope report`` reads the journals of processes that no longer run and names
the nodes that are still there (the ``xenstore-leftover`` finding; the journals are read by
:mod:`grantscope.sources.xs_journals`).  ``/run`` is emptied at
boot, as XenStore is.

The journal is a help, never a condition: a directory that cannot be written (not root, a
read-only ``/run``) only means no journal, said at debug level.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterable

from grantscope.safefile import replace_file

__all__ = ["MAX_BYTES", "MAX_NODES", "Journal", "process_start", "run_dir"]

log = logging.getLogger(__name__)
_numbers = itertools.count()
# A journal names at most this many nodes (what a probe publishes is a handful; a file from
# elsewhere that claims more is cut, so reading one stays bounded).
MAX_NODES = 4096
MAX_BYTES = 1 << 20


def run_dir() -> str:
    """Where the journals live: ``$GRANTSCOPE_RUN_DIR`` or ``/run/grantscope``."""
    return os.environ.get("GRANTSCOPE_RUN_DIR", "/run/grantscope")


def process_start(pid: int, proc: str = "/proc") -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or
    None when there is no such process: with the pid it names one process, even after the
    pid is reused."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after it
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


class Journal:
    """This process's note of the nodes one :class:`OwnedNodes` created (see the module doc)."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or run_dir()
        self.path = os.path.join(self.directory,
                                 f"xenstore-{os.getpid()}-{next(_numbers)}.json")
        self.nodes: list[str] = []
        self.dirs: list[str] = []
        self._broken = False

    def record(self, nodes: Iterable[str], dirs: Iterable[str]) -> None:
        """Add created ``nodes`` and ``dirs``, and write the journal down before going on."""
        self.nodes.extend(n for n in nodes if n not in self.nodes)
        self.dirs.extend(d for d in dirs if d not in self.dirs)
        if self._broken:
            return
        doc = {"pid": os.getpid(), "start": process_start(os.getpid()),
               "nodes": self.nodes, "dirs": self.dirs}
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            replace_file(self.path, json.dumps(doc).encode(), "XenStore journal", mode=0o600)
        except Exception as exc:  # a help, never a condition (module doc)
            self._broken = True
            log.debug("no XenStore journal at %s: %s", self.path, exc)

    def close(self) -> None:
        """Everything recorded was removed: the journal goes."""
        self.nodes.clear()
        self.dirs.clear()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("could not remove the XenStore journal %s: %s", self.path, exc)
