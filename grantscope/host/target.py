"""What a command acts on: the simulated host under ``--demo``, else this machine.

Every command that reads a host (``doctor``, ``xs``, ``report``, ``bundle export``,
``probe run``, ``metrics``, the TUI) asks :func:`target_for` for its host, its XenStore or its
probe devices, so ``--demo`` means the same everywhere and no command keeps its own copy
of the choice.  On this machine each of them first refuses (exit 2, naming
``grantscope --demo COMMAND``) when it is not a Xen host.  Under ``--demo`` every output is
labelled: :attr:`Target.banner` for text, :meth:`Target.mark` for ``--json``
(``"simulated": true``).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grantscope.host.base import Host
    from grantscope.host.sim import SimHost

__all__ = ["SIMULATED", "Target", "target_for"]

#: The label every simulated output carries (the TUI's header badge says the same).
SIMULATED = "SIMULATED"


@dataclass
class Target:
    """The host a command runs against (see the module doc).

    ``command`` names the command in refusals ("xs ls", "report"); ``simulated`` is True
    under ``--demo``.  The simulated host is built once, on first use, and shared by
    :meth:`host`, :meth:`store` and :meth:`devices`.
    """

    command: str
    simulated: bool = False
    readonly: bool = False
    _sim: SimHost | None = field(default=None, repr=False)

    @property
    def banner(self) -> str:
        """The first line of a simulated command's text output ("" on a real host)."""
        if not self.simulated:
            return ""
        return (f"{SIMULATED}: 'grantscope {self.command}' on the demo host (grantscope "
                "--demo), not on this machine")

    def mark(self, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` with ``"simulated": true`` added under ``--demo`` (unchanged otherwise)."""
        return {**obj, "simulated": True} if self.simulated else obj

    def sim(self) -> SimHost:
        """The simulated host (built on first use)."""
        if self._sim is None:
            from grantscope.host.sim import SimHost

            self._sim = SimHost(readonly=self.readonly)
        return self._sim

    def require_xen(self, *, also: str = "") -> None:
        """Refuse (exit 2, naming ``--demo``) unless simulated or this machine runs on Xen
        (:func:`grantscope.xen.errors.require_xen`); ``also`` names another way to get what
        the command gives."""
        if self.simulated:
            return
        from grantscope.xen.errors import require_xen

        require_xen(command=self.command, also=also)

    def require_devices(self, needs: tuple[str, ...]) -> None:
        """:meth:`require_xen`, and the device nodes ``needs`` names (a probe's
        ``("gntdev",)``) must be here (:func:`grantscope.probing.devices.require_devices`)."""
        if self.simulated:
            return
        from grantscope.probing.devices import require_devices

        require_devices(needs)  # its refusal names 'grantscope --demo probe run'

    def host(self) -> Host:
        """The :class:`~grantscope.host.base.Host`: simulated, or this machine's ``xen``."""
        if self.simulated:
            return self.sim()
        self.require_xen()
        from grantscope.host.xen import XenHost

        return XenHost(readonly=self.readonly)

    def store(self, timeout: float = 5.0) -> Any:
        """A XenStore connection (a context manager): the simulated store, or the real one.

        A store that answers is used wherever it is (``XENSTORED_PATH``, a socket mounted
        into a container); when none does on a machine that is not Xen, the refusal is the
        Xen one, naming ``--demo``, rather than the list of sockets tried.
        """
        if self.simulated:
            return self.sim().live_store()
        from grantscope.errors import GrantscopeError
        from grantscope.xen.xenstore import XenStore

        try:
            return XenStore.open(timeout=timeout)
        except GrantscopeError:
            if not os.environ.get("XENSTORED_PATH"):
                self.require_xen()
            raise

    def devices(self) -> Any:
        """The probe engine's devices: the simulated ones, or this machine's (opened lazily;
        call :meth:`require_devices` with the probe's needs before running a step)."""
        if self.simulated:
            return self.sim().probe_devices()
        from grantscope.probing.devices import RealDevices

        return RealDevices()


def target_for(args: argparse.Namespace, command: str) -> Target:
    """The target of the command ``command`` run with the parsed ``args`` (``--demo``,
    ``--readonly``)."""
    return Target(command=command, simulated=bool(getattr(args, "demo", False)),
                  readonly=bool(getattr(args, "readonly", False)))
