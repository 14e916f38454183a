"""What the findings are computed from and what they are: :class:`Observation` (everything
read from one host), :class:`Finding`, :class:`Thresholds` and :class:`Analysis`.

:func:`grantscope.model.findings.analyze` turns an Observation into an Analysis (the checks
are described there); these types are re-exported by :mod:`grantscope.model.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal

from grantscope._compat import slotted_dataclass
from grantscope.model.devices_join import DeviceRow
from grantscope.model.dumps import ConsoleParse
from grantscope.model.gnttab_size import GrantFrames
from grantscope.model.interrupts import InterruptsParse, XenbusCounters
from grantscope.model.toolout import DeviceHolder, QuotaSnapshot

Severity = Literal["error", "warning", "info"]


@slotted_dataclass(frozen=True)
class Thresholds:
    """Where a measurement becomes a finding."""

    headroom: float = 0.80  # fraction of a grant/maptrack/quota limit
    storm_rate: float = 500.0  # events per second on one Xen IRQ


@slotted_dataclass(frozen=True)
class Finding:
    """One problem: ``code`` (stable, for scripts), ``severity``, a one-line ``title``, the
    ``evidence`` lines it rests on, and ``action``: what to do about it."""

    code: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    action: str
    subject: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "action": self.action,
            "subject": self.subject,
        }


@slotted_dataclass(frozen=True)
class Observation:
    """Everything read from one host (or one pasted text); any part may be None.

    ``interrupts``/``counters`` come in two samples ``interval`` seconds apart so rates can
    be computed; ``local_domid`` is the domain they (and ``holders``) were read in.
    ``unavailable`` maps a source name to why it could not be read.  ``grant_sizes`` (from
    ``GNTTABOP_query_size``) stand in for the ``g`` dump's table sizes when there is no dump.
    ``gone_domids``: homes left behind by destroyed domains (xenstored's IS_DOMAIN_INTRODUCED).
    """

    xenstore: Mapping[str, bytes | None] | None = None
    console: ConsoleParse | None = None
    interrupts_before: InterruptsParse | None = None
    interrupts_after: InterruptsParse | None = None
    counters_before: tuple[XenbusCounters, ...] | None = None
    counters_after: tuple[XenbusCounters, ...] | None = None
    interval: float = 0.0
    # Seconds between the two interrupts samples when the first is older than the counters'
    # (the host's own earlier poll: a storm judged over what the user watched); 0: ``interval``.
    interrupts_interval: float = 0.0
    quota: QuotaSnapshot | None = None
    holders: tuple[DeviceHolder, ...] | None = None
    local_domid: int | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)
    grant_sizes: tuple[GrantFrames, ...] | None = None
    # Domains whose home is still in XenStore although xenstored no longer knows them (Xen
    # destroyed them and nobody cleaned up); None when that could not be asked.
    gone_domids: frozenset[int] | None = None
    # XenStore nodes grantscope processes that no longer run created and never removed (their
    # journals, grantscope.xen.xs_journal); None when the journals were not read.
    leftovers: tuple[XsLeftover, ...] | None = None

    @property
    def irq_interval(self) -> float:
        """Seconds between ``interrupts_before`` and ``interrupts_after``."""
        return self.interrupts_interval or self.interval


@slotted_dataclass(frozen=True)
class XsLeftover:
    """A journal of a grantscope process that ended without its cleanup: what it created."""

    journal: str
    pid: int
    nodes: tuple[str, ...]  # nodes, then the directories their writes created


@slotted_dataclass(frozen=True)
class Analysis:
    """The result of :func:`analyze`: findings (worst first), devices, and what was not checked."""

    findings: tuple[Finding, ...]
    devices: tuple[DeviceRow, ...]
    not_checked: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "findings": [f.to_json() for f in self.findings],
            "devices": [d.to_json() for d in self.devices],
            "not_checked": list(self.not_checked),
        }
