"""Redaction: what a bundle must not carry unless the user says ``--no-redact``.

XenStore holds secrets in the open: VNC passwords (``/vm/<uuid>/vncpasswd``, the vfb backend's
``vncpasswd``), guest clipboards (``data/set_clipboard``, ``data/report_clipboard``), and whatever
guest agents write.  xen-bugtool filters only the clipboard keys; this module also removes:

* any node or JSON member whose name (any path component) looks sensitive: ``vncpasswd``,
  ``*passw*``, ``*secret*``, ``*token*``, ``*_clipboard``, and key material names
  (``key``/``keys``/``psk`` as a whole word, ``privkey``, ``private_key``, ``passphrase``,
  ``credential``, ``apikey``);
* any value that looks sensitive: it assigns a password/passwd/secret/token
  (``password=...``, ``token: ...``), or holds key material (a PEM private key block, an
  OpenSSH key).

Then, as a second line of defence, every redacted value of 4 bytes or more is scrubbed,
byte for byte, from every other member (a probe log or a finding might quote it), in its raw
form and as it appears escaped inside JSON or by ``xenstore-ls``.  Every redaction is recorded
(member and path, never the value).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from grantscope.bundle.format import REDACTION_MARKER, escape_value

RULES: tuple[str, ...] = (
    "name: vncpasswd, *passw*, *secret*, *token*, *_clipboard (any path component)",
    "name: key material (key, keys, psk as a word in XenStore paths; privkey, private_key, "
    "passphrase, credential, apikey anywhere)",
    "value: assigns a password, passwd, secret or token (e.g. 'password=...', 'token: ...')",
    "value: key material (PEM private key block, OpenSSH key)",
    "scrub: every redacted value of 4+ bytes removed from all other members, byte for byte",
)

_NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("name:vncpasswd", re.compile(r"vncpasswd", re.I)),
    ("name:password", re.compile(r"passw", re.I)),
    ("name:secret", re.compile(r"secret", re.I)),
    ("name:token", re.compile(r"token", re.I)),
    ("name:clipboard", re.compile(r"_clipboard$", re.I)),
    (
        "name:key-material",
        re.compile(
            r"(?:^|[-_.])(?:keys?|psk)(?:$|[-_.])|privkey|private[-_.]?key|passphrase|credential"
            r"|api[-_.]?key",
            re.I,
        ),
    ),
)

_VALUE_RULES: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    # An assignment ("password=...", "token: ...") rather than the bare word, so a value that
    # merely names a path (".../vncpasswd") is not mistaken for the secret itself.
    ("value:password", re.compile(rb"passw(?:or)?d\s*[=:]\s*\S", re.I)),
    ("value:secret", re.compile(rb"secret\s*[=:]\s*\S", re.I)),
    ("value:token", re.compile(rb"token\s*[=:]\s*\S", re.I)),
    (
        "value:key-material",
        re.compile(
            rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-\S+)"
            rb" AAAA",
        ),
    ),
)

MIN_SCRUB_BYTES = 4
_MARKER_BYTES = REDACTION_MARKER.encode()


# In grantscope's own JSON (snapshots, probe logs) "key" is an ordinary field name
# ("page_key", a PageRef's "key"), so the whole-word key rule applies to XenStore paths only.
_JSON_KEY_WORD = re.compile(r"privkey|private[-_.]?key|passphrase|credential|api[-_.]?key", re.I)


def name_rule(path: str, *, json_key: bool = False) -> str | None:
    """The rule a sensitive path (any ``/``-separated component) matches, or None.

    With ``json_key=True`` (a key of a JSON object) the key-material rule is the narrower one.
    """
    components = [path] if json_key else path.split("/")
    for component in components:
        if not component:
            continue
        for rule, pattern in _NAME_RULES:
            if json_key and rule == "name:key-material":
                pattern = _JSON_KEY_WORD
            if pattern.search(component):
                return rule
    return None


def value_rule(value: bytes) -> str | None:
    """The rule a sensitive value matches, or None."""
    for rule, pattern in _VALUE_RULES:
        if pattern.search(value):
            return rule
    return None


@dataclass
class Redactor:
    """Collects what was redacted while members are prepared, then scrubs the rest.

    With ``enabled=False`` nothing is changed, but every match is still recorded so the
    manifest can say which sensitive paths the bundle carries.
    """

    enabled: bool = True
    records: list[dict[str, str]] = field(default_factory=list)
    secrets: set[bytes] = field(default_factory=set)

    def _record(self, member: str, path: str, rule: str) -> None:
        self.records.append({"member": member, "path": path, "rule": rule})

    def xenstore_node(
        self, member: str, node: dict[str, Any], value: bytes | None
    ) -> dict[str, Any]:
        """Redact one encoded XenStore node (see format.node_to_json) given its raw value."""
        path = str(node.get("path", ""))
        rule = name_rule(path)
        if rule is None and value is not None:
            rule = value_rule(value)
        if rule is None:
            return node
        self._record(member, path, rule)
        if not self.enabled:
            return node
        if value:
            self.secrets.add(value)
        out = dict(node)
        if value is not None:
            out["value_b64"] = base64.b64encode(_MARKER_BYTES).decode("ascii")
            out["value"] = REDACTION_MARKER
        out["redacted"] = True
        return out

    def json_tree(self, member: str, obj: Any, path: str = "") -> Any:
        """Redact a JSON-ready tree: values under sensitive keys and sensitive strings."""
        if isinstance(obj, dict):
            result: dict[str, Any] = {}
            for key, value in obj.items():
                sub = f"{path}/{key}"
                rule = name_rule(str(key), json_key=True)
                if rule is not None and not isinstance(value, dict | list):
                    self._record(member, sub, rule)
                    if self.enabled:
                        self._remember(value)
                        result[key] = REDACTION_MARKER
                        continue
                elif rule is not None:
                    # A whole sensitive subtree: redact every leaf under it.
                    result[key] = self._redact_all(member, value, sub, rule)
                    continue
                result[key] = self.json_tree(member, value, sub)
            return result
        if isinstance(obj, list):
            return [
                self.json_tree(member, item, f"{path}/{index}") for index, item in enumerate(obj)
            ]
        if isinstance(obj, str):
            rule = value_rule(obj.encode("utf-8", "surrogatepass"))
            if rule is not None:
                self._record(member, path or "/", rule)
                if self.enabled:
                    self._remember(obj)
                    return REDACTION_MARKER
        return obj

    def _redact_all(self, member: str, obj: Any, path: str, rule: str) -> Any:
        if isinstance(obj, dict):
            return {k: self._redact_all(member, v, f"{path}/{k}", rule) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._redact_all(member, v, f"{path}/{i}", rule) for i, v in enumerate(obj)]
        self._record(member, path, rule)
        if not self.enabled:
            return obj
        self._remember(obj)
        return REDACTION_MARKER

    def _remember(self, value: Any) -> None:
        if isinstance(value, str):
            self.secrets.add(value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, bytes):
            self.secrets.add(value)

    def scrub(self, member: str, data: bytes) -> bytes:
        """Replace every remembered secret in ``data`` (raw, JSON-escaped, xenstore-escaped)."""
        if not self.enabled or not self.secrets:
            return data
        out = data
        for form in self._forms():
            if form in out:
                out = out.replace(form, _MARKER_BYTES)
        if out != data:
            self._record(member, "*", "scrub:secret-value")
        return out

    def _forms(self) -> Iterable[bytes]:
        forms: set[bytes] = set()
        for secret in self.secrets:
            if len(secret) < MIN_SCRUB_BYTES:
                continue
            forms.add(secret)
            forms.add(escape_value(secret).encode("ascii"))
            try:
                text = secret.decode("utf-8")
            except UnicodeDecodeError:
                continue
            forms.add(json.dumps(text)[1:-1].encode("ascii"))
            forms.add(json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"))
        forms.discard(b"")
        # Longest first, so a secret that contains another is replaced whole.
        return sorted(forms, key=len, reverse=True)

    def manifest_section(self) -> dict[str, Any]:
        """The manifest's ``redaction`` object."""
        section: dict[str, Any] = {
            "enabled": self.enabled,
            "marker": REDACTION_MARKER,
            "rules": list(RULES),
        }
        if self.enabled:
            section["redacted"] = list(self.records)
        else:
            section["note"] = (
                "redaction was turned off with --no-redact: this bundle may carry passwords, "
                "clipboards and keys in the clear; the paths below matched a redaction rule"
            )
            section["sensitive_kept"] = list(self.records)
        return section
