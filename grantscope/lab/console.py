"""Splitting the lab's serial console into the job's output, hypervisor noise and markers.

Everything on QEMU's serial line (Xen's own messages, dom0's kernel and init, the job) arrives
mixed.  Dom0's init frames the job with marker lines ``@@GSLAB-READY nonce@@`` and
``@@GSLAB-END nonce status@@`` (or ``@@GSLAB-FAIL nonce reason@@``); the nonce is fresh per run,
so a job that prints a marker-like line cannot fake one.  Between READY and END the job's bytes
pass through live (also partial lines, so progress dots show at once), minus carriage returns
and minus lines Xen prints itself (``(XEN)``, ``(dN)``), which stay in the full console log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HELD_PREFIXES = (b"(XEN)", b"@@GSLAB-")
_GUEST_PREFIX = re.compile(rb"^\(d\d+\)")
_GUEST_PARTIAL = re.compile(rb"^\((d\d*)?$")


@dataclass(frozen=True)
class Marker:
    """A marker line from dom0's init: READY, END (detail = exit status) or FAIL (reason)."""

    kind: str
    detail: str


def classify_prefix(prefix: bytes) -> str:
    """For the start of a line: 'hold' (never pass on), 'wait' (undecided) or 'pass'."""
    for held in _HELD_PREFIXES:
        if prefix.startswith(held):
            return "hold"
        if held.startswith(prefix):
            return "wait"
    if _GUEST_PREFIX.match(prefix):
        return "hold"
    if _GUEST_PARTIAL.match(prefix):
        return "wait"
    return "pass"


class ConsoleStream:
    """Feed raw console bytes; get back the job's output and the markers seen."""

    def __init__(self, nonce: str) -> None:
        self._marker = re.compile(
            rb"^@@GSLAB-(READY|END|FAIL) " + re.escape(nonce.encode()) + rb"(?: (.*?))?@@\s*$"
        )
        self.passing = False           # True between READY and END
        self._line = bytearray()       # the current (incomplete) line, without '\r'
        self._emitted = 0              # bytes of it already passed on

    def feed(self, data: bytes) -> tuple[bytes, list[Marker]]:
        """Consume ``data``; return (bytes to show as the job's output, markers completed)."""
        out = bytearray()
        markers: list[Marker] = []
        pieces = data.replace(b"\r", b"").split(b"\n")
        for i, piece in enumerate(pieces):
            self._line += piece
            if i < len(pieces) - 1:           # this piece ended with a newline
                out += self._finish_line(markers)
            elif self.passing and self._line and classify_prefix(bytes(self._line)) == "pass":
                out += self._line[self._emitted :]
                self._emitted = len(self._line)
        return bytes(out), markers

    def _finish_line(self, markers: list[Marker]) -> bytes:
        line = bytes(self._line)
        emitted = self._emitted
        self._line = bytearray()
        self._emitted = 0
        match = self._marker.match(line)
        if match:
            kind = match.group(1).decode()
            detail = (match.group(2) or b"").decode(errors="replace")
            markers.append(Marker(kind, detail))
            self.passing = kind == "READY"
            return b""
        if not self.passing:
            return b""
        if emitted == 0 and classify_prefix(line) == "hold":
            return b""
        return line[emitted:] + b"\n"
