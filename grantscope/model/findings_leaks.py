"""The grant-leak check of :func:`grantscope.model.findings.analyze`: mapped grants that no
XenStore key and no live PV device account for (``grant-unowned``, ``grant-orphaned``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from grantscope.model.devices_join import DeviceRow, decimal_value
from grantscope.model.dumps import GrantEntry
from grantscope.model.observation import Finding, Observation
from grantscope.model.runs import ref_ranges

#: Grant refs 0..7 are reserved (0 console, 1 XenStore); they are always mapped by dom0.
RESERVED_REFS = 8


def _xenstore_ref_keys(store: Mapping[str, bytes | None]) -> dict[tuple[int, int], list[str]]:
    """``(domid, ref) -> [paths]`` for every key under a domain's home that names a grant."""
    out: dict[tuple[int, int], list[str]] = {}
    for path, value in store.items():
        if not path.startswith("/local/domain/"):
            continue
        leaf = path.rsplit("/", 1)[-1]
        if "ref" not in leaf:
            continue
        num = decimal_value(value)
        m = re.match(r"^/local/domain/(\d+)/", path)
        if num is not None and m:
            out.setdefault((int(m.group(1)), num), []).append(path)
    return out


def leaks(obs: Observation, devices: tuple[DeviceRow, ...]) -> list[Finding]:
    dump = obs.console.grants if obs.console else None
    if dump is None or obs.xenstore is None:
        return []
    ring_refs = {(g.granter, g.ref) for d in devices for g in d.grants}
    # A live device lets its backend map the frontend's data grants (blkback persistent
    # grants, netback slots), which appear in no XenStore key.
    device_pairs = {
        (d.frontend_domid, d.backend_domid)
        for d in devices
        if d.frontend_state is not None and d.backend_state is not None
    }
    ref_keys = _xenstore_ref_keys(obs.xenstore)
    gntalloc_held = (
        None
        if obs.holders is None
        else any(h.device.endswith("gntalloc") for h in obs.holders)
    )
    # Grants no key names are reported per (granter, mapper, orphaned) group: one program
    # mapping 200 pages is one problem, not 200 (seen in the lab: a guest holding 200 dom0
    # pages made 200 findings).  A grant XenStore still names keeps a finding of its own,
    # since its keys are the evidence.
    singles: list[tuple[GrantEntry, list[str], bool]] = []
    groups: dict[tuple[int, int, bool], list[GrantEntry]] = {}
    for e in dump.entries():
        if e.ref < RESERVED_REFS or (e.granter, e.ref) in ring_refs:
            continue
        if (e.granter, e.mapper) in device_pairs:
            continue
        keys = ref_keys.get((e.granter, e.ref), [])
        local_grant = obs.local_domid is not None and e.granter == obs.local_domid
        orphaned = local_grant and gntalloc_held is False
        if keys and not orphaned:
            continue
        if keys:
            singles.append((e, keys, orphaned))
        else:
            groups.setdefault((e.granter, e.mapper, orphaned), []).append(e)
    out = [_leak_finding(obs, [e], keys, orphaned) for e, keys, orphaned in singles]
    out += [_leak_finding(obs, entries, [], orphaned)
            for (_g, _m, orphaned), entries in groups.items()]
    return out


def _leak_finding(obs: Observation, entries: list[GrantEntry], keys: list[str],
                  orphaned: bool) -> Finding:
    """One grant-unowned/grant-orphaned finding for ``entries`` (same granter and mapper)."""
    e = entries[0]
    refs = [x.ref for x in entries]
    many = len(entries) > 1
    if many:
        what = f"{len(entries)} grants of d{e.granter} (refs {ref_ranges(refs)})"
        evidence = [
            f"'g' dump: d{e.granter} refs {ref_ranges(refs)} ({len(entries)} grants) mapped "
            f"by d{e.mapper}; the first, ref {e.ref} (0x{e.ref:x}): pin 0x{e.pin:08x}, "
            f"flags 0x{e.flags:02x}",
            f"no XenStore key under /local/domain/{e.granter} names any of them",
        ]
    else:
        what = f"grant d{e.granter}:{e.ref}"
        evidence = [
            f"'g' dump: d{e.granter} ref {e.ref} (0x{e.ref:x}) mapped by d{e.mapper}, "
            f"pin 0x{e.pin:08x}, flags 0x{e.flags:02x}",
        ]
        if keys:
            evidence.append("XenStore still names it at " + ", ".join(keys) + " (stale?)")
        else:
            evidence.append(f"no XenStore key under /local/domain/{e.granter} names ref {e.ref}")
    if not keys:
        evidence.append(f"no PV device has frontend d{e.granter} and backend d{e.mapper}")
    evidence.append(_mapper_processes(obs, e))
    if orphaned:
        evidence.append(
            f"this is d{e.granter}, and no process here holds /dev/xen/gntalloc open: the "
            "offering process is gone, the kernel keeps the grant until the peer unmaps"
        )
    them, pages = ("them", "pages") if many else ("it", "page")
    subject: dict[str, Any] = {"granter": e.granter}
    if not many:
        subject["ref"] = e.ref
    subject.update(mapper=e.mapper, refs=refs)
    return Finding(
        code="grant-orphaned" if orphaned else "grant-unowned",
        severity="error" if orphaned else "warning",
        title=(
            f"{what} {'are' if many else 'is'} still mapped by d{e.mapper}"
            + (f" after {'their' if many else 'its'} offering process ended" if orphaned
               else " with no XenStore owner (possible leak)")
        ),
        evidence=tuple(evidence),
        action=(
            f"Find the program in d{e.mapper} that mapped {them} and make it unmap (or stop "
            f"it); the {pages} of d{e.granter} cannot be freed before that. If the peer is "
            "a vchan or PV device, check that its cleanup on disconnect runs."
        ),
        subject=subject,
    )


def _mapper_processes(obs: Observation, e: GrantEntry) -> str:
    if obs.local_domid is None or e.mapper != obs.local_domid:
        return (
            f"mapping process: inside d{e.mapper}; its processes are not visible from "
            + (f"d{obs.local_domid}" if obs.local_domid is not None else "a pasted dump")
        )
    if obs.holders is None:
        return "mapping process: unknown (processes holding /dev/xen/gntdev were not read)"
    maps = [h for h in obs.holders if h.device.endswith("gntdev")]
    # A process with pages mapped from gntdev is the likely mapper; list only those if any.
    busy = [h for h in maps if h.mapped_pages]
    maps = busy or maps
    if not maps:
        return (
            f"mapping process: none in d{e.mapper} holds /dev/xen/gntdev (a kernel driver "
            "maps it)"
        )
    return "mapping process (holds /dev/xen/gntdev): " + ", ".join(
        f"pid {h.pid} ({h.comm}, {h.mapped_pages if h.mapped_pages is not None else '?'} "
        "pages mapped)"
        for h in maps
    )
