"""Running collectors: each one under a time limit, and none of them can stop an export.

A collector is a named, read-only function that returns the members it gathered, as a dict
of member name to payload (``bytes`` for raw text/binary, anything else is written as JSON).
It runs in its own daemon thread; when its time limit passes the export moves on and
whatever the thread returns later is dropped.  Raising :class:`Unavailable` means "this data
does not exist here" (no Xen, not dom0, no session): an expected outcome, recorded as
``unavailable``.  Any other exception is recorded as ``error`` with its message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "unavailable", "error", "timeout"]
Payload = Mapping[str, Any]


class Unavailable(Exception):
    """A collector's data does not exist on this host (the reason is the message)."""


@dataclass(frozen=True)
class Collector:
    """One named source of bundle members (``fn`` takes no arguments and must not mutate)."""

    name: str
    fn: Callable[[], Payload]
    timeout_s: float = 30.0
    description: str = ""


@dataclass
class CollectorResult:
    """What one collector produced: its status, time taken, error text and members."""

    name: str
    status: Status
    duration_s: float
    timeout_s: float
    error: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self, members: list[str]) -> dict[str, Any]:
        """The manifest's record of this collector (``members`` as finally written)."""
        return {
            "name": self.name,
            "status": self.status,
            "duration_s": round(self.duration_s, 4),
            "timeout_s": self.timeout_s,
            "error": self.error,
            "members": members,
        }


def describe_exception(err: BaseException) -> str:
    """An exception as one line of words (GrantscopeError's message when it has one)."""
    message = getattr(err, "message", None)
    text = message if isinstance(message, str) and message else str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_collector(collector: Collector) -> CollectorResult:
    """Run ``collector`` in a daemon thread, waiting at most its time limit."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["payload"] = dict(collector.fn())
        except BaseException as err:
            box["error"] = err
        finally:
            done.set()

    start = time.monotonic()
    thread = threading.Thread(target=target, name=f"bundle-{collector.name}", daemon=True)
    thread.start()
    finished = done.wait(collector.timeout_s)
    duration = time.monotonic() - start
    if not finished:
        return CollectorResult(
            collector.name,
            "timeout",
            duration,
            collector.timeout_s,
            f"did not finish within {collector.timeout_s:g} s; its data was left out",
        )
    err = box.get("error")
    if isinstance(err, Unavailable):
        return CollectorResult(
            collector.name, "unavailable", duration, collector.timeout_s, str(err)
        )
    if err is not None:
        return CollectorResult(
            collector.name, "error", duration, collector.timeout_s, describe_exception(err)
        )
    payload = box.get("payload", {})
    return CollectorResult(collector.name, "ok", duration, collector.timeout_s, None, payload)
