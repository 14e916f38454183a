"""XenStore nodes this process created, and removing exactly those again.

A XenStore WRITE creates any missing parent directories, so "remove what I published" must
not mean "remove the directory": others may write siblings there meanwhile (a peer's answer,
a toolstack key).  :class:`OwnedNodes` records, for every write, whether the node existed
before (then its old value is restored rather than removed) and which parent directories the
write had to create; :meth:`OwnedNodes.remove` removes the nodes it created, restores the
values it replaced, and removes a directory it created only when nothing else is left in
it.  The CLI's ``offer --publish`` and every probe's publish step use it.  On the real
XenStore it also keeps a journal on disk of what it created until it removed it
(:mod:`grantscope.xen.xs_journal`), so nodes left by a killed process can be named later.
"""

from __future__ import annotations

import posixpath
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.xen.xs_journal import Journal

__all__ = ["OwnedNodes"]


@slotted_dataclass()
class _Written:
    path: str
    previous: bytes | None  # None: the node did not exist, so it is ours to remove


class OwnedNodes:
    """The nodes written through :meth:`write` (and the directories that write created)."""

    def __init__(self, store: Any, journal: Journal | None = None) -> None:
        self._store = store
        self._written: list[_Written] = []
        self._created_dirs: list[str] = []  # in creation order: parents before children
        # The real XenStore only (socket or xenbus): the demo host's store needs no journal.
        real = getattr(store, "transport", None) in ("socket", "xenbus")
        self._journal = journal if journal is not None else Journal() if real else None

    @property
    def paths(self) -> list[str]:
        """Every node written, in order."""
        return [w.path for w in self._written]

    @property
    def created_dirs(self) -> list[str]:
        """The directories that did not exist before a write created them."""
        return list(self._created_dirs)

    def _missing_parents(self, path: str) -> list[str]:
        missing: list[str] = []
        parent = posixpath.dirname(path.rstrip("/"))
        while parent not in ("", "/") and not self._store.exists(parent):
            missing.append(parent)
            parent = posixpath.dirname(parent)
        return list(reversed(missing))

    def write(self, path: str, value: bytes) -> None:
        """Write ``value`` at ``path``, recording what is ours to undo."""
        known = {w.path for w in self._written}
        previous = None if path in known else self._store.read_or_none(path)
        created = [d for d in self._missing_parents(path) if d not in self._created_dirs]
        if self._journal is not None and (previous is None or created):
            # Noted before the write: a kill between the two leaves a note of a node that
            # does not exist (harmless), never a node nobody noted.
            self._journal.record([path] if previous is None else [], created)
        self._store.write(path, value)
        self._created_dirs.extend(created)
        if path not in known:
            self._written.append(_Written(path, previous))

    def remove(self) -> list[str]:
        """Undo every write, newest first; the problems met (this never raises)."""
        problems: list[str] = []
        store = self._store
        for written in reversed(self._written):
            try:
                if written.previous is None:
                    store.rm(written.path)
                else:
                    store.write(written.path, written.previous)
            except Exception as exc:  # report and go on: every node gets its turn
                problems.append(f"could not remove {written.path}: "
                                f"{getattr(exc, 'message', exc)}")
        self._written.clear()
        for directory in reversed(self._created_dirs):  # children before parents
            try:
                if store.exists(directory) and not store.list(directory) \
                        and not store.read_or_none(directory):
                    store.rm(directory)
            except Exception as exc:
                problems.append(f"could not remove {directory}: "
                                f"{getattr(exc, 'message', exc)}")
        self._created_dirs.clear()
        if self._journal is not None and not problems:
            self._journal.close()  # all removed; with problems the note stays for 'report'
        return problems
