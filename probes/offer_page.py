"""offer-page: the other end of a mailbox: grant a page and offer an unbound port."""

from __future__ import annotations

import time
from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.engine import Probe, Step, StepContext
from grantscope.probing.params import Param
from grantscope.probing.steps import (
    bind_unbound_step,
    get,
    offer_step,
    publish_step,
    read_page_step,
    write_page_step,
)


def _hold_step(echo: bool) -> Step:
    """Keep the offer alive for ``hold`` seconds so a peer can map it; count its events.

    With ``echo`` every event is answered with a notify, so the peer can time round trips
    (the pingpong probe's other end).
    """

    def action(ctx: StepContext) -> dict[str, Any]:
        limit, port = float(get(ctx, "hold")), int(get(ctx, "port"))
        enough = int(get(ctx, "events"))
        ctx.args(seconds=limit, port=port, events=enough, echo=echo)
        channel = ctx.state["evtchn"]
        started = time.perf_counter()
        events = 0
        while (left := started + limit - time.perf_counter()) > 0:
            fired = ctx.wait_events(channel, left).count(port)
            for _ in range(fired if echo else 0):
                channel.notify(port)
            events += fired
            if enough and events >= enough:
                break
        held = time.perf_counter() - started
        ctx.explain(f"{events} event(s) from the peer in {held:.1f} s"
                    + (", each answered" if echo else ""))
        return {"events": events, "held_s": round(held, 3)}

    return Step("hold the offer for the peer", "evtchn poll + read"
                + (" + NOTIFY back" if echo else ""), action, mutating=echo)


class OfferPage(Probe):
    """Grant a page to ``domid``, write a message, bind an unbound port, optionally publish."""

    name = "offer-page"
    summary = "grant a page and offer an unbound port to a peer (the other end of a mailbox)"
    params = (
        Param("domid", "domid", None, "the peer domain allowed to map and bind (number or self)"),
        Param("writable", "bool", "true", "let the peer write into the page"),
        Param("message", "str", "hello from grantscope", "text written at the start of the page"),
        Param("publish", "xspath", "", "XenStore directory to write gref and port under "
              "(empty: do not publish; removed again at cleanup)"),
        Param("hold", "float", "0", "seconds to keep the offer alive for the peer"),
        Param("events", "int", "0", "stop holding once the peer sent this many events "
              "(0: hold the whole time)"),
        Param("echo", "bool", "false", "while holding, notify the peer back on every event "
              "(so the peer can run pingpong against this offer)"),
    )
    mutating = True
    needs = ("gntalloc", "evtchn")

    def check_values(self, values: dict[str, Any]) -> None:
        """events is a count: not negative."""
        if values["events"] < 0:
            raise UsageError("offer-page: events must be 0 or more", "Give events=N, N >= 0.")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Grant, write, bind; publish and hold if asked; read back what the peer left."""
        steps = [
            offer_step("domid", writable=bool(values["writable"])),
            write_page_step("offer", what="offered page"),
            bind_unbound_step("domid", "evtchn", "port"),
        ]
        if values["publish"]:
            steps.append(publish_step("publish", ("gref", "port")))
        if values["hold"]:
            steps.append(_hold_step(bool(values["echo"])))
        steps.append(read_page_step("offer", "offered page"))
        return steps


PROBE = OfferPage()
