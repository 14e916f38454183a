"""``key=value`` words on a kernel command line: how the host passes parameters to dom0/domU init.

Values are percent-encoded so that spaces, quotes, commas and ``=`` survive the kernel's word
splitting and xl's config quoting; the domU peer (peer/xenpeer.c) decodes them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Key syntax: no dots (the kernel treats ``a.b=c`` as a module parameter) and nothing to escape.
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Bytes that pass through unencoded; everything else becomes %XX.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_.:-")


def encode_value(value: str) -> str:
    """Percent-encode ``value`` (UTF-8) so it is one kernel command-line word without quotes."""
    out: list[str] = []
    for byte in value.encode("utf-8"):
        out.append(chr(byte) if byte in _SAFE else f"%{byte:02X}")
    return "".join(out)


def decode_value(word: str) -> str:
    """Invert :func:`encode_value`; a malformed ``%`` escape is kept literally."""
    raw = bytearray()
    data = word.encode("utf-8")
    i = 0
    while i < len(data):
        if data[i] == ord("%") and _is_hex(data[i + 1 : i + 3]):
            raw.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", errors="replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def encode_params(params: Mapping[str, str], *, prefix: str = "gs_") -> str:
    """``{"scenario": "offer"}`` -> ``"gs_scenario=offer"``; keys must be identifiers."""
    words = []
    for key, value in params.items():
        if not _KEY_RE.match(key):
            raise ValueError(f"bad command-line parameter name {key!r}: use letters, digits, _")
        words.append(f"{prefix}{key}={encode_value(str(value))}")
    return " ".join(words)


def decode_params(cmdline: str, *, prefix: str = "gs_") -> dict[str, str]:
    """The ``prefix``-ed ``key=value`` words of ``cmdline`` (e.g. /proc/cmdline), decoded.

    Later words win, like the kernel's own parsing; the prefix is stripped from the keys.
    """
    params: dict[str, str] = {}
    for word in cmdline.split():
        if not word.startswith(prefix) or "=" not in word:
            continue
        key, _, value = word[len(prefix) :].partition("=")
        if _KEY_RE.match(key):
            params[key] = decode_value(value)
    return params
