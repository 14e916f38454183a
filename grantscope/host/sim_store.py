"""The simulated host's XenStore as the ``xs`` commands and the TUI read it.

Reading or watching it first applies the changes the simulated clock implies (the guests'
heartbeats), so ``grantscope --demo xs watch`` sees the store change as on a live host.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence

from grantscope.closing import Closing
from grantscope.host.base import WatchHandle
from grantscope.host.sim_xenstore import SimXenStore
from grantscope.xen.xs_types import Perms, XsNode

__all__ = ["AdvancingWatch", "SimStoreView"]


class SimStoreView(Closing):
    """The simulated store with the methods of :class:`grantscope.xen.xenstore.XenStore` the
    read-only commands use; each call first applies the changes the clock implies.

    ``advance`` is the simulated host's: it writes the heartbeats the clock is due (given as
    a callable so this module needs nothing of the host, which makes these views).
    """

    transport = "sim"

    def __init__(self, store: SimXenStore, advance: Callable[[], None]) -> None:
        self._store = store
        self._advance = advance

    def list(self, path: str) -> list[str]:
        """Child names of ``path`` (ENOENT XenStoreError when it does not exist)."""
        self._advance()
        return list(self._store.list(path))

    def read(self, path: str) -> bytes:
        """The value of ``path`` (ENOENT XenStoreError when it does not exist)."""
        self._advance()
        return self._store.read(path)

    def read_or_none(self, path: str) -> bytes | None:
        """The value of ``path`` or None."""
        self._advance()
        return self._store.read_or_none(path)

    def get_perms(self, path: str) -> Perms:
        """Permissions of ``path``."""
        return self._store.get_perms(path)

    def walk(self, root: str = "/", *, perms: bool = False) -> builtins.list[XsNode]:
        """The subtree under ``root``, parents first."""
        self._advance()
        return list(self._store.walk(root, perms=perms))

    def list_many(self, paths: Sequence[str]) -> dict[str, builtins.list[str]]:
        """Several directories at once (the simulated store's ``list_many``)."""
        self._advance()
        return self._store.list_many(paths)

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Several values at once (the simulated store's ``read_many``)."""
        return {path: self.read_or_none(path) for path in paths}

    def watch(self, path: str) -> AdvancingWatch:
        """A watch on ``path`` that fires on the simulated guests' heartbeats."""
        return AdvancingWatch(self._store.watch(path), self._advance)

    def close(self) -> None:
        """Nothing to release (the store belongs to the host)."""



class AdvancingWatch(Closing):
    """Wraps a store watch so waiting on it also lets the clock-driven changes happen."""

    def __init__(self, inner: WatchHandle, advance: Callable[[], None]) -> None:
        self._inner = inner
        self._advance = advance

    def get(self, timeout: float) -> str | None:
        got = self._inner.get(0)
        if got is not None:
            return got
        self._advance()
        return self._inner.get(timeout)

    def take_notice(self) -> str | None:
        """Never a notice: the simulated store is never disconnected."""
        return None

    def close(self) -> None:
        self._inner.close()

