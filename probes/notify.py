"""notify: bind to a peer's unbound port and send it events."""

from __future__ import annotations

from typing import Any

from grantscope.errors import UsageError
from grantscope.probing.context import Step
from grantscope.probing.params import Param
from grantscope.probing.probe import Probe
from grantscope.probing.steps import bind_interdomain_step, drain_step, notify_step, wait_step


class Notify(Probe):
    """Bind interdomain to ``port`` of ``domid`` and notify it ``count`` times; with ``wait``,
    wait for a notification back (``grantscope notify`` runs this probe)."""

    name = "notify"
    summary = "bind to a peer's event-channel port and notify it"
    params = (
        Param("domid", "domid", None, "the peer domain (number, xs:PATH or self)"),
        Param("port", "port", None, "the peer's unbound port (number or xs:PATH)"),
        Param("count", "int", "1", "how many notifications to send"),
        Param("wait", "float", "", "seconds to wait for a notification back "
              "(empty: do not wait)"),
    )
    mutating = True
    needs = ("evtchn",)

    def check_values(self, values: dict[str, Any]) -> None:
        """count must be at least 1."""
        if values["count"] < 1:
            raise UsageError("notify: count must be at least 1", "Give count=N with N >= 1.")

    def build_steps(self, values: dict[str, Any]) -> list[Step]:
        """Bind, drain the bind event, notify, maybe wait for the answer; cleanup unbinds."""
        steps = [
            bind_interdomain_step("domid", "port", "evtchn", "local_port"),
            drain_step("evtchn"),
            notify_step("evtchn", "local_port", "count"),
        ]
        if values["wait"] is not None:
            steps.append(wait_step("evtchn", "local_port", "wait", "this domain back"))
        return steps


PROBE = Notify()
