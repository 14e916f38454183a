"""The bundle file format: names, schema version, limits and the bytes-safe XenStore encoding.

A bundle is one gzip-compressed POSIX tar file.  Its first member is ``manifest.json``;
every other member is a regular file with a short, relative, plain name (``xenstore.json``,
``pages/0003.bin``).  The manifest is the table of contents and the integrity record:

```
{
  "format": "grantscope-bundle",
  "schema_version": 1,
  "grantscope_version": "0.1.0",
  "host": {...},                 # host facts gathered by the "host" collector (may be partial)
  "started_at": "2026-11-25T18:49:31.123456Z", "finished_at": "...",
  "options": {"include_pages": false, "redact": true},
  "members": [{"name": "xenstore.json", "sha256": "<64 hex>", "size": 1234,
               "collector": "xenstore"}, ...],          # every member except the manifest
  "collectors": [{"name": "xenstore", "status": "ok" | "unavailable" | "error" | "timeout",
                  "duration_s": 0.12, "timeout_s": 60.0, "error": null | "words",
                  "members": ["xenstore.json"]}, ...],
  "redaction": {"enabled": true, "marker": "<redacted by grantscope>",
                "rules": [...words...], "redacted": [{"member": ..., "path": ..., "rule": ...}]}
}
```

XenStore values are bytes, not text, so ``xenstore.json`` stores each node as
``{"path": str, "value_b64": str | null, "value": str | null, "perms": {...} | null}``:
``value_b64`` is the authoritative raw value (base64), ``value`` is the same bytes escaped
the way ``xenstore-ls`` prints them (for people reading the JSON), and ``perms`` is
``{"owner": int, "default": "r|w|b|n", "acl": [[domid, letter], ...]}``.  A redacted node
keeps its path and permissions, has its value replaced by the redaction marker (``value`` the
marker, ``value_b64`` the marker's base64) and carries ``"redacted": true``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.errors import GrantscopeError

FORMAT_NAME = "grantscope-bundle"
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
REDACTION_MARKER = "<redacted by grantscope>"

# Member names: relative, at most four plain components of [A-Za-z0-9._-] that do not start
# with a dot (so "." and ".." can never appear), at most 200 characters.
_COMPONENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MEMBER_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT}){{0,3}}$")
MAX_MEMBER_NAME = 200

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PERM_LETTERS = frozenset("rwbn")


class BundleError(GrantscopeError):
    """A bundle that cannot be written, or one that is unsafe, damaged or not a bundle at all."""

    exit_code = 1


@slotted_dataclass(frozen=True)
class Limits:
    """What the safe reader accepts from an untrusted file (bytes unless said otherwise).

    ``max_total_bytes`` bounds the *decompressed* stream, which is what stops a
    decompression bomb: decompression stops as soon as it is crossed.
    """

    max_file_bytes: int = 128 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024
    max_member_bytes: int = 128 * 1024 * 1024
    max_manifest_bytes: int = 8 * 1024 * 1024
    max_members: int = 4096


DEFAULT_LIMITS = Limits()


def is_sha256(text: object) -> bool:
    """True when ``text`` is 64 lowercase hex digits."""
    return isinstance(text, str) and bool(_SHA256_RE.match(text))


def escape_value(value: bytes) -> str:
    """``value`` escaped like xenstore-ls's ``sanitise_value`` (printable ASCII kept as is).

    Kept here rather than imported so a bundle can be read on a machine without the Xen
    bindings; the rule is the C tool's: ``\\t \\n \\r \\\\`` backslash-escaped, other bytes
    below 010 as ``\\%03o``, everything else outside ' '..'~' as ``\\x%02x``.
    """
    out: list[str] = []
    for byte in value:
        char = chr(byte)
        if char == "\\":
            out.append("\\\\")
        elif char == "\t":
            out.append("\\t")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif " " <= char <= "~":
            out.append(char)
        elif byte < 0o10:
            out.append(f"\\{byte:03o}")
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def perms_to_json(perms: Any) -> dict[str, Any] | None:
    """A ``Perms``-like object (owner, default, acl) as JSON; None stays None."""
    if perms is None:
        return None
    return {
        "owner": int(perms.owner),
        "default": str(perms.default),
        "acl": [[int(domid), str(letter)] for domid, letter in perms.acl],
    }


def node_to_json(path: str, value: bytes | None, perms: Any) -> dict[str, Any]:
    """One XenStore node in the bundle's bytes-safe form (see the module docstring)."""
    return {
        "path": path,
        "value_b64": None if value is None else base64.b64encode(value).decode("ascii"),
        "value": None if value is None else escape_value(value),
        "perms": perms_to_json(perms),
    }


@slotted_dataclass(frozen=True)
class StoredNode:
    """A XenStore node as read back from a bundle: raw value bytes and plain permission data."""

    path: str
    value: bytes | None
    owner: int | None
    default: str | None
    acl: tuple[tuple[int, str], ...]
    redacted: bool


def node_from_json(obj: Any, where: str) -> StoredNode:
    """Decode one ``xenstore.json`` node, raising :class:`BundleError` on anything malformed."""
    if not isinstance(obj, dict):
        raise malformed(where, "a XenStore node is not a JSON object")
    path = obj.get("path")
    # xenstored accepts only printable ASCII in paths: a control character (an escape
    # sequence meant for whoever reads the bundle) is no XenStore path.
    if not isinstance(path, str) or not path.startswith("/") or not _printable_ascii(path):
        raise malformed(where, f"a XenStore node has a bad path: {path!r:.80}")
    raw = obj.get("value_b64")
    value: bytes | None
    if raw is None:
        value = None
    elif isinstance(raw, str):
        try:
            value = base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise malformed(where, f"node {path!r:.80} has a value that is not base64") from None
    else:
        raise malformed(where, f"node {path!r:.80} has a value that is not a string")
    perms = obj.get("perms")
    owner: int | None = None
    default: str | None = None
    acl: tuple[tuple[int, str], ...] = ()
    if perms is not None:
        if not isinstance(perms, dict):
            raise malformed(where, f"node {path!r:.80} has permissions that are not an object")
        owner, default = perms.get("owner"), perms.get("default")
        if not _is_int(owner) or default not in PERM_LETTERS:
            raise malformed(where, f"node {path!r:.80} has bad permissions")
        entries = perms.get("acl", [])
        if not isinstance(entries, list):
            raise malformed(where, f"node {path!r:.80} has a bad permission list")
        parsed: list[tuple[int, str]] = []
        for entry in entries:
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not _is_int(entry[0])
                or entry[1] not in PERM_LETTERS
            ):
                raise malformed(where, f"node {path!r:.80} has a bad permission entry")
            parsed.append((int(entry[0]), str(entry[1])))
        acl = tuple(parsed)
    return StoredNode(
        path=path,
        value=value,
        owner=None if owner is None else int(owner),
        default=default,
        acl=acl,
        redacted=obj.get("redacted") is True,
    )


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def malformed(where: str, what: str) -> BundleError:
    """The error for a structurally wrong bundle member (always exit status 1)."""
    return BundleError(
        f"malformed bundle: {where}: {what}",
        "The bundle is damaged or was not written by grantscope; nothing was opened. "
        "Ask for a new export ('grantscope bundle export').",
    )
