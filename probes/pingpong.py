"""pingpong: time notify/answer round trips, against a peer or on a loopback pair."""

from __future__ import annotations

from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.context import Step, StepContext
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.records import StepFailed
from grantscope.probing.roundtrips import loop_text, round_trips
from grantscope.probing.steps import (
    NoAnswer,
    bind_interdomain_step,
    bind_unbound_step,
    drain_step,
    get,
    stats_us,
    uses_self,
)
from grantscope.sources.lsevtchn import silent_peer_reason


def _pingpong_step(loopback: bool) -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        count, timeout = int(get(ctx, "count")), float(get(ctx, "timeout"))
        warmup = int(get(ctx, "warmup"))
        local = int(get(ctx, "local_port"))
        ctx.args(port=local, count=count, warmup=warmup, timeout_s=timeout, loopback=loopback)
        channel = ctx.state["evtchn"]
        if loopback:
            # The unbound end (its own fd) answers each ping in this process.
            echo, echo_port = ctx.state["echo"], int(get(ctx, "echo_port"))
            timed = round_trips(ctx, channel, local, channel, local, echo, echo_port,
                                count, timeout, warmup)
        else:
            try:
                timed = round_trips(ctx, channel, local, channel, local, None, None,
                                    count, timeout, warmup)
            except NoAnswer as err:
                raise _silent_peer(ctx, err, timeout) from err
        result = stats_us(timed.samples)
        # Which loop timed them: C measures the channel, Python adds the interpreter's time.
        result["loop"] = timed.loop
        if timed.loop_note:
            result["loop_note"] = timed.loop_note
        ctx.state["samples_us"] = result["samples_us"]
        ctx.state["loop"], ctx.state["loop_note"] = timed.loop, timed.loop_note
        ctx.explain(f"{count} round trips, median {result['median_us']:.0f} µs "
                    f"({loop_text(timed.loop, timed.loop_note)})")
        return result

    return Step("ping-pong", "evtchn NOTIFY, then poll + read the answer", action, mutating=True)


def _silent_peer(ctx: StepContext, err: NoAnswer, timeout: float) -> StepFailed:
    """No echo from the peer: the failure names it, and what the port table says of it."""
    domid, port = int(get(ctx, "domid")), int(get(ctx, "port"))
    local, timed = int(get(ctx, "local_port")), err.timed
    seen = silent_peer_reason(local, domid, port)
    causes = [seen] if seen else ["the peer does not echo", "the peer exited or unbound",
                                  "the peer is too slow for the timeout"]
    return StepFailed(
        f"no echo from domain {domid} port {port} within {timeout:g} s "
        f"(after {timed} timed round trips)" + (f": {seen}" if seen else ""),
        f"{err.what}.\npingpong needs a peer that answers every notification with one back (e.g. "
        "'grantscope offer --to MYDOMID --echo --wait 60', or the offer-page probe with "
        "echo=true).\nLikely causes:\n" + "\n".join(f"- {c}" for c in causes),
        result={"timed_round_trips": timed},
    )


class PingPong(Probe):
    """Notify and wait for the answer ``count`` times; report round-trip times
    (``grantscope pingpong`` runs this probe against a peer).

    With a ``port``, the peer ``domid`` must notify back on every event (the lab's
    domU peer does).  Without one, the probe makes a loopback pair in this domain:
    an unbound port on one handle, bound interdomain from a second handle.
    """

    name = "pingpong"
    summary = "time event-channel round trips against a peer, or on a loopback pair"
    params = (
        Param("domid", "domid", "self", "the peer domain (number, xs:PATH or self)"),
        Param("port", "port", "", "the peer's unbound port (number or xs:PATH); "
              "empty: make a loopback pair in this domain"),
        Param("count", "int", "10", "how many round trips"),
        Param("timeout", "float", "2", "seconds to wait for each answer"),
        Param("warmup", "int", "0", "untimed round trips first"),
    )
    mutating = True
    needs = ("evtchn",)

    def check_values(self, values: dict[str, Any]) -> None:
        """count must be at least 1."""
        if values["count"] < 1:
            raise UsageError("pingpong: count must be at least 1", "Give count=N with N >= 1.")
        if values["warmup"] < 0:
            raise UsageError("pingpong: warmup must be 0 or more", "Give warmup=N with N >= 0.")
        if values["port"] is None and not uses_self(values, "domid"):
            raise UsageError(
                "pingpong: a loopback pair (no port=) is made in this domain",
                "Leave domid=self for a loopback pair, or give the peer's port=N.",
            )

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Loopback: unbound port, bind to it, drain, ping-pong. Peer: bind, drain, ping-pong."""
        if values["port"] is None:
            return [
                bind_unbound_step("domid", "echo", "echo_port"),
                bind_interdomain_step("domid", "echo_port", "evtchn", "local_port"),
                drain_step("evtchn"),
                _pingpong_step(loopback=True),
            ]
        return [
            bind_interdomain_step("domid", "port", "evtchn", "local_port"),
            drain_step("evtchn"),
            _pingpong_step(loopback=False),
        ]


PROBE = PingPong()
