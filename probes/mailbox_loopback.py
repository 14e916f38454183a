"""mailbox-loopback: offer + map + notify in one domain (the PF↔VF mailbox on one host).

The offer side grants a page to its own domain, binds an unbound port and
publishes both under a XenStore directory; the map side reads them back through
XenStore exactly as the PF side would, maps the grant, binds to the port, writes a
message and notifies; the offer side waits for the event and reads the message
through its own page.  Everything is released at cleanup, the keys included.
"""

from __future__ import annotations

from typing import Any

from grantscope.probing.context import Step, StepContext
from grantscope.probing.devices import Devices
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.records import StepFailed
from grantscope.probing.steps import (
    bind_interdomain_step,
    bind_unbound_step,
    drain_step,
    get,
    map_step,
    notify_step,
    offer_step,
    own_domid_step,
    preview,
    publish_step,
    read_decimal,
    unpublish_step,
    wait_step,
    write_page_step,
)
from grantscope.sources.guest_caps import refuse_self_map

DEFAULT_PATH = "/local/domain/{domid}/data/grantscope-mailbox"

# Guest types whose grant maps go into the physmap (auto-translated), as /sys/hypervisor says.


def _where_step() -> Step:
    inner = own_domid_step()

    def action(ctx: StepContext) -> dict[str, Any]:
        result = inner.action(ctx) or {}
        path = get(ctx, "path") or DEFAULT_PATH.format(domid=ctx.state["self_domid"])
        ctx.state["mailbox"] = path
        return {**result, "path": path}

    return Step("find this domain's id and the mailbox path", inner.call, action)


def _read_back_step() -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        base = ctx.state["mailbox"]
        ctx.args(gref=f"xs:{base}/gref", port=f"xs:{base}/port")
        ctx.state["peer_gref"] = read_decimal(ctx, f"{base}/gref", "gref")
        ctx.state["peer_port"] = read_decimal(ctx, f"{base}/port", "port")
        return {"gref": ctx.state["peer_gref"], "port": ctx.state["peer_port"]}

    return Step("read gref and port from XenStore", "xenstore READ", action)


def _check_message_step() -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        expected = str(get(ctx, "message")).encode("utf-8") + b"\0"
        ctx.args(offset=0, length=len(expected))
        seen = ctx.state["offer"].read(0, len(expected))
        if seen != expected:
            raise StepFailed(
                "the offer's page does not hold the message written through the mapping",
                f"Expected {expected!r}, found {seen!r}: the mapping is not of this page.",
                result=preview(seen),
            )
        ctx.explain("the message written through the mapping is in the offered page")
        return {"matches": True, **preview(seen)}

    return Step("read the message through the offered page", "memory read", action)


class MailboxLoopback(Probe):
    """Both ends of a grant + event-channel mailbox in this one domain."""

    name = "mailbox-loopback"
    summary = "offer, publish, map back via XenStore, notify and read, all in this domain"
    params = (
        Param("path", "xspath", "", "XenStore directory for gref and port "
              "(empty: /local/domain/<self>/data/grantscope-mailbox)"),
        Param("message", "str", "grantscope mailbox", "text written through the mapping"),
        Param("timeout", "float", "2", "seconds to wait for the event"),
        Param("force", "bool", "false", "run even in a PVH or HVM guest, where Xen turns the "
              "page of a grant the domain maps from itself into a hole (reads 0xff)"),
    )
    mutating = True
    needs = ("gntdev", "gntalloc", "evtchn")

    def check_host(self, devices: Devices, values: dict[str, Any]) -> None:
        """Refuse in an auto-translated guest unless forced, before anything is offered: the
        self-map makes the offered page a hole there (grantscope.sources.guest_caps)."""
        if not values["force"]:
            refuse_self_map(devices.guest_type(), "mailbox-loopback maps this domain's own grant")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """The offer side, XenStore in between, the map side, then the message round."""
        return [
            _where_step(),
            offer_step("self_domid", writable=True),
            bind_unbound_step("self_domid", "offer_evtchn", "port"),
            publish_step("mailbox", ("gref", "port")),
            _read_back_step(),
            map_step("self_domid", "peer_gref", True),
            bind_interdomain_step("self_domid", "peer_port", "map_evtchn", "map_port"),
            drain_step("map_evtchn"),
            write_page_step("mapping", what="mapping"),
            notify_step("map_evtchn", "map_port"),
            wait_step("offer_evtchn", "port", "timeout", "the offer side"),
            _check_message_step(),
            unpublish_step("mailbox"),
        ]


PROBE = MailboxLoopback()
