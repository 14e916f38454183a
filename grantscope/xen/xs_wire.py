"""The XenStore wire protocol: message types, the 16-byte header, framing and error names.

Facts from xen/include/public/io/xs_wire.h and docs/misc/xenstore.txt (Xen 4.17):
``struct xsd_sockmsg {u32 type, req_id, tx_id, len}`` in host byte order, then ``len``
payload bytes; a payload above 4096 bytes makes xenstored drop the connection; errors come
back as an ERROR reply whose payload is the errno *name* (``b"ENOENT\\0"``).

This module is pure (no I/O) so the framing can be tested without a xenstored.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from grantscope._compat import slotted_dataclass


class Op(IntEnum):
    """XenStore message types (``enum xsd_sockmsg_type``)."""

    CONTROL = 0
    DIRECTORY = 1
    READ = 2
    GET_PERMS = 3
    WATCH = 4
    UNWATCH = 5
    TRANSACTION_START = 6
    TRANSACTION_END = 7
    INTRODUCE = 8
    RELEASE = 9
    GET_DOMAIN_PATH = 10
    WRITE = 11
    MKDIR = 12
    RM = 13
    SET_PERMS = 14
    WATCH_EVENT = 15
    ERROR = 16
    IS_DOMAIN_INTRODUCED = 17
    RESUME = 18
    SET_TARGET = 19
    RESET_WATCHES = 21
    DIRECTORY_PART = 22


HEADER = struct.Struct("=IIII")
"""``struct xsd_sockmsg``: type, req_id, tx_id, len (host byte order)."""

PAYLOAD_MAX = 4096
"""``XENSTORE_PAYLOAD_MAX``: xenstored kills a connection that sends more."""

# A reply longer than this cannot come from a sane xenstored: the stream is corrupt.
_SANE_LEN_MAX = 1 << 20


def op_name(op: int) -> str:
    """The message type's name (``"READ"``), or ``"OP<n>"`` for a type this code does not know."""
    try:
        return Op(op).name
    except ValueError:
        return f"OP{op}"


@slotted_dataclass(frozen=True)
class Packet:
    """One XenStore message: header fields plus the raw payload."""

    op: int
    req_id: int
    tx_id: int
    payload: bytes

    def encode(self) -> bytes:
        """Header + payload, ready to write."""
        return HEADER.pack(self.op, self.req_id, self.tx_id, len(self.payload)) + self.payload


class FramingError(Exception):
    """The byte stream from xenstored does not parse as messages (corrupt or not xenstored)."""


class Deframer:
    """Cuts a byte stream (socket or xenbus reads, any chunking) into :class:`Packet` objects."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        """Add ``data``; return every message now complete, in order."""
        buf = self._buf
        buf += data
        out: list[Packet] = []
        pos = 0
        size = HEADER.size
        while len(buf) - pos >= size:
            op, req_id, tx_id, length = HEADER.unpack_from(buf, pos)
            if length > _SANE_LEN_MAX:
                raise FramingError(f"message header announces {length} payload bytes")
            end = pos + size + length
            if end > len(buf):
                break
            out.append(Packet(op, req_id, tx_id, bytes(buf[pos + size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held back because their message is not complete yet."""
        return len(self._buf)


def join_args(*args: bytes) -> bytes:
    """Payload of NUL-terminated strings (``path\\0offset\\0``)."""
    return b"".join(a + b"\0" for a in args)


def split_strings(payload: bytes) -> list[bytes]:
    """NUL-terminated strings of a reply (DIRECTORY, GET_PERMS, WATCH_EVENT), last NUL optional."""
    if not payload:
        return []
    parts = payload.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return parts


# errno name -> what it usually means for a XenStore request, in words.
ERRNO_EXPLANATIONS: dict[str, str] = {
    "ENOENT": "The node does not exist (or was removed meanwhile). Check the path with "
    "'grantscope xs ls'.",
    "EACCES": "Permission denied by the node's XenStore permissions. A domU sees only nodes "
    "whose permissions grant its domid read (r/b) or write (w/b) access; dom0 over the "
    "xenstored socket sees everything.",
    "EPERM": "The operation is reserved to a privileged connection (dom0 or the xenstored "
    "socket).",
    "EINVAL": "xenstored rejected the request as malformed: an invalid path (allowed "
    "characters are a-z A-Z 0-9 - / _ @), a bad permission string or a bad argument.",
    "EEXIST": "The node already exists.",
    "EISDIR": "The node is a directory where a plain value was expected.",
    "ENOMEM": "xenstored ran out of memory.",
    "ENOSPC": "A XenStore quota is exhausted (nodes, memory or node size for this domain); "
    "'xenstore-control quota DOMID' shows the usage.",
    "EQUOTA": "A XenStore quota is exhausted for this domain; 'xenstore-control quota DOMID' "
    "shows the usage.",
    "EIO": "xenstored reported an I/O error (its database or a dying connection).",
    "ENOTEMPTY": "The directory is not empty.",
    "ENOSYS": "This xenstored does not implement the request (an older or different daemon, "
    "e.g. oxenstored).",
    "EROFS": "XenStore is read-only here (the connection or the daemon is read-only).",
    "EBUSY": "xenstored is busy (e.g. a live update is in progress); retry.",
    "EAGAIN": "The transaction conflicted with a concurrent change and must be retried.",
    "EISCONN": "The domain is already connected (introduced).",
    "E2BIG": "The reply or request is too large for one message (4096 bytes): a directory "
    "with too many children or a value over the node-size quota.",
    "ETIMEDOUT": "No reply came in time: xenstored may be hung, overloaded or stopped.",
    "ECONNRESET": "The connection to xenstored was lost.",
}


def explain_errno(name: str) -> str:
    """A human explanation for an errno name from an ERROR reply."""
    return ERRNO_EXPLANATIONS.get(name, f"xenstored answered {name}.")


def encode_path(path: str) -> bytes:
    """A path as the wire carries it (UTF-8; undecodable bytes kept through surrogateescape)."""
    return path.encode("utf-8", "surrogateescape")
