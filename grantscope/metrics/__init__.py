"""Grant, event-channel and XenStore health as Prometheus metrics (``grantscope metrics``).

* :mod:`~grantscope.metrics.reading` — what one scrape read (:class:`Reading`), built from
  the same :class:`~grantscope.model.findings.Observation` ``report`` analyzes;
* :mod:`~grantscope.metrics.collect` — one scrape of the real host, cheap sources only;
* :mod:`~grantscope.metrics.demo` — the same from the simulated host (every series labelled
  ``simulated="1"``);
* :mod:`~grantscope.metrics.families` — the metric families of a :class:`Reading` (pure);
* :mod:`~grantscope.metrics.exposition` — the registry, the text format, ``--output`` and
  the ``/metrics`` HTTP server.
"""
