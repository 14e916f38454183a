"""What one scrape read: the sources' data, how each source fared, and the findings.

A :class:`Reading` is built from the :class:`~grantscope.model.findings.Observation` that
``grantscope report`` also analyzes, so findings and the device join come from the one
implementation in :mod:`grantscope.model.findings`.  Only the findings whose inputs a scrape
reads are kept (:data:`SUPPORTED_FINDINGS`): the rate checks need two samples (Prometheus
computes rates from the counters instead), and leak checks need the ``g`` dump, which a
scrape never asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from grantscope._compat import slotted_dataclass
from grantscope.metrics.maptrack import MaptrackReading
from grantscope.model.devices_join import DeviceRow
from grantscope.model.findings import Finding, Observation, analyze
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import InterruptsParse, XenbusCounters
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot

__all__ = ["SOURCES", "SUPPORTED_FINDINGS", "Reading", "SourceStatus", "reading_from"]

#: Every source a scrape reads, in the order they are read (``grantscope_source_up``); with
#: ``--maptrack-every``, ``maptrack`` comes last.
SOURCES: tuple[str, ...] = (
    "xenstore", "grant_frames", "xenstore_quota", "xenbus_counters", "interrupts",
    "device_holders",
)
#: Findings a scrape can support: their inputs are all among :data:`SOURCES`.
SUPPORTED_FINDINGS: frozenset[str] = frozenset(
    {"grant-frames", "xenstore-quota", "stale-backend", "device-state"}
)


@slotted_dataclass(frozen=True)
class SourceStatus:
    """How reading one source went: ``up`` or not (``why``), and how long it took."""

    name: str
    up: bool
    seconds: float
    why: str = ""


@slotted_dataclass(frozen=True)
class Reading:
    """Everything one scrape read (parts are None when their source is down)."""

    domains: Mapping[int, str]
    grant_sizes: tuple[GrantFrames, ...] | None
    quota: QuotaSnapshot | None
    devices: tuple[DeviceRow, ...] | None
    counters: tuple[XenbusCounters, ...] | None
    interrupts: InterruptsParse | None
    holders: tuple[DeviceHolder, ...] | None
    findings: tuple[Finding, ...]
    sources: tuple[SourceStatus, ...]
    simulated: bool = False
    local_domid: int | None = None
    not_checked: tuple[str, ...] = field(default=())
    maptrack: MaptrackReading | None = None  # only with --maptrack-every


def reading_from(obs: Observation, domains: Mapping[int, str],
                 sources: tuple[SourceStatus, ...], *, simulated: bool = False,
                 maptrack: MaptrackReading | None = None) -> Reading:
    """Analyze ``obs`` and keep what the metrics export (see the module doc)."""
    analysis = analyze(obs)
    return Reading(
        domains=dict(domains),
        grant_sizes=obs.grant_sizes,
        quota=obs.quota,
        devices=analysis.devices if obs.xenstore is not None else None,
        counters=obs.counters_after,
        interrupts=obs.interrupts_after,
        holders=obs.holders,
        findings=tuple(f for f in analysis.findings if f.code in SUPPORTED_FINDINGS),
        sources=sources,
        simulated=simulated,
        local_domid=obs.local_domid,
        not_checked=analysis.not_checked,
        maptrack=maptrack,
    )
