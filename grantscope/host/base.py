"""The one ``Host`` interface the TUI and the bundle code read from, with its snapshot types.

Three backends implement it: ``xen`` (the real machine, :mod:`grantscope.host.xen`),
``replay`` (a diagnostic bundle, read-only, :mod:`grantscope.host.replay`) and ``sim``
(the simulated host behind ``--demo``, :mod:`grantscope.host.sim`).  Everything a screen
shows comes back as an immutable snapshot (frozen, slotted dataclasses), so a worker thread
can build one and hand it to the UI thread without locks.  Nothing here imports Textual.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Literal, Protocol

from grantscope._compat import slotted_dataclass
from grantscope.closing import Closing
from grantscope.errors import UsageError

if TYPE_CHECKING:
    # Only annotations: importing these at run time would load the findings engine, the dump
    # parsers and the XenStore client before the TUI's first frame (issue 19's first paint).
    from grantscope.model.dumps import EventDump, GrantDump
    from grantscope.model.findings import Finding
    from grantscope.model.gnttab_size import GrantFrames
    from grantscope.model.toolout import ProcessInfo, QuotaSnapshot
    from grantscope.probing.devices import Devices
    from grantscope.xen.xs_types import Perms, XsNode

__all__ = [
    "BackendName",
    "DomainUsage",
    "EventCounter",
    "EventsSnapshot",
    "FindingsSnapshot",
    "GrantsSnapshot",
    "Host",
    "HostInfo",
    "HvGrant",
    "HvPort",
    "OwnGrant",
    "OwnPort",
    "PageRef",
    "ProcessGrants",
    "UsageSnapshot",
    "WatchHandle",
    "domain_usage",
    "hv_ports_from_dump",
]

BackendName = Literal["xen", "replay", "sim"]


@slotted_dataclass(frozen=True)
class HostInfo:
    """Who and where we are: what the header shows.

    ``label`` is what the header badge says beside the backend: "SIMULATED" for ``sim``,
    the bundle's host name and capture time for ``replay``, the host name for ``xen``.
    ``guest_type`` is "pv", "pvh", "hvm" or "unknown".
    """

    domid: int
    is_dom0: bool
    guest_type: str
    xen_version: str
    backend: BackendName
    label: str
    readonly: bool


@slotted_dataclass(frozen=True)
class OwnGrant:
    """A grant mapping (``kind="map"``, gntdev) or offer (``kind="offer"``, gntalloc) we hold.

    ``domid`` is the peer: the granting domain for a map, the grantee for an offer.
    ``owner`` says who made it (a probe name, "demo", a pid).  ``page_key`` names the page
    for :meth:`Host.read_page` when its bytes can be shown, else None.
    """

    kind: Literal["map", "offer"]
    domid: int
    grefs: tuple[int, ...]
    writable: bool
    owner: str
    page_key: str | None = None


@slotted_dataclass(frozen=True)
class ProcessGrants:
    """A process holding ``/dev/xen/gntdev`` or ``/dev/xen/gntalloc`` open (found through
    ``/proc/PID/fd``; :meth:`Host.process_info` describes it).

    ``mapped_pages`` counts the 4 KiB pages of its memory maps backed by the device,
    None when its maps could not be read (another user's process without privilege).
    """

    pid: int
    name: str
    device: str
    fds: int
    mapped_pages: int | None


@slotted_dataclass(frozen=True)
class HvGrant:
    """One row of the hypervisor-wide grant table (the ``xl debug-keys g`` dump).

    ``granter`` granted ``ref``; ``mapper`` is the domain holding a mapping of it
    (None when nobody maps it); ``flags`` is the dump's flags column as printed.
    """

    granter: int
    ref: int
    mapper: int | None
    flags: str
    frame: int | None = None


@slotted_dataclass(frozen=True)
class GrantsSnapshot:
    """Everything the Grants screen shows at one instant.

    ``hypervisor`` is None when the system-wide table is not available (not dom0, no
    ``xl``, or the backend does not have it), which is not the same as an empty table.
    """

    own: tuple[OwnGrant, ...]
    processes: tuple[ProcessGrants, ...]
    hypervisor: tuple[HvGrant, ...] | None
    taken_at: float


@slotted_dataclass(frozen=True)
class EventCounter:
    """A Xen row of ``/proc/interrupts``: irq number, per-CPU counts, chip and action name."""

    irq: int
    counts: tuple[int, ...]
    chip: str
    name: str

    @property
    def total(self) -> int:
        """The count summed over all CPUs."""
        return sum(self.counts)


@slotted_dataclass(frozen=True)
class OwnPort:
    """An event-channel port bound through our own ``/dev/xen/evtchn`` fds.

    ``kind`` is "unbound", "interdomain" or "virq"; ``fired`` counts events seen on it.
    """

    port: int
    kind: str
    remote_domid: int | None
    remote_port: int | None
    fired: int
    owner: str = ""


@slotted_dataclass(frozen=True)
class HvPort:
    """One port of the hypervisor-wide event-channel table (the ``xl debug-keys e`` dump).

    ``state`` is Xen's state name ("unbound", "interdomain", "pirq", "virq", "ipi",
    "reserved"); ``remote_domid``/``remote_port`` name the other end of an interdomain port
    (an unbound port has only the domain allowed to bind it); ``vcpu`` is the vCPU notified;
    ``detail`` says "virq N" or "pirq N" for the states that carry one.
    """

    domid: int
    port: int
    state: str
    remote_domid: int | None
    remote_port: int | None
    pending: bool
    masked: bool
    vcpu: int
    detail: str = ""


def hv_ports_from_dump(dump: EventDump) -> tuple[HvPort, ...]:
    """The rows of a parsed ``e`` dump, domain by domain, port by port."""
    out: list[HvPort] = []
    for p in dump.ports():
        detail = ""
        if p.virq is not None:
            detail = f"virq {p.virq}"
        elif p.pirq is not None:
            detail = f"pirq {p.pirq}" + (f" irq {p.irq}" if p.irq is not None else "")
        out.append(HvPort(domid=p.domid, port=p.port, state=p.state_name,
                          remote_domid=p.remote_domid, remote_port=p.remote_port,
                          pending=p.pending, masked=p.masked, vcpu=p.notify_vcpu,
                          detail=detail))
    return tuple(out)


@slotted_dataclass(frozen=True)
class EventsSnapshot:
    """Everything the Events screen shows at one instant (``taken_at`` on the host's clock).

    ``hypervisor`` is the system-wide port table of the last ``e`` dump, None when it was
    never captured (or this backend has none), which is not the same as an empty table.
    """

    interrupts: tuple[EventCounter, ...]
    ports: tuple[OwnPort, ...]
    taken_at: float
    hypervisor: tuple[HvPort, ...] | None = None


@slotted_dataclass(frozen=True)
class FindingsSnapshot:
    """The result of one system-wide analysis, as ``grantscope report`` computes it.

    ``findings`` come worst first; ``not_checked`` lists the checks that could not run and
    why; ``source`` says where they come from (a live analysis, a bundle's findings.json, the
    simulated host) and ``taken_at`` is on the host's clock.
    """

    findings: tuple[Finding, ...]
    not_checked: tuple[str, ...]
    source: str
    taken_at: float


@slotted_dataclass(frozen=True)
class DomainUsage:
    """How full one domain's limited tables are: ``(used, limit)`` pairs, None when unknown.

    ``grant_frames``: frames of its grant table (``GNTTABOP_query_size`` or the ``g`` dump);
    ``maptrack_frames``: frames of its maptrack (the ``g`` dump only); ``xenstore_entries``:
    XenStore nodes it owns against xenstored's per-domain quota.
    """

    domid: int
    grant_frames: tuple[int, int] | None = None
    maptrack_frames: tuple[int, int] | None = None
    xenstore_entries: tuple[int, int] | None = None


@slotted_dataclass(frozen=True)
class UsageSnapshot:
    """Table use per domain at one instant, and why any part could not be read."""

    domains: tuple[DomainUsage, ...]
    unavailable: tuple[str, ...]
    taken_at: float


def domain_usage(*, dump: GrantDump | None = None, sizes: Sequence[GrantFrames] = (),
                 quota: QuotaSnapshot | None = None, unavailable: Sequence[str] = (),
                 taken_at: float = 0.0) -> UsageSnapshot:
    """One :class:`UsageSnapshot` from a ``g`` dump, query_size sizes and a quota reading.

    Sizes from ``GNTTABOP_query_size`` are newer than a dump's, so they win for grant frames.
    """
    grant: dict[int, tuple[int, int]] = {}
    maptrack: dict[int, tuple[int, int]] = {}
    for t in dump.tables if dump is not None else ():
        if t.frames is not None and t.max_frames:
            grant[t.domid] = (t.frames, t.max_frames)
        if t.maptrack_frames is not None and t.max_maptrack_frames:
            maptrack[t.domid] = (t.maptrack_frames, t.max_maptrack_frames)
    for size in sizes:
        if size.max_frames:
            grant[size.domid] = (size.frames, size.max_frames)
    entries: dict[int, tuple[int, int]] = {}
    node_quota = quota.limits.get("nodes") if quota is not None else None
    for u in quota.usage if quota is not None else ():
        if node_quota and "nodes" in u.usage:
            entries[u.domid] = (u.usage["nodes"], node_quota)
    domids = sorted(set(grant) | set(maptrack) | set(entries))
    rows = tuple(DomainUsage(d, grant.get(d), maptrack.get(d), entries.get(d)) for d in domids)
    problems = tuple(unavailable) + (tuple(quota.unavailable) if quota is not None else ())
    return UsageSnapshot(rows, problems, taken_at)


@slotted_dataclass(frozen=True)
class PageRef:
    """A page whose bytes the host can show in the Page view (see :meth:`Host.read_page`).

    ``ring`` says the page starts with a shared-ring header (req_prod, req_event, ...).
    """

    key: str
    title: str
    domid: int
    gref: int | None
    ring: bool = False
    size: int = 4096


class WatchHandle(Protocol):
    """A XenStore watch: paths that changed under the watched path, one at a time."""

    def get(self, timeout: float) -> str | None:
        """The next changed path, or None when ``timeout`` seconds pass without one."""
        ...

    def close(self) -> None:
        """Stop watching (idempotent)."""
        ...


@slotted_dataclass()
class _NoWatch:
    """The watch of a backend with no live XenStore (replay): it never fires."""

    closed: bool = field(default=False)

    def get(self, timeout: float) -> str | None:
        return None

    def close(self) -> None:
        self.closed = True


class Host(abc.ABC, Closing):
    """One host to diagnose: the real machine, a bundle, or the simulated demo host.

    Every method may block (a XenStore request, psutil, reading /proc), so the UI calls
    them from worker threads.  Failures raise :class:`grantscope.errors.GrantscopeError`
    subclasses with a message and an explanation, never a raw OSError.
    """

    @abc.abstractmethod
    def info(self) -> HostInfo:
        """Domain id, dom0 or domU, Xen version, backend name, label and read-only flag."""

    # -- XenStore, lazily -------------------------------------------------------------
    @abc.abstractmethod
    def list(self, path: str) -> Sequence[str]:
        """Child names (not paths) of the XenStore node ``path``, sorted as the store lists them."""

    @abc.abstractmethod
    def read(self, path: str) -> bytes | None:
        """Raw value bytes of ``path``; None when the node does not exist."""

    @abc.abstractmethod
    def perms(self, path: str) -> Perms | None:
        """Permissions of ``path``; None when the node does not exist or they cannot be read."""

    def watch(self, path: str) -> WatchHandle:
        """Watch ``path`` and its subtree; by default it never fires (no live store)."""
        return _NoWatch()

    @abc.abstractmethod
    def xenstore_snapshot(self, root: str = "/") -> tuple[XsNode, ...]:
        """The whole tree under ``root`` with values and permissions, parents before children."""

    # -- grants, events, pages ----------------------------------------------------------
    @abc.abstractmethod
    def grants(self) -> GrantsSnapshot:
        """Own mappings and offers, processes holding gntdev/gntalloc, the hypervisor table."""

    @abc.abstractmethod
    def events(self) -> EventsSnapshot:
        """Xen rows of /proc/interrupts and our own event-channel ports."""

    def capture_hypervisor_grants(self) -> str:
        """Refresh the hypervisor-wide grant table that :meth:`grants` returns.

        Returns "" on success, else a sentence saying why the table is unavailable.  The
        default has nothing to capture (the simulated and replay hosts carry their table).
        """
        return "this host has no hypervisor table to capture"

    def capture_hypervisor_events(self) -> str:
        """Refresh the hypervisor-wide port table that :meth:`events` returns (``e`` dump).

        Returns "" on success, else a sentence saying why the table is unavailable.
        """
        return "this host has no hypervisor port table to capture"

    # -- findings ------------------------------------------------------------------------
    def findings(self) -> FindingsSnapshot | None:
        """The findings of the last analysis, None before any (cheap: never analyzes)."""
        return None

    def analyze(self) -> FindingsSnapshot:
        """Run the system-wide analysis now and return its findings.

        On the xen backend this sends ``xl debug-keys g`` and ``e`` (as ``grantscope report
        --capture`` does; the console ring is read, never emptied), so callers run it only
        when the user asks.  Under ``--readonly`` no key is sent.
        Raises :class:`~grantscope.errors.GrantscopeError` when this host cannot analyze.
        """
        raise UsageError("this host has no findings", "Only a live host, a bundle with "
                         "findings.json or the demo host has findings to show.")

    def pages(self) -> tuple[PageRef, ...]:
        """Pages this host can show in the Page view beyond the ones probes create."""
        return ()

    def read_page(self, key: str) -> bytes:
        """Current bytes of the page named ``key`` (one of :meth:`pages`)."""
        raise UsageError(f"no page named {key!r} on this host", "Pick one from the Page list.")

    def domain_alive(self, domid: int) -> bool | None:
        """Whether domain ``domid`` still exists (a page mapped from it outlives it: Xen
        keeps a destroyed domain's pages while anyone maps them); None when this backend
        cannot tell (a bundle, a domU that may not ask)."""
        return None

    def process_info(self, pid: int) -> ProcessInfo | None:
        """Name, command line, user, start time, CPU and memory of process ``pid`` (one of the
        device holders), or None when this backend cannot tell (a bundle) or it has gone."""
        return None

    def probe_hints(self) -> dict[str, dict[str, str]]:
        """Suggested parameter values per probe name for the TUI's forms (e.g. the demo's grefs)."""
        return {}

    # -- acting ------------------------------------------------------------------------
    def devices(self) -> Devices | None:
        """The device layer probes run through, or None when the host is read-only (replay)."""
        return None

    def usage(self) -> UsageSnapshot:
        """Grant-frame, maptrack and XenStore-quota use per domain (what this host can tell).

        May run tools (one short process per domain): call it from a worker, not often.
        """
        return UsageSnapshot((), ("this host does not report table use",), self.clock())

    def clock(self) -> float:
        """Seconds on the host's clock (monotonic; frozen in tests on the simulated host)."""
        import time

        return time.monotonic()

    def close(self) -> None:
        """Release whatever the backend holds open (idempotent)."""
        # Nothing by default (not Closing's NotImplementedError): most backends hold nothing.

