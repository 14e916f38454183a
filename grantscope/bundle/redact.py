"""Redaction: what a bundle must not carry unless the user says ``--no-redact``.

Redaction works on the collected data before anything is serialized, field by field: every
XenStore value (its raw bytes; the ``value_b64`` and escaped ``value`` the bundle stores are
both computed afterwards from the redacted bytes), every string in a JSON member (a
``{"b64": ...}`` field is decoded, redacted and encoded again), every line of a text member
(console logs, ``xl info``, ``/proc/interrupts``).  It never replaces bytes in serialized JSON,
so a short secret cannot corrupt a number or a ``true``.

Two passes.  The first applies the rules:

* **name rules** (a XenStore path component or a JSON key): ``vncpasswd``, ``*passw*``,
  ``pass`` / ``pwd`` as a word, ``*secret*``, ``*token*``, ``*_clipboard``, key material
  (``key``/``keys``/``psk`` as a word in XenStore paths; ``privkey``, ``private_key``,
  ``passphrase``, ``credential``, ``apikey`` anywhere): the whole value goes;
* **value rules** (inside any text): ``password=``/``passwd=``/``pass=``/``secret=``/
  ``token=``/``key=`` assignments (also ``:``, quoted, and any identifier containing
  secret/token/password such as ``AWS_SECRET_ACCESS_KEY``), ``user:password@`` in URLs,
  iSCSI CHAP credentials (``iscsi:user:secret@...``), ``Authorization: Bearer``/``Basic``
  tokens, a bare cephx key (``AQB...==``), AWS access key ids, PEM private key blocks and SSH
  key blobs: only the secret part goes, the rest of the line stays readable;
* **base64 text**: a base64 run that decodes to text in which a value rule fires (cloud-init
  user-data, for example) goes whole;
* **site rules** from ``--redact-rules FILE`` (see :func:`load_site_rules`).

The second pass removes every other copy of a value the first pass redacted (4 characters or
more; a copy shorter than 8 must stand alone, not inside a longer word or number), from every
member, in every field.  The manifest lists each redaction (member, path or line, rule), never
the value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grantscope.bundle.format import REDACTION_MARKER, escape_value
from grantscope.bundle.redact_rules import (
    _BASE64_RUN,
    _MARKER_BYTES,
    _VALUE_RULES,
    _WORD_CHAR,
    MIN_ANYWHERE_CHARS,
    MIN_COPY_CHARS,
    RULES,
    SiteRules,
    load_site_rules,
    name_rule,
    value_rule,
)

# The rules live in redact_rules; callers import them from here too.
__all__ = ["RULES", "Redactor", "SiteRules", "load_site_rules", "name_rule", "value_rule"]

#: What a pass does to one string: the new text; each hit reported by its rule's name.
TextPass = Callable[[str, Callable[[str], None]], str]


@dataclass
class Redactor:
    """Redacts collected members field by field (see the module docstring).

    Use :meth:`redact` on every member (rules), then :meth:`finish` on every result (copies of
    redacted values).  With ``enabled=False`` nothing is changed, but every rule match is still
    recorded so the manifest can say which sensitive paths the bundle carries.
    """

    enabled: bool = True
    site: SiteRules = field(default_factory=SiteRules)
    records: list[dict[str, Any]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    _copy_re: re.Pattern[str] | None = field(default=None, repr=False)

    # -- recording ----------------------------------------------------------------------------
    def _record(self, member: str, where: dict[str, Any], rule: str) -> None:
        entry = {"member": member, **where, "rule": rule}
        if entry not in self.records[-8:]:  # one line, one rule: one record
            self.records.append(entry)

    def _remember(self, secret: str) -> None:
        secret = secret.strip()
        if len(secret) >= MIN_COPY_CHARS and secret != REDACTION_MARKER:
            self.secrets.add(secret)
            self._copy_re = None

    # -- text ---------------------------------------------------------------------------------
    def _rules(self) -> list[tuple[str, re.Pattern[str], int]]:
        site = [("site:value", p, 1 if p.groups else 0) for p in self.site.values]
        return [*_VALUE_RULES, *site]

    def text(self, text: str, report: Callable[[str], None]) -> str:
        """``text`` with every value rule applied (each hit reported by rule name)."""
        for rule, pattern, group in self._rules():
            if pattern.search(text) is None:
                continue
            text = self._apply(text, rule, pattern, group, report)
        return self._base64_runs(text, report)

    def _apply(
        self,
        text: str,
        rule: str,
        pattern: re.Pattern[str],
        group: int,
        report: Callable[[str], None],
    ) -> str:
        out: list[str] = []
        last = 0
        for m in pattern.finditer(text):
            start, end = m.span(group)
            secret = m.group(group)
            if start < 0 or not secret or secret == REDACTION_MARKER:
                continue
            if secret[0] in "\"'" and secret[-1] == secret[0] and len(secret) >= 2:
                start, end, secret = start + 1, end - 1, secret[1:-1]
                if not secret:
                    continue
            report(rule)
            self._remember(secret)
            if not self.enabled:
                continue
            out.append(text[last:start])
            out.append(REDACTION_MARKER)
            last = end
        if not self.enabled or not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def _base64_runs(self, text: str, report: Callable[[str], None]) -> str:
        """A base64 run whose decoded text trips a value rule goes whole (cloud-init data)."""
        if len(text) < 16:
            return text

        def replace(m: re.Match[str]) -> str:
            run = m.group(0)
            decoded = _decode_base64_text(run)
            if decoded is None:
                return run
            hits: list[str] = []
            self.text(decoded, hits.append)
            if not hits:
                return run
            report(f"value:base64({hits[0]})")
            self._remember(run)
            return REDACTION_MARKER if self.enabled else run

        return _BASE64_RUN.sub(replace, text)

    def copies(self, text: str) -> tuple[str, bool]:
        """``text`` without any copy of a value already redacted; and whether one was found."""
        if not self.enabled or not self.secrets or len(text) < MIN_COPY_CHARS:
            return text, False
        pattern = self._copy_pattern()
        if pattern.search(text) is None:
            return text, False
        return pattern.sub(REDACTION_MARKER, text), True

    def _copy_pattern(self) -> re.Pattern[str]:
        if self._copy_re is None:
            parts = []
            for secret in sorted(self.secrets, key=len, reverse=True):
                body = re.escape(secret)
                if len(secret) < MIN_ANYWHERE_CHARS:
                    body = rf"(?<![{_WORD_CHAR}]){body}(?![{_WORD_CHAR}])"
                parts.append(body)
            self._copy_re = re.compile("|".join(parts))
        return self._copy_re

    # -- members -------------------------------------------------------------------------------
    def redact(self, member: str, payload: Any) -> Any:
        """Pass 1: apply the rules to one member's payload (parsed data or raw bytes)."""
        if isinstance(payload, (bytes, bytearray, memoryview)):
            data = bytes(payload)
            if not _is_text_member(member):
                return data
            return self._text_member(member, data, self.text)
        if _is_xenstore(member, payload):
            nodes = [self.xenstore_node(member, node) for node in payload["nodes"]]
            return {**payload, "nodes": nodes}
        return self.json_tree(member, payload)

    def finish(self, member: str, payload: Any) -> Any:
        """Pass 2: remove every copy of a redacted value from one member's redacted payload."""
        if not self.enabled or not self.secrets:
            return payload
        if isinstance(payload, bytes):
            if _is_text_member(member):
                return self._text_member(member, payload, self._copies_reporting)
            return self._binary_copies(member, payload)
        if _is_xenstore(member, payload):
            return {**payload, "nodes": [self._node_copies(member, n) for n in payload["nodes"]]}
        return self._tree_copies(member, payload, "")

    def _copies_reporting(self, text: str, report: Callable[[str], None]) -> str:
        out, found = self.copies(text)
        if found:
            report("copy:redacted-value")
        return out

    def _text_member(
        self, member: str, data: bytes, fn: Callable[[str, Callable[[str], None]], str]
    ) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        lines = text.split("\n")
        changed = False
        for index, line in enumerate(lines):
            hits: list[str] = []
            new = fn(line, hits.append)
            for rule in hits:
                self._record(member, {"line": index + 1}, rule)
            if new != line:
                lines[index] = new
                changed = True
        if not changed:
            return data
        return "\n".join(lines).encode("utf-8", "surrogateescape")

    def _binary_copies(self, member: str, data: bytes) -> bytes:
        """Raw binary (page bytes): long copies overwritten in place, offsets kept."""
        out = data
        for secret in self.secrets:
            if len(secret) < MIN_ANYWHERE_CHARS:
                continue
            raw = secret.encode("utf-8", "surrogateescape")
            if raw in out:
                out = out.replace(raw, b"X" * len(raw))
                self._record(member, {"path": "*"}, "copy:redacted-value")
        return out

    # -- XenStore --------------------------------------------------------------------------------
    def xenstore_node(self, member: str, node: dict[str, Any]) -> dict[str, Any]:
        """Pass 1 on one encoded XenStore node (see format.node_to_json)."""
        path = str(node.get("path", ""))
        value = _node_value(node)
        rule = name_rule(path, extra=self.site.names)
        if rule is not None:
            self._record(member, {"path": path}, rule)
            if value:
                self._remember(value.decode("utf-8", "surrogateescape"))
            return self._set_value(node, _MARKER_BYTES if value is not None else None)
        if not value:
            return node
        hits: list[str] = []
        text = value.decode("utf-8", "surrogateescape")
        new = self.text(text, hits.append)
        for hit in hits:
            self._record(member, {"path": path}, hit)
        if new == text:
            return node
        return self._set_value(node, new.encode("utf-8", "surrogateescape"))

    def _node_copies(self, member: str, node: dict[str, Any]) -> dict[str, Any]:
        value = _node_value(node)
        if not value or value == _MARKER_BYTES:
            return node
        text = value.decode("utf-8", "surrogateescape")
        new, found = self.copies(text)
        if not found:
            return node
        self._record(member, {"path": str(node.get("path", ""))}, "copy:redacted-value")
        return self._set_value(node, new.encode("utf-8", "surrogateescape"))

    def _set_value(self, node: dict[str, Any], value: bytes | None) -> dict[str, Any]:
        """The node with a redacted value: both stored encodings are made from the new bytes."""
        if not self.enabled:
            return node
        out = dict(node)
        out["value_b64"] = None if value is None else base64.b64encode(value).decode("ascii")
        out["value"] = None if value is None else escape_value(value)
        out["redacted"] = True
        return out

    # -- JSON trees ------------------------------------------------------------------------------
    def json_tree(self, member: str, obj: Any, path: str = "") -> Any:
        """Pass 1 on a JSON-ready tree: values under sensitive keys, secrets in strings."""
        return self._walk(member, obj, path, self.text, self._entry_by_rules)

    def _entry_by_rules(self, member: str, key: Any, value: Any, path: str) -> tuple[Any, Any]:
        sub = f"{path}/{key}"
        rule = name_rule(str(key), json_key=True, extra=self.site.names)
        if rule is not None:
            return key, self._redact_all(member, value, sub, rule)
        return key, self.json_tree(member, value, sub)

    def _walk(self, member: str, obj: Any, path: str, text: TextPass,
              entry: Callable[[str, Any, Any, str], tuple[Any, Any]]) -> Any:
        """The walk both passes make over a JSON tree: a ``{"b64": ...}`` field and every
        string go through ``text`` (each hit recorded at its path), each entry of any other
        dict through ``entry`` (which recurses), lists item by item."""
        if isinstance(obj, dict):
            blob = _b64_field(obj)
            if blob is not None:
                return self._b64_tree(member, blob, path, text)
            return dict(entry(member, key, value, path) for key, value in obj.items())
        if isinstance(obj, (list, tuple)):
            return [self._walk(member, item, f"{path}/{i}", text, entry)
                    for i, item in enumerate(obj)]
        if isinstance(obj, str):
            hits: list[str] = []
            new = text(obj, hits.append)
            for hit in hits:
                self._record(member, {"path": path or "/"}, hit)
            return new
        return obj

    def _b64_tree(
        self,
        member: str,
        blob: bytes,
        path: str,
        fn: TextPass,
    ) -> dict[str, str]:
        text = blob.decode("utf-8", "surrogateescape")
        hits: list[str] = []
        new = fn(text, hits.append)
        for hit in hits:
            self._record(member, {"path": f"{path}/b64"}, hit)
        if new == text or not self.enabled:
            return {"b64": base64.b64encode(blob).decode("ascii")}
        encoded = new.encode("utf-8", "surrogateescape")
        return {"b64": base64.b64encode(encoded).decode("ascii")}

    def _redact_all(self, member: str, obj: Any, path: str, rule: str) -> Any:
        if isinstance(obj, dict):
            return {k: self._redact_all(member, v, f"{path}/{k}", rule) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self._redact_all(member, v, f"{path}/{i}", rule) for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, bool):
            return obj  # "no value" and flags are not secrets
        self._record(member, {"path": path}, rule)
        self._remember(str(obj))
        return REDACTION_MARKER if self.enabled else obj

    def _tree_copies(self, member: str, obj: Any, path: str) -> Any:
        return self._walk(member, obj, path, self._copies_reporting, self._entry_copies)

    def _entry_copies(self, member: str, key: Any, value: Any, path: str) -> tuple[Any, Any]:
        new_key, found = self.copies(str(key))
        if found:
            self._record(member, {"path": f"{path}/*"}, "copy:redacted-value")
        return new_key if found else key, self._tree_copies(member, value, f"{path}/{key}")

    # -- manifest --------------------------------------------------------------------------------
    def manifest_section(self) -> dict[str, Any]:
        """The manifest's ``redaction`` object (never a secret: member, path or line, rule)."""
        section: dict[str, Any] = {
            "enabled": self.enabled,
            "marker": REDACTION_MARKER,
            "rules": list(RULES),
        }
        if self.site.source:
            section["site_rules"] = {
                "file": self.site.source,
                "names": len(self.site.names),
                "values": len(self.site.values),
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


def _is_text_member(name: str) -> bool:
    return name.endswith(".txt")


def _is_xenstore(member: str, payload: Any) -> bool:
    return (
        member == "xenstore.json"
        and isinstance(payload, dict)
        and isinstance(payload.get("nodes"), list)
    )


def _node_value(node: dict[str, Any]) -> bytes | None:
    raw = node.get("value_b64")
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64_field(obj: dict[str, Any]) -> bytes | None:
    """The bytes of a ``{"b64": ...}`` field (how the collectors store bytes in JSON)."""
    if len(obj) != 1 or not isinstance(obj.get("b64"), str):
        return None
    try:
        return base64.b64decode(obj["b64"], validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode_base64_text(run: str) -> str | None:
    """``run`` decoded, when it is base64 of (mostly printable) text; None otherwise."""
    if len(run) % 4:
        return None
    try:
        raw = base64.b64decode(run, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
    return text if printable >= 0.9 * len(text) else None
