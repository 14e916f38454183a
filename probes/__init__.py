"""Built-in probes: one module per probe, each exposing ``PROBE``.

Shipped inside the package as ``grantscope.probes`` (a symlink in the source tree);
:func:`grantscope.probing.registry.load_builtin_probes` loads them.
"""
