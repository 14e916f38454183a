"""Probe parameters: their declaration and the checking of ``KEY=VALUE`` input.

A parameter of kind ``domid``, ``gref`` or ``port`` is a decimal number or
``xs:PATH`` ("read it from XenStore"); an ``xs:`` value is resolved by a step of
its own when the probe runs, so the XenStore read shows in the step log and a
bad value there fails that step with the path and the bytes found.  A ``domid``
may also be ``self``: the domain grantscope runs in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grantscope.errors import UsageError

KINDS = ("domid", "gref", "port", "int", "str", "float", "bool", "xspath")
NUMBER_KINDS = ("domid", "gref", "port")
# Upper bounds (exclusive): domid_t is 16 bits, grant refs and ports are 32 bits.
LIMITS = {"domid": 1 << 16, "gref": 1 << 32, "port": 1 << 32}
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Param:
    """One declared parameter of a probe.

    ``kind`` is one of :data:`KINDS`.  ``default`` None means required; an empty
    string default means "not given" (the probe picks, e.g. a loopback peer).
    """

    name: str
    kind: str
    default: str | None
    help: str


@dataclass(frozen=True)
class XsRef:
    """A number still to be read from XenStore at ``path`` (a ``xs:PATH`` value)."""

    path: str


@dataclass(frozen=True)
class SelfDomid:
    """``domid=self``: the domain grantscope runs in, found when the probe runs."""


SELF = SelfDomid()


def split_assignments(items: list[str]) -> dict[str, str]:
    """``["gref=8", "domid=xs:/a"]`` -> ``{"gref": "8", "domid": "xs:/a"}``."""
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(
                f"probe parameter {item!r} is not KEY=VALUE",
                "Write parameters as KEY=VALUE, e.g. 'domid=0 gref=8'; "
                "'grantscope probe list' shows each probe's parameters.",
            )
        if key in values:
            raise UsageError(f"probe parameter {key!r} is given twice", "Give each parameter once.")
        values[key] = value
    return values


def _parse_number(param: Param, text: str) -> int | XsRef:
    if text.startswith("xs:"):
        path = text[3:]
        if not path:
            raise UsageError(
                f"{param.name}={text!r}: 'xs:' needs a XenStore path",
                f"Write e.g. {param.name}=xs:/local/domain/1/data/{param.name}.",
            )
        return XsRef(path)
    if not text.isascii() or not text.isdigit():
        raise UsageError(
            f"{param.name}={text!r} is not a decimal number",
            f"A {param.kind} is a decimal number, or xs:PATH to read it from XenStore"
            + (", or 'self' for this domain." if param.kind == "domid" else "."),
        )
    number = int(text, 10)
    if number >= LIMITS[param.kind]:
        raise UsageError(
            f"{param.name}={text} is out of range",
            f"A {param.kind} is below {LIMITS[param.kind]}.",
        )
    return number


def parse_value(param: Param, text: str) -> Any:
    """Check ``text`` for ``param``; return the typed value (None for an empty optional)."""
    kind = param.kind
    if text == "" and kind not in ("str",):
        return None
    if kind == "domid" and text == "self":
        return SELF
    if kind in NUMBER_KINDS:
        return _parse_number(param, text)
    if kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            raise UsageError(f"{param.name}={text!r} is not an integer", param.help) from None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise UsageError(f"{param.name}={text!r} is not a number", param.help) from None
        if not math.isfinite(number) or number < 0:
            raise UsageError(f"{param.name}={text!r} must be a finite number >= 0", param.help)
        return number
    if kind == "bool":
        lowered = text.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise UsageError(
            f"{param.name}={text!r} is not true or false",
            "Write true/false (also yes/no, on/off, 1/0).",
        )
    if kind == "xspath":
        if not text.startswith("/"):
            raise UsageError(
                f"{param.name}={text!r} is not an absolute XenStore path",
                "Write a path starting with '/', e.g. /local/domain/0/data/grantscope.",
            )
        return text
    if kind == "str":
        return text
    raise UsageError(f"parameter {param.name} has an unknown kind {kind!r}")


def parse_values(
    probe_name: str, params: tuple[Param, ...], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Check every given value and fill in defaults; raise :class:`UsageError` on bad input.

    Text values (``KEY=VALUE`` input) are checked; other values come from a front-end that
    checked them already and are taken as they are.
    """
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(p.name for p in params) or "none"
        raise UsageError(
            f"probe {probe_name!r} has no parameter {unknown[0]!r}",
            f"Its parameters are: {names}.",
        )
    values: dict[str, Any] = {}
    for param in params:
        text = given.get(param.name, param.default)
        if text is None:
            raise UsageError(
                f"probe {probe_name!r} needs {param.name}=...",
                f"{param.name} ({param.kind}): {param.help}",
            )
        # A front-end that checked and resolved a value itself (the CLI's map resolves
        # ``xs:`` and ``--count`` to a list of grefs) passes it typed, not as text.
        values[param.name] = parse_value(param, text) if isinstance(text, str) else text
    return values
