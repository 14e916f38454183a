"""Shared-ring header decoding (grantscope.model.ring)."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantscope.model.ring import RingHeader, decode_ring_header, encode_ring_header, ring_distance


def test_decodes_little_endian_indices_in_header_order() -> None:
    page = struct.pack("<4I", 7, 5, 3, 4) + bytes(4080)
    h = decode_ring_header(page)
    assert (h.req_prod, h.req_event, h.rsp_prod, h.rsp_event) == (7, 5, 3, 4)
    assert h.in_flight == 4
    assert h.unconsumed_requests == 3  # req_prod - (req_event - 1)
    assert h.unconsumed_responses == 0


def test_wrapping_indices() -> None:
    h = RingHeader(req_prod=2, req_event=0xFFFFFFFF, rsp_prod=0xFFFFFFFE, rsp_event=0xFFFFFFFF)
    assert h.in_flight == 4
    assert h.unconsumed_requests == 4
    assert h.unconsumed_responses == 0


def test_short_page_is_an_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        decode_ring_header(b"\x01\x02")


def test_plausible_rejects_random_looking_indices() -> None:
    assert RingHeader(10, 11, 8, 9).plausible()
    assert not RingHeader(0x41414141, 0x42424242, 3, 0x99999999).plausible()


@given(st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4))
def test_round_trip(idx: list[int]) -> None:
    h = RingHeader(*idx)
    assert decode_ring_header(encode_ring_header(h)) == h


@given(st.integers(0, 2**32 - 1), st.integers(0, 1000))
def test_distance_survives_wrap(base: int, n: int) -> None:
    assert ring_distance((base + n) & 0xFFFFFFFF, base) == n
