"""One scrape of the real host: cheap, side-effect-free sources only.

Read, in order, all in this process: XenStore (the domain list, each domain's name, and only
the few keys of each device's two ends, pipelined: never the whole tree), grant frames
per domain (``GNTTABOP_query_size`` through privcmd), XenStore quota per domain (CONTROL
``quota`` over a XenStore connection), the xenbus sysfs counters, the Xen rows of
``/proc/interrupts`` and the processes holding gntdev, gntalloc or evtchn.  No debug key is
sent and the console ring is not read, unless the user opted in to maptrack sizes
(grantscope.metrics.maptrack: a ``g`` dump at most every 300 s).
A source that fails is marked down with the reason; the others are still reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from grantscope.errors import GrantscopeError
from grantscope.metrics.maptrack import MaptrackReader
from grantscope.metrics.reading import Reading, SourceStatus, reading_from
from grantscope.model.interrupts import InterruptsParse
from grantscope.sources.observation import Sample, build_observation

__all__ = ["collect_reading", "read_domains_xenstore"]

T = TypeVar("T")
log = logging.getLogger(__name__)
# The keys the device join and the findings a scrape supports read on each end of a device.
_FRONTEND_KEYS = ("backend", "backend-id", "state")
_BACKEND_KEYS = ("frontend", "state")


def _directories_at(store: Any, roots: list[str], depth: int) -> list[str]:
    """The directories ``depth`` levels below ``roots`` (one pipelined DIRECTORY per level)."""
    level = roots
    for _ in range(depth):
        listed = store.list_many(level)
        level = [f"{path}/{child}" for path, children in listed.items() for child in children]
    return level


def read_domains_xenstore(store: Any) -> tuple[dict[int, str], dict[str, bytes | None]]:
    """Domain names and a partial snapshot: each home, its ``name`` and its devices' ends.

    The snapshot holds what :func:`~grantscope.model.devices_join.join_devices` and the
    stale-backend check need, and nothing more: every frontend ``device/KIND/ID`` with its
    ``backend``, ``backend-id`` and ``state``, every backend ``backend/KIND/FE/ID`` with its
    ``frontend`` and ``state``.  A device's other keys (a vif backend has about twenty) are
    never read: a scrape's cost grows with devices, not with keys.  Each level is one
    pipeline for the whole host (a dom0 under emulation answers each request in milliseconds).
    Grant-ref and port keys are not read, so the checks on their values are ``report``'s.
    """
    domids = sorted(int(c) for c in store.list("/local/domain") if c.isdigit())
    homes = {d: f"/local/domain/{d}" for d in domids}
    fronts = _directories_at(store, [f"{h}/device" for h in homes.values()], 2)
    backs = _directories_at(store, [f"{h}/backend" for h in homes.values()], 3)
    values = store.read_many(
        [f"{h}/name" for h in homes.values()]
        + [f"{d}/{k}" for d in fronts for k in _FRONTEND_KEYS]
        + [f"{d}/{k}" for d in backs for k in _BACKEND_KEYS])
    snapshot: dict[str, bytes | None] = {"/local/domain": None}
    snapshot.update((home, None) for home in homes.values())
    snapshot.update((d, None) for d in (*fronts, *backs))  # directories: value not read
    snapshot.update((path, v) for path, v in values.items() if v is not None)
    domains: dict[int, str] = {}
    for domid, home in homes.items():
        raw = values.get(f"{home}/name")
        domains[domid] = raw.decode("utf-8", "replace") if raw is not None else ""
    return domains, snapshot


def _timed(name: str, statuses: list[SourceStatus], read: Callable[[], T],
           why_down: Callable[[T], str]) -> T | None:
    """Run ``read``; record ``name`` up, or down with the reason (never raises: one source
    failing, even by a bug, must not cost the scrape every other source)."""
    start = time.monotonic()
    try:
        got = read()
    except GrantscopeError as err:
        statuses.append(SourceStatus(name, False, time.monotonic() - start, err.message))
        return None
    except Exception as err:
        log.warning("metrics: reading %s failed: %s: %s (-vv shows where)", name,
                    type(err).__name__, err)
        log.debug("metrics: reading %s failed", name, exc_info=True)
        statuses.append(SourceStatus(name, False, time.monotonic() - start,
                                     f"{type(err).__name__}: {err}"))
        return None
    why = why_down(got)
    statuses.append(SourceStatus(name, not why, time.monotonic() - start, why))
    return None if why else got


def collect_reading(maptrack: MaptrackReader | None = None) -> Reading:
    """Read every source once (see the module doc) and analyze it; with ``maptrack``, also
    the maptrack sizes it keeps (a ``g`` capture at most once per its interval)."""
    from grantscope.sources.gnttab_size import read_grant_frames
    from grantscope.sources.observation import gone_domains, local_domid
    from grantscope.sources.procfs import (
        read_interrupts,
        read_xenbus_counters,
        xen_device_holders,
    )
    from grantscope.sources.quota import read_quota
    from grantscope.xen.xenstore import XenStore

    statuses: list[SourceStatus] = []
    store_holder: list[Any] = []

    def xenstore() -> tuple[dict[int, str], dict[str, bytes | None]]:
        store = XenStore.open()
        store_holder.append(store)
        return read_domains_xenstore(store)

    xs = _timed("xenstore", statuses, xenstore, lambda _got: "")
    local = local_domid(store_holder[0] if store_holder else None)
    domains, snapshot = xs if xs is not None else ({}, None)
    gone = gone_domains(store_holder[0], snapshot, local) if store_holder else None
    for store in store_holder:
        store.close()
    domids = sorted(domains) or ([local] if local is not None else [])

    sizes_read = _timed("grant_frames", statuses, lambda: read_grant_frames(domids),
                        lambda got: "" if got[0] else
                        ("; ".join(got[1]) or "no domain to ask about"))
    quota = _timed("xenstore_quota", statuses, lambda: read_quota(domids),
                   lambda got: "" if got.usage else
                   ("; ".join(got.unavailable) or "no domain to ask about"))
    counters = _timed("xenbus_counters", statuses, read_xenbus_counters, lambda _got: "")

    def irq_why(got: InterruptsParse | str) -> str:
        return got if isinstance(got, str) else ""

    irq = _timed("interrupts", statuses, read_interrupts, irq_why)
    holders = _timed("device_holders", statuses, xen_device_holders, lambda _got: "")
    mt = _timed("maptrack", statuses, maptrack.read, lambda _got: "") if maptrack else None

    unavailable = {s.name: s.why for s in statuses if not s.up}
    obs = build_observation(  # one sample: levels, no rates
        xenstore=snapshot,
        second=Sample(None if isinstance(irq, str) else irq, counters, time.monotonic()),
        quota=quota,
        holders=holders,
        local_domid=local,
        unavailable=unavailable,
        grant_sizes=sizes_read[0] if sizes_read is not None else None,
        gone_domids=gone,
    )
    return reading_from(obs, domains, tuple(statuses), maptrack=mt)
