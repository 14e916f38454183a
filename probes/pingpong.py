"""pingpong: time notify/answer round trips, against a peer or on a loopback pair."""

from __future__ import annotations

from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.engine import Probe, Step, StepContext, StepFailed
from grantscope.probing.params import Param
from grantscope.probing.steps import (
    bind_interdomain_step,
    bind_unbound_step,
    drain_step,
    get,
    round_trips,
    stats_us,
    uses_self,
)
from grantscope.sources.lsevtchn import silent_peer_reason


def _pingpong_step(loopback: bool) -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        count, timeout = int(get(ctx, "count")), float(get(ctx, "timeout"))
        local = int(get(ctx, "local_port"))
        ctx.args(port=local, count=count, timeout_s=timeout, loopback=loopback)
        channel = ctx.state["evtchn"]
        if loopback:
            # The unbound end (its own fd) answers each ping in this process.
            echo, echo_port = ctx.state["echo"], int(get(ctx, "echo_port"))
            samples = round_trips(ctx, channel, local, channel, local, echo, echo_port,
                                  count, timeout)
        else:
            try:
                samples = round_trips(ctx, channel, local, channel, local, None, None,
                                      count, timeout)
            except StepFailed as err:
                seen = silent_peer_reason(local, int(get(ctx, "domid")), int(get(ctx, "port")))
                if seen is None:
                    raise
                raise StepFailed(f"{err.message}: {seen}", err.explanation) from err
        result = stats_us(samples)
        ctx.explain(f"{count} round trips, median {result['median_us']:.0f} µs")
        return result

    return Step("ping-pong", "evtchn NOTIFY, then poll + read the answer", action, mutating=True)


class PingPong(Probe):
    """Notify and wait for the answer ``count`` times; report round-trip times.

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
    )
    mutating = True
    needs = ("evtchn",)

    def check_values(self, values: dict[str, Any]) -> None:
        """count must be at least 1."""
        if values["count"] < 1:
            raise UsageError("pingpong: count must be at least 1", "Give count=N with N >= 1.")
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
