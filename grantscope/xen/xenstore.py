"""The XenStore client every grantscope layer uses.

What pyxs (the design card's library) provides here: the transport classes
``pyxs.connection.UnixSocketConnection`` and ``XenBusConnection``, i.e. how to open the
xenstored socket and the xenbus device and its path conventions (``XENSTORED_PATH``,
``XENSTORED_RUNDIR``).  What grantscope adds on top, and why (reference/xen-facts.md §4,
reference/baselines.md):

- Discovery like libxenstore: socket first, then ``/dev/xen/xenbus`` (pyxs never falls back).
- Its own framing and req_id matching (:mod:`grantscope.xen.xs_conn`): pyxs's ``Packet`` rejects
  op 22 (DIRECTORY_PART) and its router thread dies on an unknown req_id, after which
  ``RVar.get()`` waits forever; each pyxs request also costs 2.8x a raw socket.  Here every
  request has a deadline (XenStoreError ETIMEDOUT naming the op and path), unexpected packets
  are logged and dropped, and WATCH_EVENTs interleaved with replies go to their watch.
- Raw bytes values: pyxs rejects non-ASCII payloads and strips trailing NULs.
- DIRECTORY_PART when DIRECTORY answers E2BIG, with the generation-count restart.
- Watches over the xenbus device too (pyxs refuses them there).
- Transactions retried on EAGAIN, errno names mapped to explanations (:mod:`xs_wire`).
- A pipelined whole-tree walk (:mod:`xs_walk`): pyxs, even pipelined, took 2.4x the time of
  ``xenstore-ls -f``; a pipelined own client took 0.6x.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from grantscope._compat import zip_strict
from grantscope.closing import Closing
from grantscope.errors import GrantscopeError
from grantscope.xen.readonly import refuse_if_readonly
from grantscope.xen.xs_conn import XsConnection
from grantscope.xen.xs_escape import escape_value, unescape_value
from grantscope.xen.xs_types import Perms, XenStoreError, XsNode
from grantscope.xen.xs_walk import DEFAULT_WINDOW, format_ls_line
from grantscope.xen.xs_walk import walk as _walk
from grantscope.xen.xs_watch import XsWatch
from grantscope.xen.xs_wire import PAYLOAD_MAX, Op, join_args, op_name, split_strings
from grantscope.xen.xs_wire import encode_path as _encode_path

__all__ = [
    "Perms",
    "XenStore",
    "XenStoreError",
    "XsNode",
    "XsWatch",
    "escape_value",
    "format_ls_line",
    "unescape_value",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Requests that change the store (or another domain's connection): refused under --readonly.
_ABSENT = frozenset({"ENOENT", "EACCES"})  # a node that is not there, or not for us to see

MUTATING_OPS: frozenset[Op] = frozenset({
    Op.WRITE, Op.MKDIR, Op.RM, Op.SET_PERMS, Op.INTRODUCE, Op.RELEASE, Op.RESUME,
    Op.SET_TARGET, Op.CONTROL,
})


class XenStore(Closing):
    """A connection to XenStore (context manager; thread-safe; every request has a timeout).

    Open with :meth:`open`.  Values are raw ``bytes``; paths are ``str``.
    """

    def __init__(self, conn: XsConnection, *, timeout: float = 5.0, tx_id: int = 0,
                 parent: XenStore | None = None):
        self._conn = conn
        self.timeout = timeout
        self.tx_id = tx_id
        self._parent = parent  # a transaction view's plain connection
        self._closed = False
        self._reconnect_lock = threading.RLock()
        self._watches: set[XsWatch] = set()
        self.reconnects = 0
        """How many times a lost connection was replaced by a new one."""

    def _connection(self) -> XsConnection:
        """The live connection; a lost one is replaced (same socket or device as at start)."""
        conn = self._conn
        if not conn.closed or self._closed:
            return conn
        if self.tx_id:
            raise XenStoreError(
                f"connection to xenstored at {conn.path} lost inside a transaction: "
                f"{conn.lost_reason}",
                "The transaction is gone with the connection; run it again.",
                errno_name="ECONNRESET",
                op="TRANSACTION",
            )
        self._reconnect()
        return self._conn

    def _reconnect(self) -> bool:
        """Open a new connection if the current one is lost; re-register every watch.

        Returns False when xenstored cannot be reached now (the next request tries again).
        """
        with self._reconnect_lock:
            old = self._conn
            if not old.closed or self._closed:
                return True
            reason = old.lost_reason or "lost"
            try:
                new = XsConnection.open(old.path)
            except GrantscopeError as err:
                log.warning("XenStore reconnect to %s failed: %s", old.path, err.message)
                return False
            old.close()
            self._conn = new
            self.reconnects += 1
            for watch in list(self._watches):
                try:
                    watch._reregister(new, reason)
                except XenStoreError as err:
                    log.warning("re-registering the watch on %s failed: %s", watch.path,
                                err.message)
            return True

    def _reconnect_for(self, watch: XsWatch) -> bool:
        """Reconnect because ``watch`` found its connection lost (another watch or request
        may already have reconnected: then only ``watch`` is registered again)."""
        with self._reconnect_lock:
            if self._conn.closed and not self._reconnect():
                return False
            if watch._conn is not self._conn or not watch._registered:
                try:
                    watch._reregister(self._conn, watch._why_lost())
                except XenStoreError:  # xenstored paused: the next get() tries again
                    return False
            return True

    @classmethod
    def open(cls, path: str | None = None, *, timeout: float = 5.0) -> XenStore:
        """Connect like libxenstore: ``path``, else ``XENSTORED_PATH``, socket, xenbus device.

        Raises NoXenError (exit 2) naming every path tried.
        """
        return cls(XsConnection.open(path), timeout=timeout)

    @property
    def transport(self) -> str:
        """``"socket"`` or ``"xenbus"``."""
        return self._conn.transport

    @property
    def path(self) -> str:
        """The socket or device this connection uses."""
        return self._conn.path

    # -- one request ---------------------------------------------------------------------

    def _call(self, op: Op, payload: bytes, path: str | None,
              conn: XsConnection | None = None, *, reads_only: bool = False) -> bytes:
        """Send one request; return the reply payload or raise XenStoreError.

        On a lost connection a new one is opened first (see :meth:`_connection`); a request
        that times out ends its connection, so the next one starts on a fresh stream.
        """
        where = f" {path}" if path is not None else ""
        if op in MUTATING_OPS and not reads_only:
            refuse_if_readonly(f"XenStore {op.name}{where}")
        if len(payload) > PAYLOAD_MAX:
            # xenstored would drop the whole connection: refuse before sending.
            raise XenStoreError(
                f"XenStore {op.name}{where}: request of {len(payload)} bytes is over the "
                f"{PAYLOAD_MAX}-byte message limit",
                "A XenStore message carries at most 4096 bytes (path and value together); "
                "xenstored disconnects a client that sends more. Store less per node.",
                errno_name="E2BIG",
                op=op.name,
                path=path,
            )
        if conn is None:
            conn = self._connection()  # in a transaction: raises if the connection was lost
        reply = conn.request(op, payload, self.tx_id, self.timeout)
        if reply is None:
            raise XenStoreError(
                f"XenStore {op.name}{where}: no reply within {self.timeout:g} s",
                f"No reply came from {conn.path} ({self.transport}) in time: xenstored "
                "may be hung, overloaded or not running (over /dev/xen/xenbus in dom0, requests "
                "wait until xenstored starts). The connection was closed; the next request "
                "opens a new one.",
                errno_name="ETIMEDOUT",
                op=op.name,
                path=path,
            )
        if reply.op == Op.ERROR:
            parts = split_strings(reply.payload)
            name = parts[0].decode("ascii", "replace") if parts else "EINVAL"
            raise XenStoreError.from_reply(name, op.name, path)
        if reply.op != op:
            raise XenStoreError(
                f"XenStore {op.name}{where}: answered with {op_name(reply.op)}",
                "xenstored's reply does not match the request: a protocol error.",
                errno_name="EIO",
                op=op.name,
                path=path,
            )
        return reply.payload

    def read(self, path: str) -> bytes:
        """The node's value, exactly as stored (may contain NUL and non-UTF-8 bytes)."""
        return self._call(Op.READ, join_args(_encode_path(path)), path)

    def read_or_none(self, path: str) -> bytes | None:
        """The value, or None if the node does not exist (other errors raise)."""
        try:
            return self.read(path)
        except XenStoreError as err:
            if err.errno_name == "ENOENT":
                return None
            raise

    def write(self, path: str, value: bytes) -> None:
        """Create or replace the node's value (parents are created by xenstored)."""
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("XenStore values are bytes")
        # WRITE is "<path>|<value>" with no NUL after the value.
        self._call(Op.WRITE, _encode_path(path) + b"\0" + bytes(value), path)

    def mkdir(self, path: str) -> None:
        """Create the node with an empty value if it does not exist."""
        self._call(Op.MKDIR, join_args(_encode_path(path)), path)

    def rm(self, path: str) -> None:
        """Remove the node and everything below it."""
        self._call(Op.RM, join_args(_encode_path(path)), path)

    def exists(self, path: str) -> bool:
        """Whether the node exists (like xenstore-exists: a READ that does not say ENOENT)."""
        return self.read_or_none(path) is not None

    def list(self, path: str) -> list[str]:
        """Child names in xenstored's order (DIRECTORY; DIRECTORY_PART when it says E2BIG)."""
        try:
            payload = self._call(Op.DIRECTORY, join_args(_encode_path(path)), path)
        except XenStoreError as err:
            if err.errno_name != "E2BIG":
                raise
            return self._list_parts(path)
        return [n.decode("utf-8", "surrogateescape") for n in split_strings(payload)]

    def _list_parts(self, path: str) -> builtins.list[str]:
        """DIRECTORY_PART loop of libxenstore's ``xs_directory_part``."""
        raw = _encode_path(path)
        gen: bytes | None = None
        data = bytearray()
        for _ in range(1000):  # each restart means the directory changed under us
            try:
                payload = self._call(
                    Op.DIRECTORY_PART, join_args(raw, str(len(data)).encode()), path
                )
            except XenStoreError as err:
                if err.errno_name == "ENOSYS":  # libxenstore: no DIRECTORY_PART -> E2BIG
                    raise XenStoreError.too_big_without_parts(path) from None
                raise
            this_gen, _, rest = payload.partition(b"\0")
            if data and this_gen != gen:
                gen, data = None, bytearray()  # generation changed: start over
                continue
            gen = this_gen
            data += rest
            if len(data) <= 1 or data[-2] == 0:
                return [
                    n.decode("utf-8", "surrogateescape") for n in bytes(data).split(b"\0") if n
                ]
        raise XenStoreError(
            f"XenStore DIRECTORY_PART {path}: the directory kept changing while being listed",
            errno_name="EAGAIN",
            op="DIRECTORY_PART",
            path=path,
        )

    def get_perms(self, path: str) -> Perms:
        """The node's permissions (owner first)."""
        payload = self._call(Op.GET_PERMS, join_args(_encode_path(path)), path)
        try:
            return Perms.parse(split_strings(payload))
        except ValueError as exc:
            raise XenStoreError(
                f"XenStore GET_PERMS {path}: unreadable answer {escape_value(payload)!r}",
                str(exc),
                errno_name="EIO",
                op="GET_PERMS",
                path=path,
            ) from None

    def set_perms(self, path: str, perms: Perms) -> None:
        """Replace the node's permissions."""
        self._call(
            Op.SET_PERMS,
            join_args(_encode_path(path), *(e.encode() for e in perms.entries())),
            path,
        )

    def quota(self, domid: int | None = None) -> str:
        """xenstored's quota settings, or ``domid``'s usage: the CONTROL ``quota [DOMID]``
        request ``xenstore-control quota`` sends, over this connection.

        Only these two forms are sent (never ``quota set``), so this reads and is allowed
        under ``--readonly``, unlike every other CONTROL request.
        """
        args = [b"quota"] + ([str(int(domid)).encode()] if domid is not None else [])
        payload = self._call(Op.CONTROL, join_args(*args), None, reads_only=True)
        return payload.rstrip(b"\0").decode("utf-8", "replace")

    def is_introduced(self, domid: int) -> bool:
        """Whether xenstored knows ``domid`` as a live domain (IS_DOMAIN_INTRODUCED): False once
        Xen has destroyed it, even while its home is still in the tree.  dom0 may ask."""
        return self.introduced([domid])[domid]

    def introduced(self, domids: Sequence[int]) -> dict[int, bool]:
        """:meth:`is_introduced` for many domains, all asked in one pipeline."""
        wanted = [int(d) for d in domids]
        answers: dict[int, bool] = {}
        for domid, reply in zip_strict(wanted, self._pipeline(
                Op.IS_DOMAIN_INTRODUCED, [join_args(str(d).encode()) for d in wanted])):
            if isinstance(reply, XenStoreError):
                raise reply
            answers[domid] = reply.rstrip(b"\0") == b"T"
        return answers

    def quotas(self, domids: Sequence[int]) -> dict[int, str | XenStoreError]:
        """:meth:`quota` of many domains in one pipeline: each one's usage text, or the
        error xenstored answered for it (a domain it does not know, for one)."""
        wanted = [int(d) for d in domids]
        replies = self._pipeline(Op.CONTROL, [join_args(b"quota", str(d).encode())
                                              for d in wanted], reads_only=True)
        return {d: r if isinstance(r, XenStoreError) else r.rstrip(b"\0").decode("utf-8", "replace")
                for d, r in zip_strict(wanted, replies)}

    def list_many(self, paths: Sequence[str]) -> dict[str, builtins.list[str]]:
        """:meth:`list` of many directories in one pipeline: ``{path: children}`` for those
        that exist and may be read (a missing or forbidden one is left out)."""
        out: dict[str, builtins.list[str]] = {}
        for path, reply in zip_strict(paths, self._pipeline(
                Op.DIRECTORY, [join_args(_encode_path(p)) for p in paths], paths)):
            if isinstance(reply, XenStoreError):
                if reply.errno_name == "E2BIG":
                    out[path] = self.list(path)  # too big for one reply: in parts
                elif reply.errno_name not in _ABSENT:
                    raise reply
                continue
            out[path] = [n.decode("utf-8", "surrogateescape") for n in split_strings(reply)]
        return out

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """:meth:`read_or_none` of many nodes in one pipeline (None also for a node this
        connection may not read)."""
        out: dict[str, bytes | None] = {}
        for path, reply in zip_strict(paths, self._pipeline(
                Op.READ, [join_args(_encode_path(p)) for p in paths], paths)):
            if isinstance(reply, XenStoreError):
                if reply.errno_name not in _ABSENT:
                    raise reply
                out[path] = None
            else:
                out[path] = reply
        return out

    def _pipeline(self, op: Op, payloads: Sequence[bytes], paths: Sequence[str] = (), *,
                  reads_only: bool = False) -> builtins.list[bytes | XenStoreError]:
        """Send ``op`` once per payload, all in flight together; each reply's payload or the
        error xenstored answered (naming ``paths[i]`` when given), in order.  Raises only when
        replies stop coming (timeout: the connection is then closed, as for one request)."""
        if op in MUTATING_OPS and not reads_only:
            refuse_if_readonly(f"XenStore {op.name}")
        conn = self._connection() if self._parent is None else self._conn
        deadline = time.monotonic() + self.timeout
        ids = conn.submit([(int(op), self.tx_id, p) for p in payloads], deadline)
        path_of = dict(zip(ids, paths))
        pending = set(ids)
        replies: dict[int, bytes | XenStoreError] = {}
        while pending:
            got = conn.collect(pending, deadline)
            if not got:
                conn.forget(pending)
                raise XenStoreError(f"XenStore {op.name}: no reply within {self.timeout:g} s",
                                    errno_name="ETIMEDOUT", op=op.name, path=None)
            for req_id, packet in got.items():
                if packet.op == Op.ERROR:
                    parts = split_strings(packet.payload)
                    name = parts[0].decode("ascii", "replace") if parts else "EINVAL"
                    replies[req_id] = XenStoreError.from_reply(name, op.name,
                                                               path_of.get(req_id))
                else:
                    replies[req_id] = packet.payload
        return [replies[i] for i in ids]

    def get_domain_path(self, domid: int) -> str:
        """The domain's home path (``/local/domain/<domid>``), as xenstored says."""
        payload = self._call(Op.GET_DOMAIN_PATH, join_args(str(int(domid)).encode()), None)
        return payload.rstrip(b"\0").decode("utf-8", "surrogateescape")

    # -- many requests -------------------------------------------------------------------

    def walk(
        self, root: str = "/", *, perms: bool = False, window: int = DEFAULT_WINDOW
    ) -> builtins.list[XsNode]:
        """Every node below ``root`` (not ``root`` itself), in ``xenstore-ls -f`` order.

        Pipelined: up to ``window`` requests in flight.  ``perms=True`` adds GET_PERMS.
        """
        conn = self._connection() if self._parent is None else self._conn
        return _walk(
            conn, root, perms=perms, tx_id=self.tx_id, timeout=self.timeout, window=window
        )

    def watch(self, path: str) -> XsWatch:
        """Watch ``path`` and everything below it (socket and xenbus alike)."""
        return XsWatch(self, path)

    def transaction(self, fn: Callable[[XenStore], T], *, retries: int = 8) -> T:
        """Run ``fn(tx)`` inside a transaction; start over when the commit says EAGAIN.

        ``tx`` is a XenStore bound to the transaction.  ``fn`` may run up to ``1 + retries``
        times, so it must not have side effects outside XenStore.  Any exception aborts.
        """
        if self.tx_id:
            raise XenStoreError(
                "XenStore transactions do not nest",
                "Call transaction() on the plain connection, not inside another transaction.",
                errno_name="EINVAL",
                op="TRANSACTION_START",
            )
        for _attempt in range(retries + 1):
            reply = self._call(Op.TRANSACTION_START, b"\0", None)
            tx = XenStore(self._conn, timeout=self.timeout, tx_id=int(reply.rstrip(b"\0")),
                          parent=self)
            try:
                result = fn(tx)
            except XenStoreError as err:
                tx._end(commit=False)
                if err.errno_name == "EAGAIN":
                    continue
                raise
            except BaseException:
                tx._end(commit=False)
                raise
            try:
                tx._end(commit=True)
            except XenStoreError as err:
                if err.errno_name == "EAGAIN":
                    continue
                raise
            return result
        raise XenStoreError(
            f"XenStore transaction still conflicting after {retries + 1} attempts",
            "Other writers kept changing the same nodes; try again later.",
            errno_name="EAGAIN",
            op="TRANSACTION_END",
        )

    def _end(self, *, commit: bool) -> None:
        try:
            self._call(Op.TRANSACTION_END, b"T\0" if commit else b"F\0", None)
        except XenStoreError:
            if commit:
                raise
            # An abort that fails leaves nothing to clean: xenstored drops it with the conn.

    # -- end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent).  A transaction view does not own it."""
        if not self.tx_id:
            self._closed = True
            self._conn.close()

