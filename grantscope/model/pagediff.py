"""Which bytes of a page changed, and how recently: the hexdump's highlight that fades.

Pure and Textual-free: the hexdump widget asks :class:`ChangeTracker` for the rows to
repaint and a small fade bucket per byte, so its strip cache stays keyed on a few values.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass

ROW_BYTES = 16
FADE_SECONDS = 1.5
FADE_BUCKETS = 3  # 3 = just changed, 1 = almost faded, 0 = not highlighted
_NONZERO = re.compile(rb"[^\x00]")


def changed_offsets(old: bytes, new: bytes) -> list[int]:
    """Offsets where ``old`` and ``new`` differ; extra bytes of the longer one count as changed."""
    common = min(len(old), len(new))
    if old[:common] == new[:common]:
        out: list[int] = []
    else:
        # the XOR of the two as one integer is zero exactly where they agree: the scan for
        # non-zero bytes runs in C (a page that moves a little costs no 4096-step loop)
        diff = (int.from_bytes(old[:common], "big") ^ int.from_bytes(new[:common], "big"))
        out = [m.start() for m in _NONZERO.finditer(diff.to_bytes(common, "big"))]
    out.extend(range(common, max(len(old), len(new))))
    return out


def changed_rows(offsets: list[int], row_bytes: int = ROW_BYTES) -> list[int]:
    """Sorted distinct row numbers that hold the given byte offsets."""
    return sorted({off // row_bytes for off in offsets})


def fade_bucket(age: float, fade: float = FADE_SECONDS, buckets: int = FADE_BUCKETS) -> int:
    """Highlight strength for a change ``age`` seconds old: ``buckets`` when fresh, 0 when faded."""
    if age < 0 or age >= fade:
        return 0
    return buckets - int(age / fade * buckets)


@dataclass
class ChangeTracker:
    """Remembers the last bytes of a page and when each byte last changed."""

    size: int = 4096
    fade: float = FADE_SECONDS

    def __post_init__(self) -> None:
        self.data = bytes(self.size)
        self._changed_at = array("d", [float("-inf")]) * self.size
        # per row, the latest change of any of its bytes: fading_rows scans 256 rows, not 4096 bytes
        self._row_changed_at = array("d", [float("-inf")]) * (self.size // ROW_BYTES)
        self._primed = False
        self._now = float("-inf")  # the time of the previous update
        self.seq = 0

    def update(self, new: bytes, now: float) -> list[int]:
        """Take the page's current bytes; return the rows whose look changed since the
        previous update: their bytes, or the fade bucket of one of them (a row that fades
        is repainted when a bucket steps down, not at every update).

        The first update only primes the tracker: nothing counts as changed on first sight.
        """
        new = bytes(new[: self.size]).ljust(self.size, b"\0")
        if not self._primed:
            self.data = new
            self._primed = True
            self.seq += 1
            return list(range(self.size // ROW_BYTES))
        prev, self._now = self._now, now
        offsets = changed_offsets(self.data, new) if new != self.data else []
        rows = set(changed_rows(offsets))
        rows.update(self._refaded_rows(prev, now))
        for off in offsets:
            # the fade of a byte that was already highlighted restarts
            self._changed_at[off] = now
            self._row_changed_at[off // ROW_BYTES] = now
        self.data = new
        if offsets:
            self.seq += 1
        return sorted(rows)

    def bucket(self, offset: int, now: float) -> int:
        """Fade bucket of the byte at ``offset`` (see :func:`fade_bucket`)."""
        return fade_bucket(now - self._changed_at[offset], self.fade)

    def row_buckets(self, row: int, now: float) -> tuple[int, ...]:
        """Fade buckets of the 16 bytes of ``row``."""
        start = row * ROW_BYTES
        return tuple(self.bucket(i, now) for i in range(start, min(start + ROW_BYTES, self.size)))

    def _refaded_rows(self, prev: float, now: float) -> list[int]:
        """Rows where a byte's fade bucket at ``now`` differs from the one at ``prev``."""
        out = []
        fade, changed_at = self.fade, self._changed_at
        for row in self.fading_rows(prev):
            start = row * ROW_BYTES
            # the bytes of a row mostly changed together: a few distinct times to check
            for at in set(changed_at[start:start + ROW_BYTES]):
                if fade_bucket(prev - at, fade) != fade_bucket(now - at, fade):
                    out.append(row)
                    break
        return out

    def fading_rows(self, now: float) -> list[int]:
        """Rows with a byte still highlighted at ``now`` (they need repainting as they fade)."""
        cutoff = now - self.fade
        return [row for row, at in enumerate(self._row_changed_at) if at > cutoff]
