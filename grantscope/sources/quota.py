"""Per-domain XenStore quota: CONTROL ``quota`` (limits) and ``quota DOMID`` (usage).

The requests ``xenstore-control quota [DOMID]`` sends, asked over grantscope's own XenStore
connection (:meth:`XenStore.quota <grantscope.xen.xenstore.XenStore.quota>`): one connection
for every domain instead of one process per domain.  C xenstored answers both; oxenstored
answers ``quota DOMID`` with the domain's node count and keeps its limits in its
configuration file (``quota-*`` settings).  Anything else (a domU without privilege) is
recorded as unavailable with xenstored's own answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from grantscope.errors import GrantscopeError
from grantscope.model.toolout import (
    DEFAULT_QUOTA_LIMITS,
    QuotaSnapshot,
    QuotaUsage,
    parse_quota_settings,
    parse_quota_usage,
)
from grantscope.sources import xsdaemon
from grantscope.sources.hvdump import ToolResult, per_domain_outputs

#: Asks xenstored one CONTROL request (``["quota"]``, ``["quota", "5"]``): its answer as text.
Ask = Callable[[Sequence[str]], ToolResult]

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


class XenStoreControl:
    """An :data:`Ask` over one XenStore connection, opened at the first request."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._store: Any = None
        self._cannot_connect = ""
        self._prefetched: dict[int, ToolResult] = {}

    def prefetch(self, domids: Iterable[int]) -> None:
        """Ask every domain's usage in one pipeline now; later calls for them are answered
        from it.  A host of 100 domains would otherwise wait for 100 round trips in turn."""
        wanted = [int(d) for d in domids]
        if not wanted or not self._open():
            return
        try:
            answers = self._store.quotas(wanted)
        except GrantscopeError:
            return  # asked again one by one, each with its own error
        for domid, answer in answers.items():
            argv = ("xenstore CONTROL", "quota", str(domid))
            self._prefetched[domid] = (
                ToolResult(argv, False, "", answer.message) if isinstance(answer, GrantscopeError)
                else ToolResult(argv, True, answer, ""))

    def _open(self) -> bool:
        from grantscope.xen.xenstore import XenStore

        if self._store is None and not self._cannot_connect:
            try:
                self._store = XenStore.open(timeout=self.timeout)
            except GrantscopeError as err:
                self._cannot_connect = err.message
        return self._store is not None

    def __call__(self, args: Sequence[str]) -> ToolResult:
        argv = ("xenstore CONTROL", *args)
        if len(args) > 1 and int(args[1]) in self._prefetched:
            return self._prefetched.pop(int(args[1]))
        if not self._open():
            return ToolResult(argv, False, "", self._cannot_connect)  # said once is enough
        try:
            text = self._store.quota(int(args[1]) if len(args) > 1 else None)
        except GrantscopeError as err:
            return ToolResult(argv, False, "", err.message)
        return ToolResult(argv, True, str(text), "")

    def __enter__(self) -> XenStoreControl:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._store is not None:
            self._store.close()


def _oxenstored_quota(domids: Iterable[int], conf: str, ask: Ask) -> QuotaSnapshot:
    # oxenstored answers 'quota' alone with "OK" and 'quota DOMID' with the domain's node
    # count (seen in the lab); its other limits are only in its configuration file.
    problems: list[str] = []
    try:
        limits = oxenstored_limits(Path(conf).read_text(errors="replace"))
    except OSError as exc:
        limits = {}
        problems.append(f"quota limits: {conf}: {exc.strerror or exc}")
    usage: list[QuotaUsage] = []
    for domid, out in per_domain_outputs(domids, lambda d: ["quota", str(d)], "quota",
                                         problems, timeout=0, run=ask):
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
    domids: Iterable[int], *, ask: Ask | None = None, timeout: float = 10.0,
    daemon: str | None = None, oxenstored_conf: str = OXENSTORED_CONF,
) -> QuotaSnapshot:
    """Ask xenstored for its limits and for each domain's usage; never raises.

    ``ask`` sends one CONTROL request (default: over a XenStore connection of this call's,
    each request bounded by ``timeout``); ``daemon`` is the XenStore daemon's flavour
    (default: found in /proc).
    """
    if ask is None:
        domids = list(domids)
        with XenStoreControl(timeout) as control:
            control.prefetch(domids)
            return read_quota(domids, ask=control, daemon=daemon,
                              oxenstored_conf=oxenstored_conf)
    flavour = daemon if daemon is not None else xsdaemon.detect().flavour
    if flavour == xsdaemon.OXENSTORED:
        return _oxenstored_quota(domids, oxenstored_conf, ask)
    problems: list[str] = []
    settings = ask(["quota"])
    limits: dict[str, int] = {}
    source = "xenstored"
    if settings.ok:
        limits, _bad = parse_quota_settings(settings.stdout)
    else:
        problems.append(f"quota limits: {settings.why}")
    if not limits:
        limits, source = dict(DEFAULT_QUOTA_LIMITS), "C xenstored 4.17 defaults (not read)"
    usage: list[QuotaUsage] = []
    for domid, out in per_domain_outputs(domids, lambda d: ["quota", str(d)], "quota",
                                         problems, timeout=0, run=ask):
        usage.append(parse_quota_usage(out, domid))
    return QuotaSnapshot(
        limits=limits, limits_source=source, usage=tuple(usage), unavailable=tuple(problems)
    )
