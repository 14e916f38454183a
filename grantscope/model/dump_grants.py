"""The grant-table (``g``) dump's records, and the dump rendered back in Xen's own format.

The parser is :mod:`grantscope.model.dump_parser`; :mod:`grantscope.model.dumps` is the
entry point and describes the formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from grantscope._compat import slotted_dataclass


@slotted_dataclass(frozen=True)
class GrantEntry:
    """One active (pinned) grant: ``granter`` granted ``ref``; ``mapper`` has it mapped.

    Fields are the columns of the ``g`` dump: ``mapper`` is the active ``localdom``
    (``act->domid``), ``shared_domid`` the domid the granter wrote in its entry,
    ``pin`` the packed pin counters, ``gmfn`` the granter's frame, ``flags`` the GTF bits.
    """

    granter: int
    ref: int
    mapper: int
    mfn: int
    pin: int
    shared_domid: int
    gmfn: int
    flags: int

    @property
    def host_write_pins(self) -> int:
        """Writable host mappings (pin bits 0–7)."""
        return self.pin & 0xFF

    @property
    def host_read_pins(self) -> int:
        """Read-only host mappings (pin bits 8–15)."""
        return (self.pin >> 8) & 0xFF

    @property
    def device_write_pins(self) -> int:
        """Writable device mappings (pin bits 16–23)."""
        return (self.pin >> 16) & 0xFF

    @property
    def device_read_pins(self) -> int:
        """Read-only device mappings (pin bits 24–31)."""
        return (self.pin >> 24) & 0xFF

    @property
    def readonly(self) -> bool:
        """The granter made the entry read-only (GTF_readonly)."""
        return bool(self.flags & 0x4)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, with the pin counters unpacked."""
        out = asdict(self)
        out["pins"] = {
            "host_write": self.host_write_pins,
            "host_read": self.host_read_pins,
            "device_write": self.device_write_pins,
            "device_read": self.device_read_pins,
        }
        return out


@slotted_dataclass(frozen=True)
class GrantTable:
    """One domain's section of a ``g`` dump: its grant-table size and its active entries.

    ``frames``/``max_frames`` are the granter-side table; ``maptrack_frames``/
    ``max_maptrack_frames`` the mapper-side capacity of the same domain.  They are None
    when the size line was missing (the section was cut).
    """

    domid: int
    version: int
    frames: int | None
    max_frames: int | None
    maptrack_frames: int | None
    max_maptrack_frames: int | None
    entries: tuple[GrantEntry, ...]
    no_active_line: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {k: v for k, v in asdict(self).items() if k != "entries"}
        out["entries"] = [e.to_json() for e in self.entries]
        return out


@slotted_dataclass(frozen=True)
class GrantDump:
    """One ``g`` dump.  ``complete`` only when both markers were seen and nothing was cut."""

    begin_seen: bool
    end_seen: bool
    tables: tuple[GrantTable, ...]
    first_line: int
    last_line: int

    @property
    def complete(self) -> bool:
        """Both the begin and the end marker are present."""
        return self.begin_seen and self.end_seen

    def entries(self) -> Iterator[GrantEntry]:
        """Every active entry of every domain."""
        for table in self.tables:
            yield from table.entries

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "begin_seen": self.begin_seen,
            "end_seen": self.end_seen,
            "complete": self.complete,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "tables": [t.to_json() for t in self.tables],
        }


def format_grant_entry(entry: GrantEntry) -> str:
    """One active-entry line exactly as ``gnttab_usage_print`` prints it (no prefix)."""
    return (
        f"[0x{entry.ref:03x}]  {entry.mapper:5d} 0x{entry.mfn:05x} 0x{entry.pin:08x}      "
        f"{entry.shared_domid:5d} 0x{entry.gmfn:06x} 0x{entry.flags:02x}"
    )


def format_grant_table(table: GrantTable) -> list[str]:
    """One domain's section of a ``g`` dump, header lines included (no prefix)."""
    lines = [
        "      -------- active --------       -------- shared --------",
        "[ref] localdom mfn      pin          localdom gmfn     flags",
        f"grant-table for remote d{table.domid} (v{table.version})",
        f"  {table.frames} frames ({table.max_frames} max), {table.maptrack_frames} maptrack "
        f"frames ({table.max_maptrack_frames} max)",
    ]
    lines.extend(format_grant_entry(e) for e in table.entries)
    if not table.entries:
        lines.append("no active grant table entries")
    return lines


def format_grant_dump(tables: Iterable[GrantTable]) -> list[str]:
    """A whole ``g`` dump with both markers (no prefix)."""
    lines = ["gnttab_usage_print_all [ key 'g' pressed"]
    for t in tables:
        lines.extend(format_grant_table(t))
    lines.append("gnttab_usage_print_all ] done")
    return lines
