"""The one builder of an :class:`~grantscope.model.findings.Observation`, and the live collection.

Every place that hands sources to :func:`~grantscope.model.findings.analyze` builds its
Observation through :func:`build_observation`: ``report`` and the TUI's analysis on a live
host (:func:`collect_observation`), ``dump analyze`` (a saved console text), the bundle's
findings collector and the simulated host.  The builder is where the rules live that they
used to repeat: two counter samples give the interval between them, a quota reading with
no usage is no quota, and a part that is absent gets a reason in ``unavailable`` (so the
findings say which checks could not run, and why).

:func:`collect_observation` reads what ``grantscope report`` reads from this host (see
:mod:`grantscope.cli.report`); it lives here, below the command line, so the ``xen`` host
backend can run the same analysis without importing the CLI.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.errors import GrantscopeError
from grantscope.model.dumps import ConsoleParse
from grantscope.model.findings import Observation
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import InterruptsParse, XenbusCounters
from grantscope.model.observation import XsLeftover
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot
from grantscope.xen import _host

_HOME_PATH = re.compile(r"^/local/domain/(\d+)$")

__all__ = ["COLLECT_STEPS", "PARTS", "Sample", "build_observation", "collect_observation",
           "local_domid"]

#: The parts of an Observation as ``unavailable`` names them (the findings' wording).
PARTS = ("xenstore", "grant dump", "interrupts", "xenbus counters", "quota")


@slotted_dataclass(frozen=True)
class Sample:
    """One sample of the rate sources: Xen IRQ rows and xenbus counters, at ``at`` (monotonic)."""

    interrupts: InterruptsParse | None
    counters: Sequence[XenbusCounters] | None
    at: float


def build_observation(
    *,
    xenstore: Mapping[str, bytes | None] | None = None,
    console: ConsoleParse | None = None,
    first: Sample | None = None,
    second: Sample | None = None,
    quota: QuotaSnapshot | None = None,
    holders: Sequence[DeviceHolder] | None = None,
    local_domid: int | None = None,
    unavailable: Mapping[str, str] | None = None,
    missing: str = "",
    grant_sizes: Sequence[GrantFrames] | None = None,
    gone_domids: frozenset[int] | None = None,
    leftovers: Sequence[XsLeftover] | None = None,
    interrupts_from: Sample | None = None,
) -> Observation:
    """An Observation of the parts given (see the module doc).

    ``first``/``second`` are the two samples of the rate sources (the interval is the time
    between them; either may be missing: one sample gives levels, not rates).  A ``quota``
    without usage counts as absent.  ``grant_sizes`` stand in for a missing ``g`` dump.
    ``unavailable`` says why parts could not be read; with ``missing`` every absent part
    that has no reason yet gets that one.  ``interrupts_from``, an earlier sample of the
    interrupts than ``first`` (what the host polled before), stands in for ``first``'s: IRQ
    rates are then judged over the longer window.
    """
    why = dict(unavailable or {})
    if quota is not None and not quota.usage:
        why.setdefault("quota", "; ".join(quota.unavailable) or "no domain to ask about")
        quota = None
    interval = second.at - first.at if first is not None and second is not None else 0.0
    irq_first, irq_interval = first, 0.0  # 0: the interrupts share the counters' interval
    if (interrupts_from is not None and interrupts_from.interrupts is not None
            and second is not None and first is not None and interrupts_from.at < first.at):
        irq_first, irq_interval = interrupts_from, second.at - interrupts_from.at
    if missing:
        present = {
            "xenstore": xenstore is not None,
            "grant dump": console is not None,
            "interrupts": first is not None and first.interrupts is not None,
            "xenbus counters": first is not None and first.counters is not None,
            "quota": quota is not None,
        }
        for part in PARTS:
            if not present[part]:
                why.setdefault(part, missing)
    return Observation(
        xenstore=xenstore,
        console=console,
        interrupts_before=irq_first.interrupts if irq_first is not None else None,
        interrupts_after=second.interrupts if second is not None else None,
        counters_before=tuple(first.counters) if first and first.counters is not None else None,
        counters_after=tuple(second.counters) if second and second.counters is not None
        else None,
        interval=interval,
        interrupts_interval=irq_interval,
        quota=quota,
        holders=tuple(holders) if holders is not None else None,
        local_domid=local_domid,
        unavailable=why,
        grant_sizes=tuple(grant_sizes) if grant_sizes is not None else None,
        gone_domids=gone_domids,
        leftovers=tuple(leftovers) if leftovers is not None else None,
    )


# -- the live host -----------------------------------------------------------------------------
def local_domid(store: Any) -> int | None:
    """This domain's id: 0 for the control domain, else XenStore's relative ``domid``."""
    if _host.is_dom0():
        return 0
    if store is not None:
        try:
            raw = store.read_or_none("domid")
        except GrantscopeError:
            raw = None
        if raw is not None and raw.strip().isdigit():
            return int(raw.strip())
    return None


def _read_xenstore(unavailable: dict[str, str]) -> tuple[Any, dict[str, bytes | None] | None]:
    from grantscope.xen.xenstore import XenStore

    try:
        store = XenStore.open()
    except GrantscopeError as err:
        unavailable["xenstore"] = err.message
        return None, None
    # A domU may not read the whole tree: fall back to what it can see, its own home last.
    roots = ["/", "/local/domain"]
    try:
        own = store.read_or_none("domid")  # relative: resolves under this domain's home
    except GrantscopeError:
        own = None
    if own is not None and own.strip().isdigit():
        roots.append(f"/local/domain/{int(own.strip())}")
    for root in roots:
        try:
            nodes = store.walk(root)
        except GrantscopeError as err:
            unavailable["xenstore"] = f"walk of {root} failed: {err.message}"
            continue
        unavailable.pop("xenstore", None)
        snapshot = {n.path: n.value for n in nodes}
        if root != "/":
            _add_backends(store, snapshot, unavailable)
        return store, snapshot
    return store, None


def _add_backends(store: Any, snapshot: dict[str, bytes | None],
                  unavailable: dict[str, str]) -> None:
    """Walk the backend directory each frontend in ``snapshot`` names, when it is outside.

    A domU cannot list dom0's tree, but the toolstack lets a frontend's domain read its
    backend's directory; without it a domU's report would call every backend absent.
    """
    for path, value in list(snapshot.items()):
        if not path.endswith("/backend") or "/device/" not in path or not value:
            continue
        backend = value.decode("utf-8", "replace")
        if not backend.startswith("/") or backend in snapshot:
            continue
        try:
            snapshot.update((n.path, n.value) for n in store.walk(backend))
        except GrantscopeError as err:
            unavailable[f"xenstore {backend}"] = f"walk failed: {err.message}"


#: How many times :func:`collect_observation` calls its ``step`` callback (for a progress bar).
COLLECT_STEPS = 6


def xenstore_leftovers(unavailable: dict[str, str]) -> tuple[XsLeftover, ...]:
    """The journals of grantscope processes that ended without removing their nodes
    (:mod:`grantscope.xen.xs_journal`); a journal that cannot be read is noted in
    ``unavailable``."""
    from grantscope.sources.xs_journals import dead_journals

    entries, problems = dead_journals()
    if problems:
        unavailable["xenstore journals"] = "; ".join(problems)
    return tuple(XsLeftover(e.file, e.pid, e.nodes + e.dirs) for e in entries)


def gone_domains(store: Any, snapshot: Mapping[str, bytes | None] | None,
                 local: int | None) -> frozenset[int] | None:
    """Domains with a home in ``snapshot`` that xenstored says are not introduced: Xen
    destroyed them and nobody removed what they left.  None when it cannot be asked (a domU,
    which may not ask; an older xenstored)."""
    if snapshot is None or local not in (0, None):
        return None
    homes = {int(m.group(1)) for p in snapshot for m in [_HOME_PATH.match(p)] if m}
    try:
        live = store.introduced(sorted(homes - {0}))
    except GrantscopeError:
        return None
    return frozenset(d for d, yes in live.items() if not yes)


def collect_observation(
    *, interval: float = 2.0, dumps: bool = True, capture: bool = False,
    step: Callable[[str], None] | None = None, earlier: Sample | None = None,
) -> tuple[Observation, dict[str, Any], Any]:
    """Read everything ``report`` needs from this host (see :mod:`grantscope.cli.report`).

    ``dumps`` reads the g/e dumps from the console ring; ``capture`` sends ``g`` and ``e``
    first (refused under ``--readonly``), otherwise the ring is read as it is.

    Returns the :class:`Observation`, extra JSON members (host, quota, lsevtchn, raw
    interrupt rows, device holders, what was unavailable) and the dump capture (or None).
    Never raises for a source that cannot be read: it is listed in ``unavailable``.
    ``step`` is called with the name of each of the :data:`COLLECT_STEPS` parts as it starts.
    ``earlier``: this host's interrupts as polled before (the TUI's Events view); IRQ rates
    are then judged from it to now, not over ``interval`` alone.
    """
    def starting(name: str) -> None:
        if step is not None:
            step(name)

    from grantscope.sources.hvdump import capture_dumps, read_ring
    from grantscope.sources.lsevtchn import read_lsevtchn
    from grantscope.sources.procfs import (
        read_hypervisor,
        read_interrupts,
        read_xenbus_counters,
        xen_device_holders,
    )
    from grantscope.sources.quota import read_quota

    unavailable: dict[str, str] = {}
    starting("XenStore")
    store, snapshot = _read_xenstore(unavailable)
    local = local_domid(store)
    gone = gone_domains(store, snapshot, local) if store is not None else None
    leftovers = xenstore_leftovers(unavailable)
    if store is not None:
        store.close()

    def sample() -> Sample:
        got = read_interrupts()
        if isinstance(got, str):
            unavailable["interrupts"] = got
            return Sample(None, read_xenbus_counters(), time.monotonic())
        return Sample(got, read_xenbus_counters(), time.monotonic())

    # The counters first: sending the debug keys stalls the CPUs while Xen prints the dumps
    # (seconds under emulation, noticeable on big hosts), and interrupts wait meanwhile, so a
    # rate measured across the capture would understate a storm.
    starting(f"two counter samples {interval:g} s apart")
    first = sample()
    time.sleep(interval)
    second = sample()

    console: ConsoleParse | None = None
    cap = None
    starting("capturing the g and e dumps" if capture else "the console ring's dumps")
    if not dumps:
        unavailable["grant dump"] = unavailable["event dump"] = "skipped (--no-dumps)"
    else:
        cap = capture_dumps("ge") if capture else read_ring()
        console = cap.parse
        if cap.unavailable:
            unavailable["grant dump"] = unavailable["event dump"] = cap.unavailable
        elif not capture:
            for key, what, got in (("g", "grant dump", console and console.grants),
                                   ("e", "event dump", console and console.events)):
                if got is None:
                    unavailable[what] = (f"the console ring holds no '{key}' dump and none was "
                                         "captured (--capture sends 'g' and 'e')")

    domids = sorted(
        {
            int(m.group(1))
            for p in (snapshot or {})
            for m in [_HOME_PATH.match(p)]
            if m
        }
    )
    if not domids and local is not None:
        domids = [local]
    starting("XenStore quota")
    quota = read_quota(domids)
    starting("device holders")
    holders = xen_device_holders()
    starting("lsevtchn")
    ports, ls_why = read_lsevtchn(local) if local is not None else ((), "local domid unknown")
    if ls_why:
        unavailable["lsevtchn"] = ls_why
    obs = build_observation(xenstore=snapshot, console=console, first=first, second=second,
                            quota=quota, holders=holders, local_domid=local,
                            unavailable=unavailable, gone_domids=gone, leftovers=leftovers,
                            interrupts_from=earlier)
    unavailable = dict(obs.unavailable)
    extra: dict[str, Any] = {
        "host": {"local_domid": local, "hypervisor": read_hypervisor(), "pid": os.getpid()},
        "capture": cap.to_json() if cap is not None else None,
        # The console ring as it was before any key (read only: it is still in the ring).
        "earlier_console": cap.earlier_console if cap is not None else None,
        "quota": quota.to_json(),
        "lsevtchn": [p.to_json() for p in ports],
        "interrupts": second.interrupts.to_json() if second.interrupts is not None else None,
        "holders": [h.to_json() for h in holders],
        "unavailable": unavailable,
    }
    return obs, extra, cap
