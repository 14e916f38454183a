"""offer-page: the other end of a mailbox: grant a page and offer an unbound port."""

from __future__ import annotations

import time
from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.context import Step, StepContext
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.steps import (
    bind_unbound_step,
    get,
    offer_step,
    publish_step,
    read_page_step,
    wait_for_port,
    write_page_step,
)

HOLD_STEP = "hold the offer for the peer"


def _hold_step(echo: bool) -> Step:
    """Keep the offer alive for ``hold`` seconds so a peer can map it; count its events.

    With ``echo`` every event is answered with a notify, so the peer can time round trips
    (the pingpong probe's other end).  ``hold=0`` only counts the events already pending.
    The count so far is in ``ctx.state["events"]``, also when a signal ends the hold.
    """

    def action(ctx: StepContext) -> dict[str, Any]:
        limit, port = float(get(ctx, "hold")), int(get(ctx, "port"))
        enough = int(get(ctx, "events"))
        ctx.args(seconds=limit, port=port, events=enough, echo=echo)
        channel = ctx.state["evtchn"]
        started = time.perf_counter()
        ctx.state["events"] = 0
        if limit <= 0:
            ctx.state["events"] = channel.drain().count(port)
        while limit > 0 and (fired := wait_for_port(ctx, channel, port, started + limit)):
            for _ in range(fired if echo else 0):
                channel.notify(port)
            ctx.state["events"] += fired
            if enough and ctx.state["events"] >= enough:
                break
        events = int(ctx.state["events"])
        held = time.perf_counter() - started
        ctx.explain(f"{events} event(s) from the peer in {held:.1f} s"
                    + (", each answered" if echo else ""))
        return {"events": events, "held_s": round(held, 3)}

    return Step(HOLD_STEP, "evtchn poll + read"
                + (" + NOTIFY back" if echo else ""), action, mutating=echo)


class OfferPage(Probe):
    """Grant pages to ``domid``, write a message, bind an unbound port, optionally publish.

    ``grantscope offer`` runs this probe (its flags are these parameters).
    """

    name = "offer-page"
    summary = "grant a page and offer an unbound port to a peer (the other end of a mailbox)"
    params = (
        Param("domid", "domid", None, "the peer domain allowed to map and bind (number or self)"),
        Param("writable", "bool", "true", "let the peer write into the page"),
        Param("message", "str", "hello from grantscope", "text written at the start of the page "
              "(empty: write nothing)"),
        Param("publish", "xspath", "", "XenStore directory to write gref and port under "
              "(empty: do not publish; removed again at cleanup)"),
        Param("hold", "float", "", "seconds to keep the offer alive for the peer "
              "(empty: do not hold; 0: only count the events already pending)"),
        Param("events", "int", "0", "stop holding once the peer sent this many events "
              "(0: hold the whole time)"),
        Param("echo", "bool", "false", "while holding, notify the peer back on every event "
              "(so the peer can run pingpong against this offer)"),
        Param("pages", "int", "1", "how many pages to grant (the message starts in the first)"),
    )
    mutating = True
    needs = ("gntalloc", "evtchn")

    def check_values(self, values: dict[str, Any]) -> None:
        """events is a count: not negative; at least one page; the message fits."""
        if values["events"] < 0:
            raise UsageError("offer-page: events must be 0 or more", "Give events=N, N >= 0.")
        if values["pages"] < 1:
            raise UsageError("offer-page: pages must be at least 1", "Give pages=N, N >= 1.")
        size = len(str(values["message"]).encode("utf-8"))
        if size > 4096 * values["pages"]:
            raise UsageError(f"offer-page: the message is {size} bytes, more than "
                             f"{values['pages']} page(s) hold", "Shorten it or give more pages.")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Grant, write, bind; publish and hold if asked; read back what the peer left."""
        steps = [offer_step("domid", writable=bool(values["writable"]),
                            pages=int(values["pages"]))]
        if values["message"]:
            steps.append(write_page_step("offer", what="offered page"))
        steps.append(bind_unbound_step("domid", "evtchn", "port"))
        if values["publish"]:
            steps.append(publish_step("publish", ("gref", "port"), {"gref": "grefs"}))
        if values["hold"] is not None:
            steps.append(_hold_step(bool(values["echo"])))
        steps.append(read_page_step("offer", "offered page"))
        return steps


PROBE = OfferPage()
