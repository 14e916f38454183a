"""A XenStore watch (made by :meth:`grantscope.xen.xenstore.XenStore.watch`): the events of
one path over the store's connection, re-registered when the store reconnects."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from grantscope.closing import Closing
from grantscope.xen.xs_types import XenStoreError
from grantscope.xen.xs_wire import Op, encode_path, join_args

if TYPE_CHECKING:
    from grantscope.xen.xs_conn import XsConnection

_tokens = itertools.count(1)


class WatchedStore(Protocol):
    """The members of :class:`grantscope.xen.xenstore.XenStore` a watch uses: its private
    request and reconnect machinery.  Declared here, not imported, because the store imports
    this module to make its watches."""

    timeout: float
    _watches: set[XsWatch]

    def _connection(self) -> XsConnection: ...

    def _call(self, op: Op, payload: bytes, path: str | None,
              conn: XsConnection | None = None, *, reads_only: bool = False) -> bytes: ...

    def _reconnect_for(self, watch: XsWatch) -> bool: ...


class XsWatch(Closing):
    """A XenStore watch: iterate for changed paths, or ``get(timeout)``; ``close()`` unwatches.

    xenstored fires once right after the watch is set, for the watched path itself; after that
    one event per change at or below the path (and possibly spurious ones).  When the
    connection is lost (xenstored restarted, or a request timed out) the watch is registered
    again on the store's new connection; changes made meanwhile were not seen, and
    :meth:`take_notice` says so once (the caller shows it).
    """

    def __init__(self, store: WatchedStore, path: str):
        self.path = path
        self._store = store
        self.token = f"grantscope-{next(_tokens)}".encode()
        self._closed = False
        self._notices: list[str] = []
        self.reconnects = 0
        self._registered = False
        self._lost_before: str | None = None  # why the connection before this one ended
        self._conn = store._connection()
        self._register(self._conn)
        store._watches.add(self)

    def _register(self, conn: XsConnection) -> None:
        if conn is not self._conn and self._conn.lost_reason:
            # kept: while registering again fails, the reason is still the first loss's
            self._lost_before = self._conn.lost_reason
        self._conn = conn
        self._registered = False
        conn.add_watch_queue(self.token)  # before WATCH: the first event may come at once
        try:
            self._store._call(Op.WATCH, join_args(encode_path(self.path), self.token),
                              self.path, conn=conn)
        except BaseException:
            conn.remove_watch_queue(self.token)
            raise
        self._registered = True

    def _reregister(self, conn: XsConnection, reason: str) -> None:
        """Called by the store after it reconnected: watch again on ``conn``."""
        self._register(conn)  # raises while xenstored does not answer: no notice yet
        self.reconnects += 1
        self._notices.append(
            f"XenStore connection lost ({reason}); reconnected and watching {self.path} "
            "again: changes made while disconnected were not seen"
        )

    @property
    def connected(self) -> bool:
        """False from the moment its connection is lost until it is registered again."""
        return self._registered and not self._conn.closed

    @property
    def lost_reason(self) -> str | None:
        """Why the connection it was on was lost (None while connected)."""
        return None if self.connected else self._why_lost()

    def _why_lost(self) -> str:
        return self._conn.lost_reason or self._lost_before or "lost"

    def take_notice(self) -> str | None:
        """A sentence about a disconnection since the last call, or None."""
        return self._notices.pop(0) if self._notices else None

    def get(self, timeout: float | None = None) -> str | None:
        """The next changed path, or None if none came within ``timeout`` seconds.

        Also None, early, when the connection is lost meanwhile; the next call reconnects.
        """
        if self._closed:
            return None
        limit = self._store.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        if (not self._registered or self._conn.closed) and not self._store._reconnect_for(self):
            # xenstored not reachable (or paused) yet: try again on the next get().
            time.sleep(max(0.0, min(0.2, deadline - time.monotonic())))
            return None
        try:
            raw = self._conn.next_event(self.token, deadline)
        except XenStoreError as err:
            if err.errno_name != "ECONNRESET" or self._closed:
                raise
            # Lost while waiting: return at once so the caller sees ``connected`` False (and
            # can say so) now; reconnecting may block for the store's timeout while xenstored
            # is paused, so it waits for the next get().
            return None
        return None if raw is None else raw.decode("utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while not self._closed:
            path = self.get(1.0)
            if path is not None:
                return path
        raise StopIteration

    def close(self) -> None:
        """Remove the watch (idempotent); errors while unwatching are ignored."""
        if self._closed:
            return
        self._closed = True
        self._store._watches.discard(self)
        try:
            if not self._conn.closed:
                self._store._call(Op.UNWATCH, join_args(encode_path(self.path), self.token),
                                  self.path, conn=self._conn)
        except XenStoreError:
            pass  # the watch dies with the connection anyway
        finally:
            self._conn.remove_watch_queue(self.token)

