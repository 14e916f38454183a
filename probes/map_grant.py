"""map-grant: map another domain's grant with gntdev and show its first bytes."""

from __future__ import annotations

from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.context import Step
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.steps import map_step, read_page_step, write_page_step


class MapGrant(Probe):
    """Map ``gref`` of ``domid`` (the backend side of a shared page) and read it."""

    name = "map-grant"
    summary = "map a grant reference of another domain and show the page's first bytes"
    params = (
        Param("domid", "domid", None, "the granting domain (number, xs:PATH or self)"),
        Param("gref", "gref", None, "the grant reference (number or xs:PATH)"),
        Param("writable", "bool", "false", "map read-write (the grant must allow writing)"),
        Param("reply", "str", "", "text to write at the start of the page once mapped (needs "
              "writable=true; empty: write nothing)"),
        Param("force", "bool", "false", "map even a grant of this domain's own in a PVH or HVM "
              "guest, where Xen turns the offered page into a hole (reads 0xff)"),
    )
    mutating = True
    needs = ("gntdev",)

    def check_values(self, values: dict[str, Any]) -> None:
        """A reply is written through the mapping, so the mapping must be writable."""
        if values["reply"] and not values["writable"]:
            raise UsageError("map-grant: reply= writes into the page, which needs writable=true",
                             "Add writable=true (the granting side must allow writing).")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Map, read the page, write the reply if asked; cleanup unmaps."""
        steps = [map_step(), read_page_step("mapping", "mapped page")]
        if values["reply"]:
            steps.append(write_page_step("mapping", "reply", what="mapped page"))
        return steps


PROBE = MapGrant()
