"""Per-domain XenStore quota: ``xenstore-control quota`` (limits) and ``quota DOMID`` (usage).

Only C xenstored answers this way; anything else (oxenstored, a domU without privilege)
is recorded as unavailable with the tool's own message.
"""

from __future__ import annotations

from collections.abc import Iterable

from grantscope.model.toolout import (
    DEFAULT_QUOTA_LIMITS,
    QuotaSnapshot,
    QuotaUsage,
    parse_quota_settings,
    parse_quota_usage,
)
from grantscope.sources.hvdump import run_tool

__all__ = ["QuotaSnapshot", "read_quota"]


def read_quota(
    domids: Iterable[int], *, tool: str = "xenstore-control", timeout: float = 10.0
) -> QuotaSnapshot:
    """Ask xenstored for its limits and for each domain's usage; never raises."""
    problems: list[str] = []
    settings = run_tool([tool, "quota"], timeout=timeout)
    limits: dict[str, int] = {}
    source = "xenstored"
    if settings.ok:
        limits, _bad = parse_quota_settings(settings.stdout)
    else:
        problems.append(f"quota limits: {settings.why}")
    if not limits:
        limits, source = dict(DEFAULT_QUOTA_LIMITS), "C xenstored 4.17 defaults (not read)"
    usage: list[QuotaUsage] = []
    for domid in domids:
        res = run_tool([tool, "quota", str(domid)], timeout=timeout)
        if not res.ok:
            problems.append(f"quota of d{domid}: {res.why}")
            if "not found" in res.why:
                break  # no point asking again for every domain
            continue
        usage.append(parse_quota_usage(res.stdout, domid))
    return QuotaSnapshot(
        limits=limits, limits_source=source, usage=tuple(usage), unavailable=tuple(problems)
    )
