"""When is an export complete: the collectors each kind of host must finish (``dom0``, ``domU``,
anything else), and which of a manifest's collectors make it partial (exit status 1 unless
``--allow-partial``)."""

from __future__ import annotations

from typing import Any

__all__ = ["expected_collectors", "partial_failures"]

# What each kind of machine can give: a collector in its set that does not end "ok" makes the
# export partial (exit status 1 unless --allow-partial).  "unavailable" elsewhere is expected:
# a domU has no 'xl', a machine without Xen has only host facts and /proc.
_EXPECTED_ANYWHERE = frozenset({"host", "interrupts", "processes"})
_EXPECTED_DOMU = _EXPECTED_ANYWHERE | {"xenstore", "grants", "events", "sysfs", "findings"}
_EXPECTED_DOM0 = _EXPECTED_DOMU | {"domains", "xl_info", "hvdump", "quota", "lsevtchn"}


def expected_collectors(role: object) -> frozenset[str]:
    """The collectors a host of ``role`` (``dom0``, ``domU``, anything else) must complete."""
    if role == "dom0":
        return _EXPECTED_DOM0
    if role == "domU":
        return _EXPECTED_DOMU
    return _EXPECTED_ANYWHERE


def partial_failures(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The collectors that make an export partial: any ``error`` or ``timeout``, and an
    ``unavailable`` one that the host's role should have (see :func:`expected_collectors`)."""
    host = manifest.get("host")
    expected = expected_collectors(host.get("role") if isinstance(host, dict) else None)
    return [
        c
        for c in manifest.get("collectors", [])
        if c.get("status") in ("error", "timeout")
        or (c.get("status") == "unavailable" and c.get("name") in expected)
    ]
