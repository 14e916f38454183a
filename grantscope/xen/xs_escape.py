"""Showing XenStore values the way the Xen tools do.

A XenStore value is raw bytes (it may hold NUL and non-UTF-8).  ``xenstore-ls`` and
``xenstore-read`` print it through ``sanitise_value`` (tools/xenstore/xs_lib.c) and
``xenstore-write`` parses its argument with ``unsanitise_value``.  These are exact ports, so a
grantscope dump compares line for line with ``xenstore-ls -f``.
"""

from __future__ import annotations

_SIMPLE = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\"}


def _escape_byte(c: int) -> str:
    if 0x20 <= c <= 0x7E and c != 0x5C:
        return chr(c)
    simple = _SIMPLE.get(c)
    if simple is not None:
        return simple
    # sanitise_value: "if (c < 010) ADDF("%03o", c); else ADDF("x%02x", c);" after the backslash
    return f"\\{c:03o}" if c < 0o10 else f"\\x{c:02x}"


_TABLE = tuple(_escape_byte(c) for c in range(256))


def escape_value(value: bytes) -> str:
    """``value`` escaped exactly like xenstore-ls's ``sanitise_value``.

    Printable ASCII except backslash stays as is (a double quote is not escaped);
    ``\\t \\n \\r \\\\`` get a backslash; bytes below 010 become ``\\ooo`` (3 octal digits),
    every other byte ``\\xHH``.
    """
    table = _TABLE
    return "".join([table[c] for c in value])


def _take(text: str, pos: int, digits: str, most: int) -> tuple[int | None, int]:
    """Up to ``most`` characters of ``digits`` from ``pos``: (value or None, new position)."""
    end = pos
    while end < len(text) and end - pos < most and text[end] in digits:
        end += 1
    if end == pos:
        return None, pos
    return int(text[pos:end], 8 if digits == _OCT else 16), end


_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"


def unescape_value(text: str) -> bytes:
    """Reverse of :func:`escape_value`, like ``unsanitise_value`` (what xenstore-write does).

    ``\\t \\n \\r \\\\``, ``\\xHH`` (up to 2 hex digits) and ``\\ooo`` (up to 3 octal digits)
    are decoded; a backslash before any other character is dropped and the character kept,
    as in C.  Other non-ASCII characters are encoded as UTF-8 (undecodable command-line bytes,
    held as surrogates, come back as the original bytes), like C working on argv bytes.
    """
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            continue
        if i >= n:  # trailing backslash: unsanitise_value stores the terminating NUL
            out.append(0)
            break
        ch = text[i]
        i += 1
        simple = {"t": 0x09, "n": 0x0A, "r": 0x0D, "\\": 0x5C}.get(ch)
        if simple is not None:
            out.append(simple)
        elif ch == "x":
            value, i = _take(text, i, _HEX, 2)
            out.append(ord("x") if value is None else value)
        elif ch in _OCT:
            value, i = _take(text, i - 1, _OCT, 3)
            assert value is not None  # ch itself is an octal digit
            out.append(value & 0xFF)
        else:
            out += ch.encode("utf-8", "surrogateescape")
    return bytes(out)
