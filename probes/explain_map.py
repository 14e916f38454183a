"""explain-map: why does a grant not map?  Try the map, ask Xen with GRANT_COPY, explain.

gntdev's ``mmap()`` turns every failed grant map into EINVAL, and the hypervisor's
own message is compiled out of release builds; a one-byte GRANT_COPY from the same
grant returns Xen's real GNTST status, which :func:`diagnose` turns into causes
(reference: xen-facts §2.4, the origin bug "map grant ref failed with status -1").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grantscope.probing.context import Step, StepContext
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.steps import (
    get,
    gntst_words,
    grant_copy_step,
    map_step,
    own_domid_step,
    uses_self,
)
from grantscope.xen.abi import DOMID_SELF
from grantscope.xen.gntstatus import causes as gntst_causes


def diagnose(
    *, mapped: bool, status: int, writable: bool, domid: int, gref: int, self_domid: int | None
) -> tuple[str, list[str]]:
    """A one-line diagnosis and the likely causes, from the map outcome and the GNTST code."""
    name, meaning = gntst_words(status)
    grant = f"gref {gref} of d{domid}"
    me = f"d{self_domid}" if self_domid is not None else "this domain"
    if mapped and status == 0:
        return f"{grant} maps and copies fine: nothing to explain", []
    if status == 0:
        if writable:
            return (
                f"{grant} can be read (GRANT_COPY status 0) but not mapped writable",
                [
                    "The grant is read-only (granted without write access, GTF_readonly): Xen "
                    "refuses to write-pin it with status -1. Map it with writable=false, or "
                    "have the granter grant it writable (gntalloc GNTALLOC_FLAG_WRITABLE).",
                ],
            )
        return (
            f"{grant} can be read (GRANT_COPY status 0) but the map failed",
            [
                "The grant itself is valid: the failure is on the mapping side. Check the map "
                "step's errno: ENOMEM/ENOSPC mean gntdev's or the maptrack's limits, EINVAL "
                "on a grant that copies fine points at the mapping request itself.",
            ],
        )
    # The general causes of this status, then what this probe's context adds.
    causes = [cause[:1].upper() + cause[1:] for cause in gntst_causes(status)] or [meaning]
    if status == -1 and self_domid is not None:
        causes[0] += f" (here the mapper is {me})"
        if domid == self_domid:
            causes.append(
                "Mapping your own grant is legal (XSA-380): both ends in one domain is not "
                "the error by itself."
            )
    if status == -1:
        # The GRANT_COPY is a read: a read-only grant would have copied with status 0
        # (handled above), so that cause does not apply when the copy fails too.
        causes = [c for c in causes if "read-only grant" not in c]
    if domid == DOMID_SELF:
        # Seen on Xen 4.17: GRANT_COPY says -1 for DOMID_SELF where the map op says -2.
        causes.insert(0, f"domid={DOMID_SELF} is DOMID_SELF, which grant maps and copies do not "
                      "accept as the granting domain: use the numeric domid instead.")
    return f"Xen says status {status} ({name}): {meaning}", causes


def _explain_step() -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        status = int(ctx.state["gntst"])
        mapped = "mapping" in ctx.state
        writable = bool(get(ctx, "writable"))
        domid, gref = int(get(ctx, "domid")), int(get(ctx, "gref"))
        self_domid = ctx.state.get("self_domid", ctx.state.get("domid:self"))
        ctx.args(mapped=mapped, status=status, writable=writable)
        diagnosis, causes = diagnose(
            mapped=mapped, status=status, writable=writable, domid=domid, gref=gref,
            self_domid=self_domid,
        )
        lines = [diagnosis] + [f"- {cause}" for cause in causes]
        ctx.explain("\n".join(lines))
        name, _ = gntst_words(status)
        return {
            "mapped": mapped,
            "status": status,
            "status_name": name,
            "diagnosis": diagnosis,
            "causes": causes,
        }

    return Step("explain", "diagnosis (no device call)", action)


class ExplainMap(Probe):
    """Try to map a grant; on failure, ask Xen with GRANT_COPY and explain the status."""

    name = "explain-map"
    summary = "diagnose a failing grant map: try it, GRANT_COPY one byte, explain the GNTST code"
    params = (
        Param("domid", "domid", None, "the granting domain (number, xs:PATH or self)"),
        Param("gref", "gref", None, "the grant reference (number or xs:PATH)"),
        Param("writable", "bool", "false", "try a read-write map, as the failing code did"),
    )
    mutating = True
    needs = ("gntdev",)

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Own domid (for the diagnosis), the map attempt (may fail), GRANT_COPY, explain."""
        # Knowing our own domid sharpens the diagnosis, but is not worth stopping for.
        steps = [] if uses_self(values, "domid") else [replace(own_domid_step(), may_fail=True)]
        return [*steps, map_step(may_fail=True), grant_copy_step(), _explain_step()]


PROBE = ExplainMap()
