"""map-grant: map another domain's grant with gntdev and show its first bytes."""

from __future__ import annotations

from typing import Any

from grantscope.probing.engine import Probe, Step
from grantscope.probing.params import Param
from grantscope.probing.steps import map_step, read_page_step


class MapGrant(Probe):
    """Map ``gref`` of ``domid`` (the backend side of a shared page) and read it."""

    name = "map-grant"
    summary = "map a grant reference of another domain and show the page's first bytes"
    params = (
        Param("domid", "domid", None, "the granting domain (number, xs:PATH or self)"),
        Param("gref", "gref", None, "the grant reference (number or xs:PATH)"),
        Param("writable", "bool", "false", "map read-write (the grant must allow writing)"),
    )
    mutating = True
    needs = ("gntdev",)

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Map, then read the page; cleanup unmaps."""
        return [map_step(), read_page_step("mapping", "mapped page")]


PROBE = MapGrant()
