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
import re
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
_DEVICE_DIR = re.compile(r"^/local/domain/(\d+)/(?:device/([^/]+)/([^/]+)"
                         r"|backend/([^/]+)/(\d+)/([^/]+))$")


def _directories_at(store: Any, roots: list[str], depth: int) -> list[str]:
    """The directories ``depth`` levels below ``roots`` (one pipelined DIRECTORY per level)."""
    level = roots
    for _ in range(depth):
        listed = store.list_many(level)
        level = [f"{path}/{child}" for path, children in listed.items() for child in children]
    return level


def _device_id(path: str) -> tuple[str, int, str] | None:
    """``(kind, frontend domid, devid)`` of a frontend or backend device directory (None for
    a directory that is not one, such as ``backend/vif/notanumber/0``)."""
    m = _DEVICE_DIR.match(path)
    if m is None:
        return None
    if m.group(2) is not None:
        return m.group(2), int(m.group(1)), m.group(3)
    return m.group(4), int(m.group(5)), m.group(6)


def read_domains_xenstore(store: Any) -> tuple[dict[int, str], dict[str, bytes | None]]:
    """Domain names and a partial snapshot: each home, its ``name`` and its devices' ends.

    The snapshot holds what :func:`~grantscope.model.devices_join.join_devices` and the
    stale-backend check need, and nothing more: every frontend ``device/KIND/ID`` and backend
    ``backend/KIND/FE/ID`` directory with its ``state``; a frontend's ``backend`` and
    ``backend-id`` only when no backend directory answers for it, a backend's ``frontend``
    only when no frontend does (the join reads them only then).  A device's other keys (a vif
    backend has about twenty) are never read: a scrape's cost grows with devices, not keys.
    Each level is one pipeline for the whole host (a dom0 under emulation answers each request
    in milliseconds).  Grant-ref and port keys are not read, so their checks are ``report``'s.
    """
    domids = sorted(int(c) for c in store.list("/local/domain") if c.isdigit())
    homes = {d: f"/local/domain/{d}" for d in domids}
    fronts = _directories_at(store, [f"{h}/device" for h in homes.values()], 2)
    backs = _directories_at(store, [f"{h}/backend" for h in homes.values()], 3)
    values = store.read_many([f"{h}/name" for h in homes.values()]
                             + [f"{d}/state" for d in (*fronts, *backs)])
    front_ids, back_ids = {_device_id(d) for d in fronts}, {_device_id(d) for d in backs}
    one_ended = ([f"{d}/{k}" for d in fronts if _device_id(d) not in back_ids
                  for k in ("backend", "backend-id")]
                 + [f"{d}/frontend" for d in backs if _device_id(d) not in front_ids])
    if one_ended:
        values.update(store.read_many(one_ended))
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

    def xenstore() -> tuple[dict[int, str], dict[str, bytes | None], int | None,
                            frozenset[int] | None]:
        with XenStore.open() as store:
            domains, snapshot = read_domains_xenstore(store)
            local = local_domid(store)
            return domains, snapshot, local, gone_domains(store, snapshot, local)

    xs = _timed("xenstore", statuses, xenstore, lambda _got: "")
    domains, snapshot, local, gone = xs if xs is not None else ({}, None, local_domid(None), None)
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
