"""Per-domain XenStore quota: ``xenstore-control quota`` (limits) and ``quota DOMID`` (usage).

Only C xenstored answers this way.  Under oxenstored the limits are the ``quota-*`` settings of
its configuration file and per-domain usage is recorded as unavailable; anything else (a domU
without privilege) is recorded as unavailable with the tool's own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from grantscope.model.toolout import (
    DEFAULT_QUOTA_LIMITS,
    QuotaSnapshot,
    QuotaUsage,
    parse_quota_settings,
    parse_quota_usage,
)
from grantscope.sources import xsdaemon
from grantscope.sources.hvdump import per_domain_outputs, run_tool

__all__ = ["QuotaSnapshot", "read_quota"]


OXENSTORED_CONF = "/etc/xen/oxenstored.conf"
# oxenstored.conf setting -> the name C xenstored's 'xenstore-control quota' gives the same limit.
_OX_LIMITS = {
    "quota-maxentity": "nodes",
    "quota-maxwatch": "watches",
    "quota-transaction": "transactions",
    "quota-maxoutstanding": "outstanding",
}


def oxenstored_limits(text: str) -> dict[str, int]:
    """The per-domain limits in an oxenstored.conf (``key = value`` lines, ``#`` comments)."""
    limits: dict[str, int] = {}
    for line in text.splitlines():
        key, eq, value = line.split("#", 1)[0].partition("=")
        name = _OX_LIMITS.get(key.strip())
        if eq and name and value.strip().lstrip("-").isdigit():
            limits[name] = int(value.strip())
    return limits


_OX_USAGE_RE = re.compile(r"^dom(\d+) quota: (\d+)/(-?\d+)$")


def parse_oxenstored_usage(text: str, domid: int) -> tuple[QuotaUsage | None, int | None]:
    """oxenstored's answer to ``quota DOMID``: ``domN quota: USED/LIMIT`` (nodes only).

    Returns the usage and the node limit, or (None, None) when the domain has no count yet
    (oxenstored says ``domN quota: not set``) or the text is something else.
    """
    m = _OX_USAGE_RE.match(text.strip())
    if not m or int(m.group(1)) != domid:
        return None, None
    return QuotaUsage(domid=domid, usage={"nodes": int(m.group(2))}, unparsed=()), \
        int(m.group(3))


def _oxenstored_quota(domids: Iterable[int], conf: str, tool: str,
                      timeout: float) -> QuotaSnapshot:
    # oxenstored answers 'quota' alone with "OK" and 'quota DOMID' with the domain's node
    # count (seen in the lab); its other limits are only in its configuration file.
    problems: list[str] = []
    try:
        limits = oxenstored_limits(Path(conf).read_text(errors="replace"))
    except OSError as exc:
        limits = {}
        problems.append(f"quota limits: {conf}: {exc.strerror or exc}")
    usage: list[QuotaUsage] = []
    for domid, out in per_domain_outputs(domids, lambda d: [tool, "quota", str(d)], "quota",
                                         problems, timeout=timeout):
        found, limit = parse_oxenstored_usage(out, domid)
        if found is None:
            problems.append(f"quota of d{domid}: oxenstored said {out.strip()!r}")
            continue
        usage.append(found)
        if limit is not None and limit > 0:
            limits["nodes"] = limit
    problems.append("oxenstored counts only nodes per domain (no watch, transaction or "
                    "memory usage)")
    return QuotaSnapshot(limits=limits, limits_source=f"oxenstored ({conf})",
                         usage=tuple(usage), unavailable=tuple(problems))


def read_quota(
    domids: Iterable[int], *, tool: str = "xenstore-control", timeout: float = 10.0,
    daemon: str | None = None, oxenstored_conf: str = OXENSTORED_CONF,
) -> QuotaSnapshot:
    """Ask xenstored for its limits and for each domain's usage; never raises.

    ``daemon`` is the XenStore daemon's flavour (default: found in /proc).
    """
    flavour = daemon if daemon is not None else xsdaemon.detect().flavour
    if flavour == xsdaemon.OXENSTORED:
        return _oxenstored_quota(domids, oxenstored_conf, tool, timeout)
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
    for domid, out in per_domain_outputs(domids, lambda d: [tool, "quota", str(d)], "quota",
                                         problems, timeout=timeout):
        usage.append(parse_quota_usage(out, domid))
    return QuotaSnapshot(
        limits=limits, limits_source=source, usage=tuple(usage), unavailable=tuple(problems)
    )
