"""Maptrack use per domain, opt-in (``grantscope metrics --maptrack-every SECONDS``).

Xen has no cheap interface to maptrack use: only the ``g`` debug key's dump shows it, and a
debug key writes to the console ring and stalls the CPU on a big host.  So a scrape never
asks for it unless the user chose to, and then at most once per ``every`` seconds (at least
:data:`MIN_INTERVAL`): between captures, scrapes get the last reading with its age.  The dump
is cut out of the ring by :func:`~grantscope.sources.hvdump.capture_dumps`, which reads the
ring and never empties it.  ``--readonly`` forbids the debug key, so the CLI refuses the
option there (grantscope.cli.metrics).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.errors import GrantscopeError

__all__ = ["MIN_INTERVAL", "MaptrackReader", "MaptrackReading", "MaptrackUse"]

#: The shortest interval between two ``g`` captures a scrape may cause (seconds).
MIN_INTERVAL = 300.0


@slotted_dataclass(frozen=True)
class MaptrackUse:
    """One domain's maptrack frames in use and its maximum, from a ``g`` dump."""

    domid: int
    frames: int
    max_frames: int


@slotted_dataclass(frozen=True)
class MaptrackReading:
    """What the last capture found, and how old it is at this scrape (seconds)."""

    uses: tuple[MaptrackUse, ...]
    age: float


class MaptrackReader:
    """Takes a ``g`` dump at most once per ``every`` seconds and keeps its maptrack sizes.

    ``read()`` raises :class:`~grantscope.errors.GrantscopeError` when the capture failed
    (the scrape marks the source down); a failed capture is retried only after ``every``
    seconds too, so a broken ``xl`` costs no more than a working one.
    """

    def __init__(self, every: float, *, capture: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if every < MIN_INTERVAL:
            raise ValueError(f"every must be at least {MIN_INTERVAL:g} s")
        self.every = every
        self._capture = capture or _capture_g
        self._clock = clock
        self._lock = threading.Lock()
        self._taken: float | None = None
        self._last: tuple[MaptrackUse, ...] | None = None
        self._why = ""
        self.captures = 0

    def read(self) -> MaptrackReading:
        """The cached reading, refreshed first when it is ``every`` seconds old."""
        with self._lock:
            now = self._clock()
            if self._taken is None or now - self._taken >= self.every:
                self._taken = now
                self.captures += 1
                self._last, self._why = _uses_of(self._capture())
            if self._last is None:
                raise GrantscopeError(self._why)
            return MaptrackReading(self._last, now - self._taken)


def _capture_g() -> Any:
    from grantscope.sources.hvdump import capture_dumps

    return capture_dumps("g")


def _uses_of(capture: Any) -> tuple[tuple[MaptrackUse, ...] | None, str]:
    """The maptrack sizes in a :class:`~grantscope.sources.hvdump.DumpCapture`, or why none."""
    parse = capture.parse
    grants = parse.grants if parse is not None else None
    if grants is None:
        return None, capture.unavailable or "the 'g' dump held no grant tables"
    uses = tuple(MaptrackUse(t.domid, t.maptrack_frames, t.max_maptrack_frames)
                 for t in grants.tables
                 if t.maptrack_frames is not None and t.max_maptrack_frames is not None)
    if not uses:
        return None, "the 'g' dump gave no domain's maptrack frames"
    return uses, ""
