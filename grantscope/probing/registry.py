"""The built-in probes: which modules of ``grantscope.probes`` hold them, and loading them."""

from __future__ import annotations

import importlib

from grantscope.errors import UsageError
from grantscope.probing.probe import Probe

# Module names under grantscope.probes, in the order 'probe list' shows them.
BUILTIN_MODULES: tuple[str, ...] = (
    "map_grant",
    "offer_page",
    "notify",
    "pingpong",
    "explain_map",
    "mailbox_loopback",
)


def load_builtin_probes() -> list[Probe]:
    """Import each built-in probe module and return its ``PROBE``."""
    probes: list[Probe] = []
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(f"grantscope.probes.{module_name}")
        probes.append(module.PROBE)
    return probes


def find_probe(name: str) -> Probe:
    """The built-in probe called ``name``; :class:`UsageError` naming the choices otherwise."""
    probes = load_builtin_probes()
    for probe in probes:
        if probe.name == name:
            return probe
    names = ", ".join(p.name for p in probes)
    raise UsageError(f"no probe named {name!r}", f"Built-in probes: {names}.")
