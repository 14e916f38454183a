"""TOML reading on every Python grantscope runs on: ``tomllib``.

The standard library's ``tomllib`` from 3.11; before, the ``tomli`` package (a dependency only
there), which is the same reader under its own name.  This is a module of its own, not part of
:mod:`grantscope._compat`: the models and probes import ``_compat``, and must stay importable
from a bare install of the wheel (tests/unit/test_packaging.py), without any third-party package.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = ["tomllib"]
