"""``bundle diff A B``: what changed between two bundles in XenStore, grants, ports and findings.

Each section compares keyed records: XenStore nodes by path (value and permissions), grants by
(granter, ref, mapper) in the hypervisor table plus our own mappings/offers and the processes
holding the grant devices, ports by (domid, port) in the hypervisor's event-channel dump plus
the Xen rows of /proc/interrupts and our own ports, findings by their identity.  A section
that one bundle lacks (its collector failed) says so instead of reporting everything as new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from grantscope.bundle.format import BundleError, escape_value, malformed, node_from_json
from grantscope.bundle.reader import Bundle
from grantscope.safetext import clean

Keyed = dict[str, Any]


def _keyed_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    added = [{"key": k, "after": b[k]} for k in sorted(b.keys() - a.keys())]
    removed = [{"key": k, "before": a[k]} for k in sorted(a.keys() - b.keys())]
    changed = [
        {"key": k, "before": a[k], "after": b[k]}
        for k in sorted(a.keys() & b.keys())
        if a[k] != b[k]
    ]
    return {"added": added, "removed": removed, "changed": changed}


def _section(
    name: str, a: Bundle, b: Bundle, extract: Callable[[Bundle], Keyed | None]
) -> dict[str, Any]:
    """Diff one section, noting when either side cannot provide it."""
    result: dict[str, Any] = {"section": name}
    sides = []
    for label, bundle in (("a", a), ("b", b)):
        try:
            data = extract(bundle)
        except BundleError as err:
            result[f"{label}_error"] = err.message
            data = None
        else:
            if data is None:
                result[f"{label}_error"] = "not in this bundle (its collector did not succeed)"
        sides.append(data)
    if sides[0] is None or sides[1] is None:
        result.update({"compared": False, "added": [], "removed": [], "changed": []})
        return result
    result["compared"] = True
    result.update(_keyed_diff(sides[0], sides[1]))
    return result


# -- extraction ---------------------------------------------------------------------------------
def xenstore_records(bundle: Bundle) -> Keyed | None:
    """path -> {"value": escaped value or None, "perms": "n0 r1"} for every node."""
    data = bundle.json_or_none("xenstore.json")
    if data is None:
        return None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list):
        raise malformed("xenstore.json", "'nodes' is not a list")
    out: Keyed = {}
    for node in nodes:
        stored = node_from_json(node, "xenstore.json")
        perms = None
        if stored.owner is not None:
            perms = " ".join(
                [f"{stored.default}{stored.owner}"] + [f"{letter}{d}" for d, letter in stored.acl]
            )
        value = None if stored.value is None else escape_value(stored.value)
        out[stored.path] = {"value": value, "perms": perms}
    return out


def _as_list(obj: Any, where: str) -> list[Any]:
    if not isinstance(obj, list):
        raise malformed(where, "expected a list")
    return obj


def _dict(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise malformed(where, "expected an object")
    return obj


def grant_records(bundle: Bundle) -> Keyed | None:
    """Hypervisor grant rows, own mappings/offers and processes holding grant devices."""
    snap = bundle.json_or_none("grants.json")
    out: Keyed = {}
    hv_rows = None
    if snap is not None:
        snap = _dict(snap, "grants.json")
        for own in _as_list(snap.get("own", []), "grants.json own"):
            own = _dict(own, "grants.json own")
            grefs = ",".join(str(g) for g in _as_list(own.get("grefs", []), "grants.json grefs"))
            key = f"own {own.get('kind')} d{own.get('domid')} grefs {grefs} by {own.get('owner')}"
            out[key] = {"writable": own.get("writable")}
        for proc in _as_list(snap.get("processes", []), "grants.json processes"):
            proc = _dict(proc, "grants.json processes")
            key = f"process {proc.get('pid')} {proc.get('name')} {proc.get('device')}"
            out[key] = {"fds": proc.get("fds"), "mapped_pages": proc.get("mapped_pages")}
        if snap.get("hypervisor") is not None:
            hv_rows = [
                (row.get("granter"), row.get("ref"), row.get("mapper"), row.get("flags"))
                for row in (
                    _dict(r, "grants.json hypervisor")
                    for r in _as_list(snap["hypervisor"], "grants.json hypervisor")
                )
            ]
    if hv_rows is None:
        parsed = _console(bundle)
        if parsed is not None and parsed.grants is not None:
            hv_rows = [
                (e.granter, e.ref, e.mapper, f"0x{e.flags:02x}")
                for table in parsed.grants.tables
                for e in table.entries
            ]
    if snap is None and hv_rows is None:
        return None
    for granter, ref, mapper, flags in hv_rows or []:
        ref_text = f"0x{ref:x}" if isinstance(ref, int) else str(ref)
        out[f"hv grant d{granter} ref {ref_text} mapped by d{mapper}"] = {"flags": flags}
    return out


def _console(bundle: Bundle) -> Any:
    raw = bundle.members.get("hvdump.txt")
    if raw is None:
        return None
    try:
        from grantscope.model.dumps import parse_console
    except ImportError:
        return None
    try:
        return parse_console(raw.decode("utf-8", "replace"))
    except Exception as err:  # a parser bug on hostile text must not crash the diff
        raise malformed("hvdump.txt", f"the dump text could not be parsed ({err})") from None


def port_records(bundle: Bundle) -> Keyed | None:
    """Hypervisor event-channel ports, Xen interrupt rows and our own ports."""
    out: Keyed = {}
    found = False
    parsed = _console(bundle)
    if parsed is not None and parsed.events is not None:
        found = True
        for domain in parsed.events.domains:
            for port in domain.ports:
                out[f"hv port d{port.domid}:{port.port}"] = {
                    "state": port.state,
                    "remote": None
                    if port.remote_domid is None
                    else f"d{port.remote_domid}:{port.remote_port}",
                    "virq": port.virq,
                }
    events = bundle.json_or_none("events.json")
    if events is not None:
        found = True
        events = _dict(events, "events.json")
        for row in _as_list(events.get("interrupts", []), "events.json interrupts"):
            row = _dict(row, "events.json interrupts")
            out[f"irq {row.get('irq')} {row.get('name')}"] = {"chip": row.get("chip")}
        for port in _as_list(events.get("ports", []), "events.json ports"):
            port = _dict(port, "events.json ports")
            out[f"own port {port.get('port')}"] = {
                "kind": port.get("kind"),
                "remote": f"d{port.get('remote_domid')}:{port.get('remote_port')}",
                "owner": port.get("owner"),
            }
    elif "interrupts.txt" in bundle.members:
        found = True
        for irq, name, chip in _interrupt_rows(bundle.members["interrupts.txt"]):
            out[f"irq {irq} {name}"] = {"chip": chip}
    return out if found else None


def _interrupt_rows(raw: bytes) -> list[tuple[int, str, str]]:
    from grantscope.model.interrupts import parse_interrupts

    try:
        parsed = parse_interrupts(raw.decode("utf-8", "replace"))
    except Exception as err:  # a parser bug on hostile text must not crash the diff
        raise malformed("interrupts.txt", f"could not be parsed ({err})") from None
    return [(r.irq, r.action, f"{r.chip}-{r.handler}".strip("-")) for r in parsed.rows]


def finding_records(bundle: Bundle) -> Keyed | None:
    """Findings keyed by their identity (id/code/kind and subject) or their whole text."""
    data = bundle.json_or_none("findings.json")
    if data is None:
        return None
    items = data.get("findings") if isinstance(data, dict) else data
    out: Keyed = {}
    for item in _as_list(items, "findings.json"):
        if isinstance(item, dict):
            ident = [str(item[k]) for k in ("id", "code", "kind", "subject", "title") if k in item]
            key = " ".join(ident) if ident else json.dumps(item, sort_keys=True)
        else:
            key = json.dumps(item, sort_keys=True)
        out[key] = item
    return out


SECTIONS: tuple[tuple[str, Callable[[Bundle], Keyed | None]], ...] = (
    ("xenstore", xenstore_records),
    ("grants", grant_records),
    ("ports", port_records),
    ("findings", finding_records),
)


def diff_bundles(a: Bundle, b: Bundle) -> dict[str, Any]:
    """The JSON-ready difference of ``a`` (before) and ``b`` (after)."""
    sections = [_section(name, a, b, fn) for name, fn in SECTIONS]
    return {
        "a": {"path": a.path, "host": a.host.get("hostname"), "at": a.manifest.get("finished_at")},
        "b": {"path": b.path, "host": b.host.get("hostname"), "at": b.manifest.get("finished_at")},
        "sections": sections,
        "changes": sum(len(s["added"]) + len(s["removed"]) + len(s["changed"]) for s in sections),
    }


def _brief(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."


def format_diff(result: dict[str, Any]) -> str:
    """The difference as lines for a terminal (``+`` added, ``-`` removed, ``~`` changed)."""
    a, b = result["a"], result["b"]
    lines = [
        f"A: {clean(a['path'])} ({clean(a['host'])}, {clean(a['at'])})",
        f"B: {clean(b['path'])} ({clean(b['host'])}, {clean(b['at'])})",
    ]
    for section in result["sections"]:
        name = section["section"]
        if not section["compared"]:
            why = "; ".join(
                f"{side.upper()}: {clean(section[side + '_error'])}"
                for side in ("a", "b")
                if side + "_error" in section
            )
            lines.append(f"{name}: not compared ({why})")
            continue
        count = len(section["added"]) + len(section["removed"]) + len(section["changed"])
        lines.append(f"{name}: {count} change(s)")
        for item in section["added"]:
            lines.append(f"  + {clean(item['key'])}  {_brief(item['after'])}")
        for item in section["removed"]:
            lines.append(f"  - {clean(item['key'])}  {_brief(item['before'])}")
        for item in section["changed"]:
            before, after = _brief(item["before"]), _brief(item["after"])
            lines.append(f"  ~ {clean(item['key'])}  {before} -> {after}")
    lines.append(f"total: {result['changes']} change(s)")
    return "\n".join(lines)
