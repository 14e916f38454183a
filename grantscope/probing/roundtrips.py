"""Event-channel round trips, timed by the C loop when it can run, else by the Python loop.

``pingpong`` (the probe, and so the CLI and the TUI) times its round trips here; the C loop is
:mod:`grantscope.xen.evtloop`.  Both return every round trip's time in seconds, for
:func:`grantscope.probing.steps.stats_us`.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from grantscope.probing.context import StepContext
from grantscope.probing.steps import NoAnswer, wait_for_port


class RoundTrips(NamedTuple):
    """Timed round trips (seconds) and which loop ran them (``loop_note``: why not C)."""

    samples: list[float]
    loop: str
    loop_note: str | None


def round_trips(ctx: StepContext, send: Any, send_port: int, recv: Any, recv_port: int,
                echo: Any | None, echo_port: int | None, count: int, timeout: float,
                warmup: int = 0) -> RoundTrips:
    """Time ``count`` notify/answer round trips after ``warmup`` untimed ones; ``echo``
    answers in-process when given.  No answer within ``timeout`` raises :class:`NoAnswer`.

    The C loop (:mod:`grantscope.xen.evtloop`) runs them when it is built and the channels
    are real fds with nothing pending; otherwise the Python loop, and ``loop_note`` says why.
    """
    from grantscope.xen import evtloop

    note = _c_loop_refusal((send, recv, echo))
    if note is None:
        try:
            samples = evtloop.round_trips(send, send_port, recv, recv_port, echo, echo_port,
                                          count, timeout, warmup, ctx.check_cancelled)
        except evtloop.Timeout as err:
            what = ("the loopback end got nothing" if err.loopback
                    else f"no answer on port {recv_port}")
            raise _no_answer(f"round trip {err.index + 1}: {what}", timeout,
                             err.timed) from None
        return RoundTrips(samples, evtloop.C_LOOP, None)
    return RoundTrips(python_round_trips(ctx, send, send_port, recv, recv_port, echo,
                                          echo_port, count, timeout, warmup),
                      evtloop.PYTHON_LOOP, note)


def loop_text(loop: str, note: str | None) -> str:
    """How the CLI and the probe say which loop timed the round trips."""
    return "timed by the C loop" if loop == "c" else f"timed by the Python loop: {note}"


def _c_loop_refusal(channels: tuple[Any, ...]) -> str | None:
    """Why the C loop cannot time these channels (None: it can)."""
    from grantscope.xen.compiled import unavailable_reason

    real = [c for c in channels if c is not None]
    try:
        fds = [c.fileno() for c in real]
    except (AttributeError, ValueError):  # no fileno, or closed
        fds = [-1]
    if min(fds) < 0:
        return "simulated event channels have no fd for the C loop"
    if any(c.has_pending for c in real):
        return "events were pending before the first round trip"
    return unavailable_reason()


def python_round_trips(ctx: StepContext, send: Any, send_port: int, recv: Any,
                        recv_port: int, echo: Any | None, echo_port: int | None, count: int,
                        timeout: float, warmup: int) -> list[float]:
    """The pure-Python loop: the same syscalls as the C loop, through the channel objects."""
    samples: list[float] = []
    clock = time.perf_counter
    for i in range(warmup + count):
        ctx.check_cancelled()
        started = clock()
        send.notify(send_port)
        if echo is not None and echo_port is not None:
            if not wait_for_port(None, echo, None, started + timeout):
                raise _no_answer(f"round trip {i + 1}: the loopback end got nothing",
                                 timeout, len(samples))
            echo.notify(echo_port)
        # The usual answer is exactly [recv_port]: no second call on the fast path.
        fired = recv.wait(timeout)
        if recv_port not in fired and not wait_for_port(None, recv, recv_port,
                                                        started + timeout):
            raise _no_answer(f"round trip {i + 1}: no answer on port {recv_port}",
                             timeout, len(samples))
        if i >= warmup:
            samples.append(clock() - started)
    return samples


def _no_answer(failure: str, timeout: float, timed: int) -> NoAnswer:
    return NoAnswer(
        failure,
        "The peer must answer each notification by notifying back (the lab's domU peer "
        "does, and so does 'grantscope offer --to MYDOMID --echo --wait 60').",
        timed, timeout,
    )
