"""Serving a reading in Prometheus' text format: on stdout, to a file, or over HTTP.

A :class:`ScrapeCollector` reads the host when (and only when) it is scraped: no timers of
its own.  Scrapes that arrive while a reading is under way share that reading instead of
queueing for their own: on a slow host (a dom0 under emulation, a scrape that outlasts a
client's timeout) queued readings would otherwise pile up faster than they finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from grantscope.metrics.families import families
from grantscope.metrics.reading import Reading

__all__ = ["ScrapeCollector", "make_registry", "render", "serve"]


class ScrapeCollector(Collector):
    """A prometheus_client collector calling ``read`` at each scrape."""

    def __init__(self, read: Callable[[], Reading], *, per_device: bool = False) -> None:
        self._read = read
        self._per_device = per_device
        self._cond = threading.Condition()
        self._busy = False
        self._done = 0  # readings finished so far
        self._last: Reading | BaseException | None = None
        self.readings = 0  # readings started (for tests and -v)

    def collect(self) -> Iterator[Metric]:
        """The families of a fresh reading: this scrape's own, or the one under way."""
        yield from families(self._reading(), per_device=self._per_device)

    def _reading(self) -> Reading:
        with self._cond:
            if self._busy:
                started = self._done
                while self._done == started:
                    self._cond.wait()
                return self._result()
            self._busy = True
            self.readings += 1
        result: Reading | BaseException
        try:
            result = self._read()
        except BaseException as err:  # handed to every waiting scrape too
            result = err
        with self._cond:
            self._busy, self._last = False, result
            self._done += 1
            self._cond.notify_all()
            return self._result()

    def _result(self) -> Reading:
        if isinstance(self._last, BaseException):
            raise self._last
        assert self._last is not None
        return self._last


def make_registry(read: Callable[[], Reading], *, per_device: bool = False) -> CollectorRegistry:
    """A registry holding only grantscope's collector (no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(read, per_device=per_device))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """One scrape in the text exposition format (version 0.0.4)."""
    return bytes(generate_latest(registry))


def serve(registry: CollectorRegistry, addr: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` from ``registry`` on ``addr:port`` in a daemon thread.

    Returns the server (``server.server_port`` is the port, useful with ``port`` 0) and its
    thread; ``server.shutdown()`` stops it.  prometheus_client's own server: IPv4 and IPv6
    literals both work, and it logs no line per scrape.
    """
    return start_http_server(port, addr=addr, registry=registry)
