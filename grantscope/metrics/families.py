"""The Prometheus metric families of one :class:`~grantscope.metrics.reading.Reading` (pure).

Conventions: used and limit are separate gauges (never a percentage), counters end in
``_total``, sizes are in bytes, labels stay few (``domain`` and ``domid``; per-device and
per-IRQ series only with ``per_device``).  Under ``--demo`` every series carries
``simulated="1"``.  docs/METRICS.md lists every series with its source and cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from grantscope.metrics.reading import Reading
from grantscope.model.devices_join import DeviceRow, state_name
from grantscope.model.findings import Finding

__all__ = ["PAGE_SIZE", "families", "finding_subject"]

PAGE_SIZE = 4096  # bytes per mapped gntdev/gntalloc page (x86)
_CONNECTED = 4


class _Builder:
    """Makes families, adding ``simulated="1"`` to every series of a simulated reading."""

    def __init__(self, simulated: bool) -> None:
        self.simulated = simulated
        self.out: list[Metric] = []

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> _Family:
        fam = GaugeMetricFamily(name, doc, labels=[*labels, *self._extra()])
        self.out.append(fam)
        return _Family(fam, self.simulated)

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> _Family:
        fam = CounterMetricFamily(name, doc, labels=[*labels, *self._extra()])
        self.out.append(fam)
        return _Family(fam, self.simulated)

    def _extra(self) -> list[str]:
        return ["simulated"] if self.simulated else []


class _Family:
    def __init__(self, fam: GaugeMetricFamily | CounterMetricFamily, simulated: bool) -> None:
        self.fam, self.simulated = fam, simulated

    def add(self, labels: Sequence[Any], value: float) -> None:
        values = [str(v) for v in labels] + (["1"] if self.simulated else [])
        self.fam.add_metric(values, value)


def finding_subject(f: Finding) -> str:
    """A short, stable label for what a finding is about: ``d5``, ``d5 nodes``, a device name
    or a XenStore path."""
    s = f.subject
    if f.code == "device-state" and "device" in s:
        return str(s["device"])
    if f.code == "stale-backend" and "path" in s:
        return str(s["path"])
    if "domid" in s:
        return f"d{s['domid']}" + (f" {s['quota']}" if "quota" in s else "")
    return ",".join(f"{k}={v}" for k, v in sorted(s.items()) if v is not None)


def _device_state(d: DeviceRow) -> str:
    states = (d.frontend_state, d.backend_state)
    bad = [s for s in states if s != _CONNECTED]
    return state_name(_CONNECTED) if not bad else state_name(bad[0])


def _peer(d: DeviceRow, local: int | None) -> int | None:
    """The domain at the other end of ``d`` from this one (the one whose events arrive)."""
    return d.backend_domid if local is not None and local == d.frontend_domid else \
        d.frontend_domid


def _used_and_max(b: _Builder, dom: Any, name: str, used_doc: str, max_doc: str,
                  rows: Sequence[tuple[int, int, int]]) -> None:
    """Two gauges per domain, ``NAME`` (in use) and ``NAME_max`` (the limit): Prometheus'
    convention of used and max apart, never a percentage."""
    used = b.gauge(name, used_doc, ["domain", "domid"])
    top = b.gauge(f"{name}_max", max_doc, ["domain", "domid"])
    for domid, in_use, limit in rows:
        used.add(dom(domid), in_use)
        top.add(dom(domid), limit)


def families(r: Reading, *, per_device: bool = False) -> list[Metric]:
    """Every family for ``r``; a source that is down contributes only its ``source_up`` 0."""
    b = _Builder(r.simulated)

    def dom(domid: int | None) -> tuple[str, str]:
        if domid is None:
            return "", ""
        return r.domains.get(domid, ""), str(domid)

    up = b.gauge("grantscope_source_up",
                 "1 when the source could be read in this scrape, 0 when not", ["source"])
    took = b.gauge("grantscope_source_duration_seconds",
                   "Seconds spent reading the source in this scrape", ["source"])
    for s in r.sources:
        up.add([s.name], 1.0 if s.up else 0.0)
        took.add([s.name], round(s.seconds, 6))

    if r.grant_sizes is not None:
        _used_and_max(b, dom, "grantscope_grant_frames",
                      "Grant-table frames the domain uses (GNTTABOP_query_size)",
                      "Most grant-table frames the domain may use (GNTTABOP_query_size)",
                      [(g.domid, g.frames, g.max_frames) for g in r.grant_sizes])

    if r.maptrack is not None:
        _used_and_max(b, dom, "grantscope_maptrack_frames",
                      "Maptrack frames the domain uses (from a 'g' dump, --maptrack-every)",
                      "Most maptrack frames the domain may use (from a 'g' dump)",
                      [(m.domid, m.frames, m.max_frames) for m in r.maptrack.uses])
        age = b.gauge("grantscope_maptrack_age_seconds",
                      "Seconds since the 'g' dump the maptrack series come from", [])
        age.add([], round(r.maptrack.age, 3))

    if r.quota is not None:
        q_used = b.gauge("grantscope_xenstore_quota_used",
                         "The domain's XenStore usage per quota (memory in bytes)",
                         ["domain", "domid", "quota"])
        q_lim = b.gauge("grantscope_xenstore_quota_limit",
                        "xenstored's per-domain XenStore quota (memory in bytes)", ["quota"])
        for u in r.quota.usage:
            for name, value in sorted(u.usage.items()):
                q_used.add([*dom(u.domid), name], value)
        for name, value in sorted(r.quota.limits.items()):
            q_lim.add([name], value)

    if r.devices is not None:
        _device_families(b, r, dom, per_device)
    if r.counters is not None:
        _counter_families(b, r, dom, per_device)
    if r.interrupts is not None:
        _interrupt_families(b, r, per_device)
    if r.holders is not None:
        _holder_families(b, r)

    fnd = b.gauge("grantscope_finding",
                  "1 for each finding grantscope report would show from these sources",
                  ["code", "severity", "subject"])
    for f in r.findings:
        fnd.add([f.code, f.severity, finding_subject(f)], 1.0)
    return b.out


def _device_families(b: _Builder, r: Reading, dom: Any, per_device: bool) -> None:
    assert r.devices is not None
    count = b.gauge("grantscope_xenbus_devices",
                    "PV devices by frontend domain and state (Connected when both ends are; "
                    "else the state of the first end that is not)", ["domain", "domid", "state"])
    tally: dict[tuple[int, str], int] = {}
    for d in r.devices:
        if d.primary_console:
            continue  # served by xenconsoled, not a xenbus handshake: its state means nothing
        key = (d.frontend_domid, _device_state(d))
        tally[key] = tally.get(key, 0) + 1
    for (domid, state), n in sorted(tally.items()):
        count.add([*dom(domid), state], n)
    if not per_device:
        return
    st = b.gauge("grantscope_xenbus_device_state",
                 "XenbusState of one end of a PV device (4 = Connected; -1 = absent)",
                 ["domain", "domid", "kind", "devid", "end"])
    for d in r.devices:
        if d.primary_console:
            continue
        for end, value in (("frontend", d.frontend_state), ("backend", d.backend_state)):
            st.add([*dom(d.frontend_domid), d.kind, d.devid, end],
                   -1 if value is None else value)


def _counter_families(b: _Builder, r: Reading, dom: Any, per_device: bool) -> None:
    assert r.counters is not None
    owner: dict[str, int | None] = {}
    for d in r.devices or ():
        for c in d.counters:
            owner[c.device] = _peer(d, r.local_domid)
    labels = ["domain", "domid", *(["device"] if per_device else [])]
    names = (
        ("events", "grantscope_xenbus_events", "Events the kernel received for xenbus devices "
         "(sysfs xenbus/events), by the domain at the other end"),
        ("spurious_events", "grantscope_xenbus_spurious_events",
         "Events that found no work (sysfs xenbus/spurious_events), by the domain at the "
         "other end"),
        ("jiffies_eoi_delayed", "grantscope_xenbus_eoi_delayed_jiffies",
         "Kernel jiffies the EOI was delayed for spurious events (sysfs "
         "xenbus/jiffies_eoi_delayed), by the domain at the other end"),
    )
    for attr, name, doc in names:
        fam = b.counter(name, doc, labels)
        sums: dict[tuple[str, ...], int] = {}
        for c in r.counters:
            value = getattr(c, attr)
            if value is None:
                continue
            key = (*dom(owner.get(c.device)), *([c.device] if per_device else []))
            sums[key] = sums.get(key, 0) + value
        for key, value in sorted(sums.items()):
            fam.add(key, value)


def _interrupt_families(b: _Builder, r: Reading, per_device: bool) -> None:
    assert r.interrupts is not None
    fam = b.counter("grantscope_xen_interrupts",
                    "Xen interrupts handled by this domain's kernel (/proc/interrupts), by chip",
                    ["chip"])
    sums: dict[str, int] = {}
    for row in r.interrupts.rows:
        sums[row.chip] = sums.get(row.chip, 0) + row.total
    for chip, n in sorted(sums.items()):
        fam.add([chip], n)
    if per_device:
        irq = b.counter("grantscope_xen_irq_interrupts",
                        "One Xen IRQ's count (/proc/interrupts, summed over CPUs)",
                        ["irq", "chip", "action"])
        for row in r.interrupts.rows:
            irq.add([row.irq, row.chip, row.action], row.total)


def _holder_families(b: _Builder, r: Reading) -> None:
    assert r.holders is not None
    procs = b.gauge("grantscope_xen_device_processes",
                    "Processes holding the /dev/xen device open", ["device"])
    fds = b.gauge("grantscope_xen_device_open_fds",
                  "Open file descriptors on the /dev/xen device, by process name",
                  ["device", "comm"])
    mapped = b.gauge("grantscope_xen_device_mapped_bytes",
                     "Bytes of the /dev/xen device mapped into processes, by process name",
                     ["device", "comm"])
    nproc: dict[str, int] = {}
    nfd: dict[tuple[str, str], int] = {}
    nbytes: dict[tuple[str, str], int] = {}
    for h in r.holders:
        dev = h.device.rsplit("/", 1)[-1]
        nproc[dev] = nproc.get(dev, 0) + 1
        nfd[(dev, h.comm)] = nfd.get((dev, h.comm), 0) + h.fds
        if h.mapped_pages is not None:
            nbytes[(dev, h.comm)] = nbytes.get((dev, h.comm), 0) + h.mapped_pages * PAGE_SIZE
    for dev in ("gntdev", "gntalloc", "evtchn"):
        procs.add([dev], nproc.get(dev, 0))
    for key, n in sorted(nfd.items()):
        fds.add(key, n)
    for key, n in sorted(nbytes.items()):
        mapped.add(key, n)

