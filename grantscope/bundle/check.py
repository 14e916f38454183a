"""``bundle inspect``: a bundle's manifest in brief, and its integrity verdict."""

from __future__ import annotations

from typing import Any

from grantscope.bundle.format import DEFAULT_LIMITS, Limits
from grantscope.bundle.reader import Bundle, read_bundle
from grantscope.safetext import clean


def inspect_bundle(path: str, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Summary of the bundle at ``path`` (JSON-ready); ``ok`` is False when integrity fails.

    Structural dangers still raise :class:`~grantscope.bundle.format.BundleError`; checksum,
    size and membership mismatches are reported in ``integrity.problems``.
    """
    bundle = read_bundle(path, limits=limits, verify=False)
    return summarize(bundle)


def summarize(bundle: Bundle) -> dict[str, Any]:
    """The JSON-ready summary of an opened bundle."""
    manifest = bundle.manifest
    host = bundle.host
    redaction = manifest.get("redaction")
    if not isinstance(redaction, dict):
        redaction = {}
    collectors = [{"name": str(e.get("name")), "status": str(e.get("status")),
                   "duration_s": e.get("duration_s"), "error": e.get("error"),
                   "members": e.get("members", [])} for e in manifest.get("collectors", [])]
    members = [
        {"name": e["name"], "size": e["size"], "sha256": e["sha256"]} for e in manifest["members"]
    ]
    redacted = redaction.get("redacted") if redaction.get("enabled") else None
    return {
        "ok": not bundle.problems,
        "path": bundle.path,
        "simulated": manifest.get("simulated") is True,
        "schema_version": manifest.get("schema_version"),
        "grantscope_version": manifest.get("grantscope_version"),
        "host": {
            "hostname": host.get("hostname"),
            "role": host.get("role"),
            "xen_version": host.get("xen_version"),
            "kernel": host.get("kernel"),
        },
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "options": manifest.get("options", {}),
        "collectors": collectors,
        "members": members,
        "redaction": {
            "enabled": bool(redaction.get("enabled")),
            "redacted_count": len(redacted) if isinstance(redacted, list) else 0,
            "redacted_paths": [_where(r) for r in (redacted or []) if isinstance(r, dict)],
            "note": redaction.get("note"),
        },
        "integrity": {
            "checked": len(members),
            "problems": list(bundle.problems),
        },
    }


def _where(record: dict[str, Any]) -> str:
    """``member:path`` (a XenStore path or JSON field) or ``member:line N`` (a text member)."""
    where = record.get("path") if "path" in record else f"line {record.get('line')}"
    rule = f" ({record['rule']})" if isinstance(record.get("rule"), str) else ""
    return f"{record.get('member')}:{where}{rule}"


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as lines for a terminal; every string from the bundle goes through
    :func:`~grantscope.cli.output.clean`, so none can forge a line or steer the terminal."""
    host = summary["host"]
    writer = clean(summary["grantscope_version"])
    xen = clean(host.get("xen_version") or "-")
    lines = [
        f"bundle   {clean(summary['path'])}",
        f"schema   {clean(summary['schema_version'])} (written by grantscope {writer})",
        f"host     {clean(host.get('hostname'))} ({clean(host.get('role'))}, Xen {xen})",
        f"captured {clean(summary['started_at'])} .. {clean(summary['finished_at'])}",
        "collectors:",
    ]
    if summary.get("simulated"):
        lines.insert(1, "SIMULATED: a bundle of the demo host (grantscope --demo), not of a "
                     "real machine")
    for c in summary["collectors"]:
        detail = f"  {clean(c['error'])}" if c.get("error") else ""
        duration = c.get("duration_s")
        took = f"{duration:7.2f}s" if _plausible_seconds(duration) else "      ?"
        lines.append(f"  {clean(c['name']):<12} {clean(c['status']):<11} {took}{detail}")
    red = summary["redaction"]
    if red["enabled"]:
        lines.append(f"redaction on: {red['redacted_count']} value(s) redacted")
        lines.extend(f"  {clean(p)}" for p in red["redacted_paths"])
    else:
        lines.append(f"redaction OFF: {clean(red.get('note') or 'sensitive values were kept')}")
    integrity = summary["integrity"]
    if integrity["problems"]:
        lines.append(f"integrity FAILED ({len(integrity['problems'])} problem(s)):")
        lines.extend(f"  {clean(p)}" for p in integrity["problems"])
    else:
        lines.append(f"integrity ok: {integrity['checked']} member(s), every sha256 matches")
    return "\n".join(lines)


def _plausible_seconds(value: object) -> bool:
    """A duration a collector could have taken (a bundle may say 1e308 or a 400-digit int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e9
