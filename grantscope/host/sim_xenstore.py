"""The demo host's in-memory XenStore: nodes, permissions, watches and transactions.

It answers the methods of :class:`grantscope.xen.xenstore.XenStore` the probes, the CLI and the
TUI use, with the errors the real daemon gives (ENOENT, EACCES as XenStoreError), so every flow
that touches XenStore can be shown and tested without Xen.  It proves nothing about a real
xenstored: the real client is proven against one in the lab.
"""

from __future__ import annotations

import builtins
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from grantscope.closing import Closing
from grantscope.xen.xs_types import Perms, XenStoreError, XsNode

__all__ = ["SimWatch", "SimXenStore"]

T = TypeVar("T")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _join(path: str, name: str) -> str:
    return f"/{name}" if path == "/" else f"{path}/{name}"


class SimWatch:
    """A watch on the simulated store: ``get(timeout)`` returns the next changed path."""

    def __init__(self, store: SimXenStore, path: str) -> None:
        self.path = path
        self._store = store
        self._q: queue.Queue[str] = queue.Queue()
        self._q.put(path)  # the protocol fires once at once for the watched path itself
        self._closed = False

    def fire(self, path: str) -> None:
        """Queue ``path`` if it is under the watched path."""
        if path == self.path or path.startswith(self.path.rstrip("/") + "/") or self.path == "/":
            self._q.put(path)

    def get(self, timeout: float) -> str | None:
        """The next changed path or None after ``timeout`` seconds."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[str]:
        while not self._closed:
            p = self.get(0.5)
            if p is not None:
                yield p

    def close(self) -> None:
        """Stop watching (idempotent)."""
        self._closed = True
        self._store._unwatch(self)


class SimXenStore(Closing):
    """An in-memory XenStore with the methods of grantscope.xen.xenstore.XenStore."""

    transport = "sim"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, bytes] = {"/": b""}
        self._perms: dict[str, Perms] = {"/": Perms(0, "n", ())}
        self._children: dict[str, list[str]] = {"/": []}
        self._watches: list[SimWatch] = []

    def _missing(self, op: str, path: str) -> XenStoreError:
        return XenStoreError(
            f"XenStore {op} {path}: ENOENT",
            "The node does not exist (or vanished); list its parent to see what is there.",
            errno_name="ENOENT", op=op, path=path)

    def _fire(self, path: str) -> None:
        for w in list(self._watches):
            w.fire(path)

    def _unwatch(self, w: SimWatch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def _ensure(self, path: str, perms: Perms | None) -> None:
        if path in self._values:
            return
        parent = _parent(path)
        self._ensure(parent, perms)
        self._values[path] = b""
        self._perms[path] = perms or self._perms[parent]
        self._children[path] = []
        self._children[parent].append(path.rsplit("/", 1)[1])

    def write(self, path: str, value: bytes, perms: Perms | None = None) -> None:
        """Write ``value`` at ``path``, creating missing parents (as xenstored does)."""
        with self._lock:
            self._ensure(path, perms)
            self._values[path] = bytes(value)
            if perms is not None:
                self._perms[path] = perms
            self._fire(path)

    def mkdir(self, path: str) -> None:
        """Create ``path`` with an empty value if it does not exist."""
        with self._lock:
            existed = path in self._values
            self._ensure(path, None)
            if not existed:
                self._fire(path)

    def rm(self, path: str) -> None:
        """Remove ``path`` and its subtree."""
        with self._lock:
            if path not in self._values:
                raise self._missing("rm", path)
            for child in list(self._children[path]):
                self.rm(_join(path, child))
            del self._values[path], self._perms[path], self._children[path]
            if path != "/":
                self._children[_parent(path)].remove(path.rsplit("/", 1)[1])
            self._fire(path)

    def read(self, path: str) -> bytes:
        """Raw value of ``path``."""
        with self._lock:
            if path not in self._values:
                raise self._missing("read", path)
            return self._values[path]

    def read_or_none(self, path: str) -> bytes | None:
        """Raw value of ``path`` or None when it does not exist."""
        with self._lock:
            return self._values.get(path)

    def list(self, path: str) -> builtins.list[str]:
        """Child names of ``path`` in creation order (xenstored's order)."""
        with self._lock:
            if path not in self._children:
                raise self._missing("directory", path)
            return list(self._children[path])

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        with self._lock:
            return path in self._values

    def get_perms(self, path: str) -> Perms:
        """Permissions of ``path``."""
        with self._lock:
            if path not in self._perms:
                raise self._missing("get_perms", path)
            return self._perms[path]

    def set_perms(self, path: str, perms: Perms) -> None:
        """Set permissions of ``path``."""
        with self._lock:
            if path not in self._perms:
                raise self._missing("set_perms", path)
            self._perms[path] = perms
            self._fire(path)

    def get_domain_path(self, domid: int) -> str:
        """``/local/domain/<domid>``."""
        return f"/local/domain/{domid}"

    def walk(self, root: str = "/", *, perms: bool = False) -> builtins.list[XsNode]:
        """Every node under ``root``, parents first."""
        with self._lock:
            if root not in self._values:
                raise self._missing("walk", root)
            out: list[XsNode] = []
            stack = [root]
            while stack:
                p = stack.pop()
                out.append(XsNode(p, self._values[p], self._perms[p] if perms else None))
                stack.extend(_join(p, c) for c in reversed(self._children[p]))
            return out

    def list_many(self, paths: Sequence[str]) -> dict[str, builtins.list[str]]:
        """:meth:`grantscope.xen.xenstore.XenStore.list_many`: the children of each path that
        exists (a missing one is left out)."""
        with self._lock:
            return {p: list(self._children[p]) for p in paths if p in self._children}

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """:meth:`grantscope.xen.xenstore.XenStore.read_many`: each value, None if missing."""
        with self._lock:
            return {p: self._values.get(p) for p in paths}

    def watch(self, path: str) -> SimWatch:
        """Watch ``path`` and its subtree."""
        w = SimWatch(self, path)
        with self._lock:
            self._watches.append(w)
        return w

    def transaction(self, fn: Callable[[SimXenStore], T], *, retries: int = 8) -> T:
        """Run ``fn`` atomically (under the store lock; never conflicts)."""
        with self._lock:
            return fn(self)

    def close(self) -> None:
        """Nothing to release."""

