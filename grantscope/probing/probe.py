"""The :class:`Probe` base class: a scenario's parameters and the steps built from them.

Each built-in probe (``grantscope.probes``) subclasses it; :mod:`grantscope.probing.registry`
finds them and :class:`grantscope.probing.engine.ProbeRun` runs one.
"""

from __future__ import annotations

from typing import Any

from grantscope.probing.context import Step
from grantscope.probing.devices import Devices
from grantscope.probing.params import Param
from grantscope.probing.steps import resolution_steps

__all__ = ["Probe"]


class Probe:
    """A scenario: declared parameters and the steps built from their values.

    Subclasses set ``name``, ``summary``, ``params``, ``mutating`` (whether any
    step changes state that others can see) and ``needs`` (the /dev/xen devices
    used), and implement :meth:`build_steps`.
    """

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    mutating: bool = False
    needs: tuple[str, ...] = ()

    def check_values(self, values: dict[str, Any]) -> None:
        """Raise :class:`UsageError` for values that are well-formed but do not fit together."""

    def check_host(self, devices: Devices, values: dict[str, Any]) -> None:
        """Raise :class:`UsageError` when this host (asked through ``devices``) must not run
        the probe with these values; the default accepts every host."""

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """The probe's own steps for these (checked) values."""
        raise NotImplementedError

    def steps_for(self, values: dict[str, Any]) -> list[Step]:
        """Resolution steps for ``xs:``/``self`` values, then the probe's own steps."""
        return resolution_steps(self.params, values) + self.build_steps(values)

    def param(self, name: str) -> Param:
        """The declared parameter called ``name``."""
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)
