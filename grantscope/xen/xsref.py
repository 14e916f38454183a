"""Number parameters that may come from XenStore: ``12`` or ``xs:/local/domain/3/data/gref``.

A gref, port or domid is often published by a peer in XenStore (``ring-ref``,
``event-channel``, ``backend-id``) as decimal ASCII.  An ``xs:PATH`` spec reads it at the time
of use.  Bad input never becomes a traceback: a malformed spec, a missing node or a value that
is not a decimal number is a UsageError that names the path and shows the bytes found (escaped
like xenstore-ls).
"""

from __future__ import annotations

import re
from typing import Protocol

from grantscope.errors import UsageError
from grantscope.xen.xs_escape import escape_value

PREFIX = "xs:"
_DECIMAL = re.compile(rb"[0-9]+")
_LITERAL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]+")


class _Reader(Protocol):
    def read_or_none(self, path: str) -> bytes | None: ...


def parse_number_spec(text: str) -> int | str:
    """``"12"`` -> 12, ``"0x1f"`` -> 31, ``"xs:/path"`` -> ``"/path"``; else a UsageError."""
    spec = text.strip()
    if spec.startswith(PREFIX):
        path = spec[len(PREFIX) :]
        if not path:
            raise UsageError(
                f"{text!r}: 'xs:' needs a XenStore path",
                "Write xs:/local/domain/DOMID/... (or a path relative to the domain's home).",
            )
        return path
    if _LITERAL.fullmatch(spec):
        return int(spec, 0) if spec[:2].lower() == "0x" else int(spec, 10)
    raise UsageError(
        f"{text!r} is not a number",
        "Give a decimal number (or 0x-hex), or xs:PATH to read a decimal value from XenStore.",
    )


def _read(path: str, store: _Reader, what: str) -> bytes:
    value = store.read_or_none(path)
    if value is None:
        raise UsageError(
            f"{what}: XenStore node {path} does not exist",
            "Check the path with 'grantscope xs ls'; the peer may not have published it yet.",
        )
    return value


def _decimal(raw: bytes, path: str, what: str, maximum: int | None) -> int:
    if not _DECIMAL.fullmatch(raw):
        raise UsageError(
            f'{what}: XenStore node {path} holds "{escape_value(raw)}", not a decimal number',
            "XenStore numbers are decimal ASCII (e.g. ring-ref, event-channel, backend-id).",
        )
    number = int(raw)
    if maximum is not None and number > maximum:
        raise UsageError(
            f"{what}: XenStore node {path} holds {number}, above the largest {what} ({maximum})"
        )
    return number


def _check_literal(number: int, what: str, maximum: int | None) -> int:
    if maximum is not None and number > maximum:
        raise UsageError(f"{what}: {number} is above the largest {what} ({maximum})")
    return number


def resolve_number(
    spec: int | str, store: _Reader, *, what: str, maximum: int | None = None
) -> int:
    """The number itself, or the decimal value read from XenStore for an ``xs:`` path.

    ASCII whitespace around the value is tolerated (``echo`` adds a newline); anything else
    that is not ``[0-9]+`` is a UsageError naming the path and the bytes found.
    """
    if isinstance(spec, int):
        return _check_literal(spec, what, maximum)
    raw = _read(spec, store, what)
    return _decimal(raw.strip(b" \t\n\r"), spec, what, maximum)


def resolve_numbers(
    spec: int | str, store: _Reader, *, what: str, maximum: int | None = None
) -> list[int]:
    """Like :func:`resolve_number`, but the node may hold several space-separated numbers
    (grefs of a multi-page ring, ``"8 9 10"``)."""
    if isinstance(spec, int):
        return [_check_literal(spec, what, maximum)]
    raw = _read(spec, store, what)
    words = raw.split()
    if not words:
        raise UsageError(
            f'{what}: XenStore node {spec} holds "{escape_value(raw)}", not a decimal number',
            "Expected one or more decimal numbers separated by spaces.",
        )
    out = []
    for word in words:
        if not _DECIMAL.fullmatch(word):
            raise UsageError(
                f'{what}: XenStore node {spec} holds "{escape_value(raw)}": '
                f'"{escape_value(word)}" is not a decimal number',
                "Expected one or more decimal numbers separated by spaces.",
            )
        out.append(_decimal(word, spec, what, maximum))
    return out
