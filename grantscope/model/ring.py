"""Decode the header of a Xen shared ring (xen/include/public/io/ring.h) from page bytes.

Every PV split driver (blkif, netif, ...) starts its shared page with::

    struct X_sring { RING_IDX req_prod, req_event; RING_IDX rsp_prod, rsp_event;
                     uint8_t pad[48]; union X_sring_entry ring[1]; }

``RING_IDX`` is an unsigned 32-bit index that wraps, stored little-endian on x86 and Arm.
The consumers' private indices (``req_cons``, ``rsp_cons``) are not on the page; a consumer
that has caught up arms notification with ``X_event = cons + 1``, so the event indices give
an estimate of what is still unconsumed, marked as an estimate.
"""

from __future__ import annotations

import struct

from grantscope._compat import slotted_dataclass

RING_HEADER_SIZE = 64  # four indices plus 48 bytes of padding before the ring entries
_IDX = struct.Struct("<4I")
_MASK = 0xFFFFFFFF


def ring_distance(ahead: int, behind: int) -> int:
    """``ahead - behind`` in wrapping 32-bit ring-index arithmetic (always 0..2**32-1)."""
    return (ahead - behind) & _MASK


@slotted_dataclass(frozen=True)
class RingHeader:
    """The four shared indices and what follows from them."""

    req_prod: int
    req_event: int
    rsp_prod: int
    rsp_event: int

    @property
    def in_flight(self) -> int:
        """Requests produced and not yet answered: ``req_prod - rsp_prod``."""
        return ring_distance(self.req_prod, self.rsp_prod)

    @property
    def unconsumed_requests(self) -> int:
        """Requests the backend has not consumed, estimated as ``req_prod - (req_event - 1)``."""
        return ring_distance(self.req_prod, (self.req_event - 1) & _MASK)

    @property
    def unconsumed_responses(self) -> int:
        """Responses the frontend has not consumed, estimated as ``rsp_prod - (rsp_event - 1)``."""
        return ring_distance(self.rsp_prod, (self.rsp_event - 1) & _MASK)

    def plausible(self, ring_size: int = 32) -> bool:
        """True when the indices look like a live ring of ``ring_size`` slots (not random bytes)."""
        return self.in_flight <= ring_size and self.unconsumed_responses <= ring_size + 1

    def as_dict(self) -> dict[str, int]:
        """The header and its derived counts, for JSON and the UI."""
        return {
            "req_prod": self.req_prod,
            "req_event": self.req_event,
            "rsp_prod": self.rsp_prod,
            "rsp_event": self.rsp_event,
            "in_flight": self.in_flight,
            "unconsumed_requests": self.unconsumed_requests,
            "unconsumed_responses": self.unconsumed_responses,
        }


def decode_ring_header(page: bytes | bytearray | memoryview) -> RingHeader:
    """Decode the first 16 bytes of ``page``; ValueError when the page is shorter than that."""
    if len(page) < _IDX.size:
        raise ValueError(f"a ring header needs {_IDX.size} bytes, the page has {len(page)}")
    req_prod, req_event, rsp_prod, rsp_event = _IDX.unpack_from(bytes(page[: _IDX.size]))
    return RingHeader(req_prod, req_event, rsp_prod, rsp_event)


def encode_ring_header(header: RingHeader) -> bytes:
    """The 16 bytes that :func:`decode_ring_header` reads back as ``header``."""
    return _IDX.pack(
        header.req_prod & _MASK,
        header.req_event & _MASK,
        header.rsp_prod & _MASK,
        header.rsp_event & _MASK,
    )
