"""Parse the Xen rows of ``/proc/interrupts`` and the sysfs xenbus counters.

Three kernel eras print Xen rows differently (xen-facts.md §2.5), and all are accepted:

* old, chip and flow handler fused: `` 96:   740  0  xen-dyn-event     xenbus``
* modern x86: `` 54:   266   xen-dyn    -event     xenbus``
* arm64, with a trigger column: `` 21:   0   xen-dyn     Edge    -event     xenbus``

Chips are ``xen-dyn``, ``xen-dyn-lateeoi``, ``xen-percpu`` and ``xen-pirq``.  Rows of other
chips are not Xen rows and are skipped; a row that names a Xen chip but cannot be read is
returned in ``unparsed``.  Nothing here reads files: :mod:`grantscope.sources.procfs` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from grantscope._compat import slotted_dataclass

__all__ = [
    "InterruptRow",
    "InterruptsParse",
    "XenbusCounters",
    "parse_interrupts",
    "parse_xenbus_counters",
]

_CHIP_RE = re.compile(r"^(xen-dyn-lateeoi|xen-dyn|xen-percpu|xen-pirq)(?=-|\s|$)")
_ROW_RE = re.compile(r"^\s*(\d+):(.*)$")
_TRIGGERS = {"Edge", "Level", "edge", "level"}
# A counter is at most a uint64: 20 ASCII digits.  str.isdigit() alone also accepts "²" and
# other Unicode digits that int() refuses, and an unbounded run of digits costs quadratic time.
_MAX_DIGITS = 20


def _is_number(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= _MAX_DIGITS


@slotted_dataclass(frozen=True)
class InterruptRow:
    """One Xen row: irq number, per-CPU counts, chip, flow handler, trigger, action names.

    ``action`` is the last column as printed (several actions of a shared irq are joined by
    ", "); for ports bound through /dev/xen/evtchn it reads ``evtchn:<comm>``.
    """

    irq: int
    counts: tuple[int, ...]
    chip: str
    handler: str
    trigger: str | None
    action: str

    @property
    def total(self) -> int:
        """Events summed over all CPUs."""
        return sum(self.counts)

    @property
    def evtchn_comm(self) -> str | None:
        """The process name of an ``evtchn:<comm>`` row (truncated to 15 chars by Linux)."""
        if self.action.startswith("evtchn:"):
            return self.action[len("evtchn:") :]
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict including ``total``."""
        out = asdict(self)
        out["total"] = self.total
        return out


@slotted_dataclass(frozen=True)
class InterruptsParse:
    """The Xen rows of one ``/proc/interrupts`` read, and the Xen rows it could not read."""

    cpus: int
    rows: tuple[InterruptRow, ...]
    unparsed: tuple[str, ...]

    def by_irq(self) -> dict[int, InterruptRow]:
        """Rows keyed by irq number."""
        return {r.irq: r for r in self.rows}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "cpus": self.cpus,
            "rows": [r.to_json() for r in self.rows],
            "unparsed": list(self.unparsed),
        }


def _parse_rest(rest: str, ncpu: int) -> tuple[tuple[int, ...], str, str, str | None, str] | None:
    """Split what follows ``NN:`` into counts, chip, handler, trigger and action."""
    tokens = rest.split()
    # Counts come first, one per CPU; some kernels print fewer for offline CPUs.  Walked by
    # index (one pass): popping from the front of the list was quadratic in the CPU count.
    limit = min(max(ncpu, 1), len(tokens))
    used = 0
    while used < limit and _is_number(tokens[used]):
        used += 1
    if not used or used == len(tokens):
        return None
    counts = [int(word) for word in tokens[:used]]
    text = " ".join(tokens[used:])
    m = _CHIP_RE.match(text)
    if not m:
        return None
    chip = m.group(1)
    after = text[m.end() :]
    trigger: str | None = None
    if after.startswith("-"):
        # Old fused form "xen-dyn-event": the handler is glued to the chip name.
        handler, _, action = after[1:].partition(" ")
    else:
        parts = after.split()
        # Optional hwirq number (irq-domain kernels) and trigger word before "-handler".
        at = 0
        while at < len(parts) and not parts[at].startswith("-"):
            word = parts[at]
            at += 1
            if word in _TRIGGERS:
                trigger = word
            elif not _is_number(word):
                return None
        if at == len(parts):
            return None
        handler = parts[at][1:]
        action = " ".join(parts[at + 1 :])
    if not handler:
        return None
    return tuple(counts), chip, handler, trigger, action.strip()


def parse_interrupts(text: str) -> InterruptsParse:
    """The Xen rows of a ``/proc/interrupts`` text.  Never raises on any input."""
    lines = text.splitlines()
    ncpu = 0
    start = 0
    for i, line in enumerate(lines):
        if line.strip().startswith("CPU"):
            ncpu = sum(1 for w in line.split() if w.startswith("CPU"))
            start = i + 1
            break
    rows: list[InterruptRow] = []
    bad: list[str] = []
    for line in lines[start:]:
        m = _ROW_RE.match(line)
        if not m or "xen-" not in line:
            continue
        parsed = _parse_rest(m.group(2), ncpu)
        if parsed is None:
            if re.search(r"\bxen-(dyn|percpu|pirq)", line):
                bad.append(line)
            continue
        counts, chip, handler, trigger, action = parsed
        rows.append(
            InterruptRow(
                irq=int(m.group(1)),
                counts=counts,
                chip=chip,
                handler=handler,
                trigger=trigger,
                action=action,
            )
        )
    return InterruptsParse(cpus=ncpu, rows=tuple(rows), unparsed=tuple(bad))


@slotted_dataclass(frozen=True)
class XenbusCounters:
    """The per-device event counters Linux keeps under ``<xenbus device>/xenbus/`` (5.12+).

    ``nodename`` is the device's XenStore path (its sysfs ``nodename`` attribute), which is
    how a counter joins a device; Linux writes it relative to its own domain's home
    (``backend/vif/1/0``), see :meth:`xenstore_path`.  A counter is None when the kernel
    does not have it.
    """

    device: str
    nodename: str | None
    event_channels: int | None
    events: int | None
    spurious_events: int | None
    jiffies_eoi_delayed: int | None
    spurious_threshold: int | None

    def xenstore_path(self, local_domid: int | None) -> str | None:
        """``nodename`` as an absolute XenStore path, resolved against the home of
        ``local_domid`` (the domain whose sysfs it was read in); None if that is unknown."""
        if self.nodename is None or self.nodename.startswith("/"):
            return self.nodename
        if local_domid is None:
            return None
        return f"/local/domain/{local_domid}/{self.nodename}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if _is_number(value) else None


def parse_xenbus_counters(device: str, files: Mapping[str, str]) -> XenbusCounters:
    """Build counters from the text of a device's sysfs files (names relative to it).

    ``files`` maps e.g. ``"nodename"`` and ``"xenbus/events"`` to their contents; missing or
    non-numeric files give None.
    """
    node = files.get("nodename")
    return XenbusCounters(
        device=device,
        nodename=node.strip() if node is not None and node.strip() else None,
        event_channels=_int_or_none(files.get("xenbus/event_channels")),
        events=_int_or_none(files.get("xenbus/events")),
        spurious_events=_int_or_none(files.get("xenbus/spurious_events")),
        jiffies_eoi_delayed=_int_or_none(files.get("xenbus/jiffies_eoi_delayed")),
        spurious_threshold=_int_or_none(files.get("xenbus/spurious_threshold")),
    )
