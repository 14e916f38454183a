"""One connection to xenstored: finding it, and many requests in flight with a deadline each.

Discovery follows libxenstore's ``xs_open``: ``$XENSTORED_PATH`` when set (a socket or the
xenbus device, told apart by ``S_ISSOCK``), else the xenstored socket
(``$XENSTORED_RUNDIR/socket``, default ``/var/run/xenstored/socket``, and
``/run/xenstored/socket``), else the xenbus device (``/dev/xen/xenbus``,
``/proc/xen/xenbus``).  pyxs's ``UnixSocketConnection``/``XenBusConnection`` open the
transport; after that this module does its own framing on the file descriptor, because
pyxs's router hands every reply to a thread (2.8x a raw socket per request), dies on an
unknown req_id and then waits forever.

Reading is done by whichever waiting thread gets there first ("leader/followers"): it polls the
fd with its own deadline, cuts the bytes into messages and files each reply under its req_id and
each WATCH_EVENT under its token, then wakes the others.  A single-threaded caller therefore
pays no thread hand-off, several threads can share one connection, and no call waits past its
deadline.  A reply nobody waits for (unknown req_id, or a request that already timed out) is
logged and dropped.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from grantscope.errors import NoXenError
from grantscope.xen.xs_types import XenStoreError
from grantscope.xen.xs_wire import Deframer, FramingError, Op, Packet, op_name, split_strings

log = logging.getLogger(__name__)

DEFAULT_RUNDIR = "/var/run/xenstored"
XENBUS_DEVICES = ("/dev/xen/xenbus", "/proc/xen/xenbus")
_READ_SIZE = 1 << 18
_REQ_ID_MOD = 1 << 32
_READ_SLICE = 0.1  # longest one poll() waits; see _wait


def candidate_paths(env: dict[str, str] | None = None) -> list[str]:
    """Where to look for xenstored, in libxenstore's order."""
    env = dict(os.environ) if env is None else env
    explicit = env.get("XENSTORED_PATH")
    if explicit:
        return [explicit]
    rundir = env.get("XENSTORED_RUNDIR") or DEFAULT_RUNDIR
    paths = [os.path.join(rundir, "socket"), "/run/xenstored/socket", *XENBUS_DEVICES]
    return list(dict.fromkeys(paths))  # drop duplicates, keep order


def _open_one(path: str) -> tuple[str, Any]:
    """Connect to ``path`` with pyxs; returns (transport kind, connected pyxs connection)."""
    from pyxs.connection import UnixSocketConnection, XenBusConnection  # costs ~1 s: lazily

    mode = os.stat(path).st_mode
    conn: Any
    if stat.S_ISSOCK(mode):
        kind, conn = "socket", UnixSocketConnection(path)
    else:
        kind, conn = "xenbus", XenBusConnection(path)
    conn.connect()
    return kind, conn


def open_transport(path: str | None = None) -> tuple[str, str, Any]:
    """Connect to the first working candidate: (kind, path, pyxs connection).

    Raises NoXenError naming every path tried and why it failed.
    """
    tried: list[str] = []
    for candidate in [path] if path else candidate_paths():
        if not os.path.exists(candidate):
            tried.append(f"{candidate} (absent)")
            continue
        try:
            kind, conn = _open_one(candidate)
        except Exception as exc:  # pyxs wraps OSError in its own ConnectionError
            tried.append(f"{candidate} ({exc})")
            continue
        return kind, candidate, conn
    raise NoXenError(
        "cannot connect to XenStore: tried " + ", ".join(tried),
        "This does not look like a Xen host with a running xenstored. In dom0 start xenstored "
        "(the socket is $XENSTORED_RUNDIR/socket); in a domU load the xenfs/xenbus driver so "
        "/dev/xen/xenbus exists. XENSTORED_PATH may name a socket or xenbus device explicitly.",
    )


class XsConnection:
    """Framing, req_id matching, deadlines and watch-event queues on one fd (thread-safe)."""

    def __init__(self, kind: str, path: str, fd: int, closer: Callable[[], None]):
        self.transport = kind
        self.path = path
        self._fd = fd
        self._closer = closer
        os.set_blocking(fd, False)
        self._cond = threading.Condition(threading.Lock())
        self._wlock = threading.Lock()
        self._reading = False
        self._deframer = Deframer()
        self._expected: set[int] = set()
        self._replies: dict[int, Packet] = {}
        self._events: dict[bytes, collections.deque[bytes]] = {}
        self._dead: str | None = None
        self._fd_closed = False  # close() ran (the fd is gone), whatever ended the stream
        self._next_id = 1
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self.unexpected = 0
        """Count of packets dropped because nobody waited for their req_id."""

    @classmethod
    def open(cls, path: str | None = None) -> XsConnection:
        """Discover and connect (see :func:`open_transport`)."""
        kind, where, conn = open_transport(path)
        return cls(kind, where, conn.fileno(), conn.close)

    # -- sending -------------------------------------------------------------------------

    def submit(self, requests: Sequence[tuple[int, int, bytes]], deadline: float) -> list[int]:
        """Send ``(op, tx_id, payload)`` requests in one go; returns their req_ids.

        The ids are registered before the bytes leave, so no reply can be missed.  On the
        xenbus device only one request is ever in flight (see :meth:`_submit_xenbus`).
        """
        with self._wlock:
            if self.transport != "socket":
                return self._submit_xenbus(requests, deadline)
            ids = []
            chunks = []
            for op, tx_id, payload in requests:
                ids.append(self._new_id())
                chunks.append(Packet(op, ids[-1], tx_id, payload).encode())
            with self._cond:
                self._check_alive()
                self._expected.update(ids)
            try:
                self._write_all(b"".join(chunks), deadline)
            except BaseException:
                self.forget(ids)
                raise
        return ids

    def _new_id(self) -> int:
        req_id = self._next_id
        self._next_id = (req_id + 1) % _REQ_ID_MOD or 1  # 0 is what events carry
        return req_id

    def _submit_xenbus(
        self, requests: Sequence[tuple[int, int, bytes]], deadline: float
    ) -> list[int]:
        """One message per write(), and each only once the previous request was answered.

        Linux's xenbus device (drivers/xen/xenbus/xenbus_dev_frontend.c) keeps one message
        buffer per open file, and ``xenbus_dev_request_and_reply`` queues the request with a
        pointer to the body *in that buffer*; the xenbus thread copies it to the ring later.
        A second write() before then overwrites the body of the first request (seen in the
        lab: a pipelined walk over /dev/xen/xenbus read the wrong nodes).  Bytes past the end
        of a message in one write() are dropped too.  Callers wanting parallelism over xenbus
        open several connections (see :mod:`grantscope.xen.xs_walk`).
        """
        ids: list[int] = []
        for op, tx_id, payload in requests:
            if not self._wait(lambda: not self._expected, deadline):
                self.forget(ids)
                self._kill("the previous xenbus request went unanswered; open a new connection")
                raise TimeoutError("the previous xenbus request is still unanswered")
            req_id = self._new_id()
            with self._cond:
                self._check_alive()
                self._expected.add(req_id)
            ids.append(req_id)
            try:
                self._write_all(Packet(op, req_id, tx_id, payload).encode(), deadline)
            except BaseException:
                self.forget(ids)
                raise
        return ids

    def _write_all(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                self._kill(f"write failed: {exc}")
                raise self._lost_error() from None
            view = view[written:]
            if view:
                if time.monotonic() >= deadline:
                    if len(view) < len(data):
                        # Part of a message went out: the stream is misframed from here on.
                        self._kill("a request timed out half-written; open a new connection")
                    raise TimeoutError("xenstored does not take our requests")
                # xenstored may be waiting for us to read its replies: read while we wait.
                self._wait(lambda: False, min(deadline, time.monotonic() + 0.05))

    # -- receiving -----------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise self._lost_error()

    def _lost_error(self) -> XenStoreError:
        return XenStoreError(
            f"connection to xenstored at {self.path} lost: {self._dead}",
            errno_name="ECONNRESET",
            op="connection",
        )

    def _kill(self, reason: str) -> None:
        with self._cond:
            if self._dead is None:
                self._dead = reason
            self._cond.notify_all()

    def _read_some(self, timeout: float) -> list[Packet]:
        """Wait up to ``timeout`` for bytes; return the complete messages read."""
        if not self._poll.poll(max(0, int(timeout * 1000) + 1)):
            return []
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return []
        except OSError as exc:
            self._kill(f"read failed: {exc}")
            return []
        if not data:
            self._kill("closed by the other end")
            return []
        try:
            return self._deframer.feed(data)
        except FramingError as exc:
            self._kill(f"corrupt stream: {exc}")
            return []

    def _dispatch(self, packets: Iterable[Packet]) -> None:
        """File replies and events (called with the condition held)."""
        for packet in packets:
            if packet.op == Op.WATCH_EVENT:
                parts = split_strings(packet.payload)
                queue = self._events.get(parts[1]) if len(parts) >= 2 else None
                if queue is None:
                    log.debug("watch event for no current watch: %r", packet.payload)
                else:
                    queue.append(parts[0])
            elif packet.req_id in self._expected:
                self._expected.discard(packet.req_id)
                self._replies[packet.req_id] = packet
            else:
                self.unexpected += 1
                log.warning(
                    "dropping unexpected XenStore packet %s req_id=%d (%d bytes)",
                    op_name(packet.op),
                    packet.req_id,
                    len(packet.payload),
                )

    def _wait(self, ready: Callable[[], bool], deadline: float) -> bool:
        """Block until ``ready()`` (checked under the lock) or the deadline; True if ready."""
        cond = self._cond
        while True:
            with cond:
                while True:
                    if ready():
                        return True
                    self._check_alive()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    if not self._reading:
                        self._reading = True
                        break
                    cond.wait(remaining)
            packets: list[Packet] = []
            try:
                # In slices: another thread may end the connection (its request timed out)
                # while this one reads, and this one's waiter must hear of it soon.
                packets = self._read_some(min(remaining, _READ_SLICE))
            finally:
                with cond:
                    self._reading = False
                    self._dispatch(packets)
                    cond.notify_all()

    def collect(self, req_ids: set[int], deadline: float) -> dict[int, Packet]:
        """Wait for at least one of ``req_ids``; return every one of them that has arrived.

        Returns ``{}`` at the deadline.  Returned ids are removed from ``req_ids``.
        """
        replies = self._replies

        def ready() -> bool:
            return any(i in replies for i in req_ids) if len(req_ids) < 64 else bool(
                replies.keys() & req_ids
            )

        if not self._wait(ready, deadline):
            return {}
        with self._cond:
            got = {i: replies.pop(i) for i in list(replies.keys() & req_ids)}
        req_ids.difference_update(got)
        return got

    def forget(self, req_ids: Iterable[int]) -> None:
        """Stop waiting for ``req_ids``; a request left unanswered ends the connection.

        A request that timed out may still be answered, or (over xenbus) may still point into
        the kernel's per-file buffer, so the connection is marked lost rather than trusted
        with the next request; :class:`~grantscope.xen.xenstore.XenStore` then opens a new one.
        """
        unanswered = False
        with self._cond:
            for i in req_ids:
                if i in self._expected:
                    unanswered = True
                    self._expected.discard(i)
                self._replies.pop(i, None)
        if unanswered:
            self._kill("a request timed out unanswered; open a new connection")

    def request(self, op: int, payload: bytes, tx_id: int, timeout: float) -> Packet | None:
        """Send one request and wait for its reply; None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            (req_id,) = self.submit([(op, tx_id, payload)], deadline)
        except TimeoutError:
            self._kill("a request timed out before it was sent whole; open a new connection")
            return None
        pending = {req_id}
        got = self.collect(pending, deadline)
        if not got:
            self.forget(pending)
            return None
        return got[req_id]

    # -- watches -------------------------------------------------------------------------

    def add_watch_queue(self, token: bytes) -> None:
        """Start collecting WATCH_EVENTs carrying ``token``."""
        with self._cond:
            self._events[token] = collections.deque()

    def remove_watch_queue(self, token: bytes) -> None:
        """Stop collecting events for ``token`` (later ones are dropped)."""
        with self._cond:
            self._events.pop(token, None)

    def next_event(self, token: bytes, deadline: float) -> bytes | None:
        """The next event path for ``token``, or None at the deadline."""
        queue = self._events.get(token)
        if queue is None:
            return None
        if not self._wait(lambda: bool(queue), deadline):
            return None
        with self._cond:
            return queue.popleft()

    # -- end -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran or the connection was lost."""
        return self._dead is not None

    @property
    def lost_reason(self) -> str | None:
        """Why the connection ended (None while it is alive)."""
        return self._dead

    def close(self) -> None:
        """Close the fd (idempotent); waiters get a "connection lost" error."""
        with self._wlock:
            if self._fd_closed:
                return
            self._fd_closed = True
            self._kill("closed")  # a connection lost before keeps its reason
            with contextlib.suppress(KeyError, ValueError):
                self._poll.unregister(self._fd)
            try:
                self._closer()
            except Exception as exc:  # closing a dead fd must not raise at exit
                log.debug("closing xenstore connection: %s", exc)
