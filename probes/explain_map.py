"""explain-map: why does a grant not map?  Try the map, ask Xen with GRANT_COPY, explain.

gntdev's ``mmap()`` turns every failed grant map into EINVAL, and the hypervisor's
own message is compiled out of release builds; a one-byte GRANT_COPY from the same
grant returns Xen's real GNTST status, which :func:`diagnose` turns into causes
(reference: xen-facts §2.4, the origin bug "map grant ref failed with status -1").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grantscope.probing.engine import Probe, Step, StepContext
from grantscope.probing.params import Param
from grantscope.probing.steps import (
    get,
    gntst_words,
    grant_copy_step,
    map_step,
    own_domid_step,
    uses_self,
)

DOMID_SELF = 0x7FF0


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
    causes: list[str]
    if status == -1:
        causes = [
            f"The grant entry does not name {me}: the granter granted the page to another "
            "domain (e.g. the PF side granted to the VF's domid, then a dom0 tool maps it). "
            "The granter must grant to the id of the domain that maps.",
            f"gref {gref} is not granted (any more): the granter ended access, or the number "
            "is wrong. XenStore values are decimal strings; a value read in another radix, "
            "or from a stale key, points at an empty entry and gives -1, not -3.",
        ]
        if writable:
            causes.append(
                "A writable map of a read-only grant gives -1 too; a read copy works then "
                "(this copy did not), so this is less likely here."
            )
        causes.append(
            "A kernel module mapping from a PVH/HVM domain with GNTMAP_device_map or "
            "contains_pte gets -1 as well: such domains map with GNTMAP_host_map only."
        )
        if self_domid is not None and domid == self_domid:
            causes.append(
                "Mapping your own grant is legal (XSA-380), so both ends being in one domain "
                "is not the error by itself."
            )
    elif status == -2:
        causes = [
            f"d{domid} does not exist (check 'xl list'), or has been destroyed.",
            f"DOMID_SELF ({DOMID_SELF}) is not accepted as the granting domain: use the "
            "numeric domid." if domid == DOMID_SELF else
            "A domid read from XenStore or a config may be stale (domids are not reused "
            "until wrap-around, but a restarted guest gets a new one).",
        ]
    elif status == -3:
        causes = [
            f"gref {gref} is beyond d{domid}'s grant table: the number is wrong (read in "
            "the wrong radix, from the wrong key, or from another domain's directory).",
        ]
    elif status == -8:
        causes = ["An XSM/FLASK policy denies this domain access to the grant."]
    elif status == -12:
        causes = ["The granter's page is paged out or being shared: retry the map."]
    elif status == -13:
        causes = [
            f"{me} has no free maptrack entries: it maps too many grants already "
            "(gnttab_max_maptrack_frames / max_maptrack_frames).",
        ]
    else:
        causes = [meaning]
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
