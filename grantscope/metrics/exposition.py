"""Serving a reading in Prometheus' text format: on stdout, to a file, or over HTTP.

A :class:`ScrapeCollector` reads the host when (and only when) it is scraped: no timers of
its own.  Scrapes are serialized, so two Prometheus servers scraping at once do not read
the host twice in parallel.
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
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """The families of a fresh reading."""
        with self._lock:
            reading = self._read()
        yield from families(reading, per_device=self._per_device)


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
