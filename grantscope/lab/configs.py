"""The lab's configurations: which host a ``lab run --config NAME`` boots (issue 15).

Each configuration names what it changes from the lab's base host (Debian 12: Xen 4.17,
Linux 6.1, Python 3.11, C xenstored).  Today every configuration boots the same build; what
differs travels to dom0's init as ``gs_*`` words on its kernel command line
(grantscope/lab/init/dom0-stage2 reads them), and each run writes its configuration into the
results directory (:data:`RECORD_NAME`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grantscope.errors import UsageError

DEFAULT = "bookworm"
RECORD_NAME = "lab-config.json"

# XenStore daemons dom0's init knows how to start (the gs_xenstored word).
C_XENSTORED = "xenstored"
OXENSTORED = "oxenstored"


@dataclass(frozen=True)
class LabConfig:
    """One lab configuration: its name, what it is, and the dom0 words that make it so."""

    name: str
    summary: str
    xen: str = "4.17"
    kernel: str = "6.1"
    python: str = "3.11"
    xenstored: str = C_XENSTORED
    changes: tuple[str, ...] = field(default_factory=tuple)   # what differs from the base

    def dom0_words(self) -> dict[str, str]:
        """The ``gs_*`` kernel words dom0's init reads for this configuration."""
        return {"gs_config": self.name, "gs_xenstored": self.xenstored}

    def to_json(self) -> dict[str, Any]:
        """What a run records about its configuration."""
        return {"name": self.name, "summary": self.summary, "xen": self.xen,
                "kernel": self.kernel, "python": self.python, "xenstored": self.xenstored,
                "changes": list(self.changes)}


CONFIGS: Mapping[str, LabConfig] = MappingProxyType({
    c.name: c for c in (
        LabConfig(DEFAULT, "Debian 12: Xen 4.17, Linux 6.1, Python 3.11, C xenstored"),
        LabConfig("bookworm-oxenstored",
                  "Debian 12 with oxenstored (the OCaml XenStore daemon of XCP-ng/XenServer)",
                  xenstored=OXENSTORED,
                  changes=("dom0's XenStore daemon is /usr/lib/xen-4.17/bin/oxenstored "
                           "(/etc/xen/oxenstored.conf) instead of the C xenstored",)),
    )
})


def get(name: str | None) -> LabConfig:
    """The configuration called ``name`` (None: the default); a clear error for an unknown one."""
    key = DEFAULT if name is None else name
    try:
        return CONFIGS[key]
    except KeyError:
        known = ", ".join(CONFIGS)
        raise UsageError(f"unknown lab configuration {key!r}",
                         f"Known configurations: {known}.") from None


def record(config: LabConfig, results: Path) -> Path:
    """Write ``config`` into the run's results directory; returns the file written."""
    path = results / RECORD_NAME
    path.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return path
