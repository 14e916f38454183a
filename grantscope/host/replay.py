"""The ``replay`` backend: a read-only :class:`Host` over an opened diagnostic bundle.

Every screen reads what the bundle recorded: XenStore (values and permissions), the grants and
events snapshots, the pages (when exported with ``--include-pages``).  Everything is decoded and
checked once, when the host is built, so a damaged or hostile bundle fails at open time with a
:class:`~grantscope.bundle.format.BundleError` (exit status 1) and no screen ever meets bad
data.  Nothing can be changed: :meth:`devices` is None, watches never fire, the clock stands
still at the capture, and the label names the bundle's host and time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grantscope.model.dumps import ConsoleParse

from grantscope.bundle.codec import decode
from grantscope.bundle.format import DEFAULT_LIMITS, Limits, malformed, node_from_json
from grantscope.bundle.reader import Bundle, read_bundle
from grantscope.errors import UsageError
from grantscope.host.base import (
    EventCounter,
    EventsSnapshot,
    FindingsSnapshot,
    GrantsSnapshot,
    Host,
    HostInfo,
    HvGrant,
    HvPort,
    PageRef,
    UsageSnapshot,
    domain_usage,
    hv_ports_from_dump,
)
from grantscope.model.findings import Finding
from grantscope.safetext import clean
from grantscope.xen.xs_types import Perms, XsNode

UNKNOWN_DOMID = -1


class ReplayHost(Host):
    """A host read from a bundle; every method answers from memory, nothing writes."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._nodes: dict[str, XsNode] = {}
        self._children: dict[str, list[str]] = {}
        self._load_xenstore()
        self._grants = self._load_grants()
        self._events = self._load_events()
        self._findings = self._load_findings()
        self._pages, self._page_bytes = self._load_pages()
        self._info = self._load_info()

    @classmethod
    def open(cls, path: str, *, limits: Limits = DEFAULT_LIMITS) -> ReplayHost:
        """Read and verify the bundle at ``path`` safely, then build the host over it."""
        return cls(read_bundle(path, limits=limits, verify=True))

    # -- loading (all checks happen here) -------------------------------------------------------
    def _load_xenstore(self) -> None:
        data = self.bundle.json_or_none("xenstore.json")
        if data is None:
            return
        nodes = data.get("nodes") if isinstance(data, dict) else None
        if not isinstance(nodes, list):
            raise malformed("xenstore.json", "'nodes' is not a list")
        for raw in nodes:
            stored = node_from_json(raw, "xenstore.json")
            perms = None
            if stored.owner is not None and stored.default is not None:
                perms = Perms(owner=stored.owner, default=stored.default, acl=stored.acl)
            path = _norm(stored.path)
            self._nodes[path] = XsNode(path=path, value=stored.value, perms=perms)
        # Children in recorded (walk) order; parents the walk left out are implied.  A set of
        # the paths already linked keeps this linear (scanning a parent's list per child was
        # quadratic in a flat directory).
        linked: set[str] = set()
        for path in list(self._nodes):
            child = path
            while child != "/" and child not in linked:
                linked.add(child)
                parent, _, name = child.rpartition("/")
                parent = parent or "/"
                self._children.setdefault(parent, []).append(name)
                child = parent

    def _load_grants(self) -> GrantsSnapshot:
        data = self.bundle.json_or_none("grants.json")
        if data is not None:
            snap = decode(GrantsSnapshot, data, "grants.json")
            if snap.hypervisor is None:  # the live host did not dump; the hvdump collector did
                snap = dataclasses.replace(snap, hypervisor=self._hv_from_dump())
            return snap
        return GrantsSnapshot(own=(), processes=(), hypervisor=self._hv_from_dump(), taken_at=0.0)

    def _console_dump(self) -> ConsoleParse | None:
        """The parsed hvdump.txt (the hvdump collector's raw g/e capture), or None if absent."""
        raw = self.bundle.members.get("hvdump.txt")
        if raw is None:
            return None
        from grantscope.model.dumps import parse_console

        try:
            return parse_console(raw.decode("utf-8", "replace"))
        except Exception as err:  # a parser failure on hostile text is a malformed bundle
            raise malformed("hvdump.txt", f"the dump could not be parsed ({err})") from None

    def _hv_from_dump(self) -> tuple[HvGrant, ...] | None:
        """Hypervisor grant rows from the raw 'g' dump when no grants snapshot was taken."""
        parsed = self._console_dump()
        dump = None if parsed is None else parsed.grants
        if dump is None:
            return None
        return tuple(
            HvGrant(
                granter=e.granter,
                ref=e.ref,
                mapper=e.mapper,
                flags=f"0x{e.flags:02x}",
                frame=e.gmfn,
            )
            for table in dump.tables
            for e in table.entries
        )

    def _console_events(self) -> tuple[HvPort, ...] | None:
        """Hypervisor port rows from the raw 'e' dump the hvdump collector stored."""
        parsed = self._console_dump()
        dump = None if parsed is None else parsed.events
        return None if dump is None else hv_ports_from_dump(dump)

    def _load_findings(self) -> FindingsSnapshot | None:
        """findings.json as the export computed it (None when the bundle has none)."""
        data = self.bundle.json_or_none("findings.json")
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
            raise malformed("findings.json", "'findings' is not a list")
        found = tuple(decode(Finding, item, f"findings.json findings[{i}]")
                      for i, item in enumerate(data["findings"]))
        raw_nc = data.get("not_checked", [])
        if not isinstance(raw_nc, list) or not all(isinstance(x, str) for x in raw_nc):
            raise malformed("findings.json", "'not_checked' is not a list of strings")
        return FindingsSnapshot(found, tuple(raw_nc), "the bundle's findings.json (at export)",
                                self._events.taken_at)

    def _load_events(self) -> EventsSnapshot:
        data = self.bundle.json_or_none("events.json")
        if data is not None:
            # Served as recorded; when the live host had not dumped 'e' (its port table was
            # empty), the hvdump collector's raw dump fills it, as for grants.
            snap = decode(EventsSnapshot, data, "events.json")
            if snap.hypervisor is None:
                snap = dataclasses.replace(snap, hypervisor=self._console_events())
            return snap
        rows: list[EventCounter] = []
        raw = self.bundle.members.get("interrupts.txt")
        if raw is not None:
            from grantscope.model.interrupts import parse_interrupts

            try:
                parsed = parse_interrupts(raw.decode("utf-8", "replace"))
            except Exception as err:
                raise malformed("interrupts.txt", f"could not be parsed ({err})") from None
            rows = [
                EventCounter(
                    irq=r.irq,
                    counts=r.counts,
                    chip=f"{r.chip}-{r.handler}".strip("-"),
                    name=r.action,
                )
                for r in parsed.rows
            ]
        return EventsSnapshot(interrupts=tuple(rows), ports=(), taken_at=0.0,
                              hypervisor=self._console_events())

    def _load_pages(self) -> tuple[tuple[PageRef, ...], dict[str, bytes]]:
        index = self.bundle.json_or_none("pages.json")
        if index is None:
            return (), {}
        entries = index.get("pages") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise malformed("pages.json", "'pages' is not a list")
        refs: list[PageRef] = []
        data: dict[str, bytes] = {}
        for number, entry in enumerate(entries):
            where = f"pages.json[{number}]"
            ref = decode(PageRef, entry, where)
            member = entry.get("member")
            if member is None:
                continue  # the page could not be read at export time
            if not isinstance(member, str) or member not in self.bundle.members:
                raise malformed(where, f"page {ref.key!r} points at a missing member")
            refs.append(ref)
            data[ref.key] = self.bundle.members[member]
        return tuple(refs), data

    def _load_info(self) -> HostInfo:
        host = self.bundle.host
        info = host.get("info") if isinstance(host.get("info"), dict) else {}
        assert isinstance(info, dict)
        # The label is drawn in the header: bundle text goes through clean() (no escapes).
        hostname = clean(_text(host.get("hostname"), "unknown host"))
        when = clean(_text(self.bundle.manifest.get("finished_at"), "unknown time"))
        domid = info.get("domid")
        role = host.get("role")
        is_dom0 = info.get("is_dom0") if isinstance(info.get("is_dom0"), bool) else role == "dom0"
        if not isinstance(domid, int) or isinstance(domid, bool):
            domid = 0 if is_dom0 else UNKNOWN_DOMID
        return HostInfo(
            domid=domid,
            is_dom0=bool(is_dom0),
            guest_type=clean(
                _text(info.get("guest_type") or host.get("guest_type"), "unknown").lower()
            ),
            xen_version=clean(_text(info.get("xen_version") or host.get("xen_version"), "unknown")),
            backend="replay",
            label=f"BUNDLE {'SIMULATED ' if self.simulated else ''}{hostname} @ {when}",
            readonly=True,
        )

    @property
    def simulated(self) -> bool:
        """True when the bundle was exported from the demo host (``grantscope --demo``)."""
        return self.bundle.manifest.get("simulated") is True

    # -- Host interface --------------------------------------------------------------------------
    def info(self) -> HostInfo:
        """The bundle's host, labelled with its name and capture time; always read-only."""
        return self._info

    def list(self, path: str) -> Sequence[str]:
        """Child names of ``path`` as recorded (empty for a leaf or an unknown path)."""
        return tuple(self._children.get(_norm(path), ()))

    def read(self, path: str) -> bytes | None:
        """The recorded raw value (a redacted value reads as the redaction marker)."""
        node = self._nodes.get(_norm(path))
        return None if node is None else node.value

    def perms(self, path: str) -> Perms | None:
        """The recorded permissions, None for an unknown node."""
        node = self._nodes.get(_norm(path))
        return None if node is None else node.perms

    def xenstore_snapshot(self, root: str = "/") -> tuple[XsNode, ...]:
        """The recorded nodes under ``root``, parents before children (walk order)."""
        root = _norm(root)
        prefix = "/" if root == "/" else root + "/"
        return tuple(n for p, n in self._nodes.items() if p == root or p.startswith(prefix))

    def grants(self) -> GrantsSnapshot:
        """The grants snapshot taken at export time."""
        return self._grants

    def events(self) -> EventsSnapshot:
        """The events snapshot taken at export time (counters do not move)."""
        return self._events

    def findings(self) -> FindingsSnapshot | None:
        """The findings the export computed (None when the bundle holds no findings.json)."""
        return self._findings

    def analyze(self) -> FindingsSnapshot:
        """A bundle cannot be analyzed again: its recorded findings, or a UsageError."""
        if self._findings is None:
            raise UsageError(
                "this bundle holds no findings",
                "It was exported without the findings collector (findings.json); run "
                "'grantscope dump analyze' on its hvdump.txt, or export a new bundle.",
            )
        return self._findings

    def usage(self) -> UsageSnapshot:
        """Table use at export time: the ``g`` dump's sizes (hvdump.txt), quota.json."""
        from grantscope.model.toolout import QuotaSnapshot

        parsed = self._console_dump()
        raw = self.bundle.json_or_none("quota.json")
        quota = None if raw is None else decode(QuotaSnapshot, raw, "quota.json")
        missing = tuple(f"{name}: not in this bundle" for name, there in
                        (("hvdump.txt", parsed is not None), ("quota.json", raw is not None))
                        if not there)
        return domain_usage(dump=None if parsed is None else parsed.grants, quota=quota,
                            unavailable=missing, taken_at=self._events.taken_at)

    def pages(self) -> tuple[PageRef, ...]:
        """Pages captured with ``--include-pages`` (none otherwise)."""
        return self._pages

    def read_page(self, key: str) -> bytes:
        """The captured bytes of page ``key``."""
        data = self._page_bytes.get(key)
        if data is None:
            raise UsageError(
                f"the bundle holds no page named {key!r}",
                "Pages are in a bundle only when it was exported with --include-pages.",
            )
        return data

    def clock(self) -> float:
        """Stands still at the capture: replayed counters have no rate."""
        return self._events.taken_at

    def describe(self) -> dict[str, Any]:
        """What the bundle says about its capture (for an about/info panel)."""
        return {
            "path": self.bundle.path,
            "started_at": self.bundle.manifest.get("started_at"),
            "finished_at": self.bundle.manifest.get("finished_at"),
            "collectors": self.bundle.manifest.get("collectors", []),
            "redaction": self.bundle.manifest.get("redaction", {}),
        }


def _norm(path: str) -> str:
    if not path or path == "/":
        return "/"
    return "/" + path.strip("/")


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) and value else default
