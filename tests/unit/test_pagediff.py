"""Page diffs and the fading change highlight (grantscope.model.pagediff)."""

from grantscope.model.pagediff import ChangeTracker, changed_offsets, changed_rows, fade_bucket


def test_changed_offsets_and_rows() -> None:
    old = bytes(64)
    new = bytearray(old)
    new[3] = 1
    new[17] = 2
    new[18] = 3
    assert changed_offsets(old, bytes(new)) == [3, 17, 18]
    assert changed_rows([3, 17, 18]) == [0, 1]
    assert changed_offsets(b"ab", b"abcd") == [2, 3]


def test_fade_buckets_decrease_with_age() -> None:
    assert fade_bucket(0.0) == 3
    assert fade_bucket(0.6) == 2
    assert fade_bucket(1.2) == 1
    assert fade_bucket(1.5) == 0
    assert fade_bucket(-1.0) == 0


def test_tracker_highlights_changed_bytes_then_fades() -> None:
    t = ChangeTracker(size=256)
    first = t.update(bytes(256), now=0.0)
    assert first == list(range(16))  # first sight paints everything, highlights nothing
    assert t.bucket(0, 0.0) == 0
    page = bytearray(256)
    page[33] = 0xFF
    assert t.update(bytes(page), now=10.0) == [2]
    assert t.bucket(33, 10.0) == 3
    assert t.bucket(32, 10.0) == 0
    assert t.row_buckets(2, 10.0)[1] == 3
    # unchanged bytes: the row is repainted when its fade steps down (3 -> 2 at 0.5 s), not
    # in between, and once more when the highlight is gone; then no more
    assert t.update(bytes(page), now=10.4) == []
    assert t.update(bytes(page), now=10.5) == [2]
    assert t.update(bytes(page), now=10.6) == []
    assert t.update(bytes(page), now=12.0) == [2]
    assert t.bucket(33, 12.0) == 0
    assert t.update(bytes(page), now=12.5) == []


def test_changed_offsets_at_the_edges_of_a_page() -> None:
    old = bytes(4096)
    for where in ([0], [4095], [0, 1, 2, 4095], list(range(0, 4096, 7))):
        new = bytearray(old)
        for i in where:
            new[i] = 0x80
        assert changed_offsets(old, bytes(new)) == where
    assert changed_offsets(old, old) == []


def test_seq_moves_only_on_change() -> None:
    t = ChangeTracker(size=32)
    t.update(bytes(32), 0.0)
    s = t.seq
    t.update(bytes(32), 1.0)
    assert t.seq == s
    t.update(b"\x01" + bytes(31), 2.0)
    assert t.seq == s + 1
