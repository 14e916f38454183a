"""The redaction rules: which names and values a bundle must not carry, and the site's own.

The rules are data and small pure functions (:func:`name_rule`, :func:`value_rule`, the site
rules of ``--redact-rules FILE``); :class:`grantscope.bundle.redact.Redactor` applies them to the
collected members and removes every other copy of what they caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from grantscope.bundle.format import REDACTION_MARKER
from grantscope.errors import UsageError

RULES: tuple[str, ...] = (
    "name: vncpasswd, *passw*, pass/pwd (a word), *secret*, *token*, *_clipboard "
    "(any path component or JSON key): the whole value",
    "name: key material (key, keys, psk as a word in XenStore paths; privkey, private_key, "
    "passphrase, credential, apikey anywhere): the whole value",
    "value: password=, passwd=, pass=, pwd=, secret=, token=, key=, psk= and any NAME= or "
    "NAME: whose name says password/secret/token/credential (e.g. AWS_SECRET_ACCESS_KEY=): "
    "the assigned value",
    "value: user:password@ in URLs and iscsi:user:secret@ targets: the password",
    "value: Authorization Bearer/Basic tokens, cephx keys (AQ...==), AWS access key ids",
    "value: PEM private key blocks and SSH key blobs",
    "value: base64 text in which a value rule fires: the whole base64 run",
    "copy: every other occurrence, in any member or field, of a value already redacted "
    "(4+ characters; under 8 only as a whole word)",
)

_NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("name:vncpasswd", re.compile(r"vncpasswd", re.I)),
    ("name:password", re.compile(r"passw|(?:^|[-_.])(?:pass|pwd)(?:$|[-_.])", re.I)),
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

# In grantscope's own JSON (snapshots, probe logs) "key" is an ordinary field name
# ("page_key", a PageRef's "key"), so the whole-word key rule applies to XenStore paths only.
_JSON_KEY_WORD = re.compile(r"privkey|private[-_.]?key|passphrase|credential|api[-_.]?key", re.I)

# -- value rules: (rule, pattern, group holding the secret) ----------------------------------------
_SECRET_WORD = r"passw(?:or)?d|passwd|secret|token|credentials?|passphrase|api[-_]?key|auth[-_]?key"
_ASSIGNED = r"""("[^"\n]*"|'[^'\n]*'|[^\s,;&'"<>]+)"""
_VALUE_RULES: tuple[tuple[str, re.Pattern[str], int], ...] = (
    (
        "value:private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        0,
    ),
    (
        "value:ssh-key",
        re.compile(r"\b(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-\S+) (AAAA[A-Za-z0-9+/=]+)"),
        1,
    ),
    ("value:url-credentials", re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:([^\s/@]+)@"), 1),
    ("value:iscsi-chap", re.compile(r"\biscsi:[^\s:@/]*:([^\s@]+)@", re.I), 1),
    (
        "value:bearer",
        re.compile(
            r"(?:\bBearer\s+|\bAuthorization\s*[=:]\s*(?:(?:Basic|Token|Digest)\s+)?(?!Bearer\b))"
            r"([A-Za-z0-9._~+/-]{6,}=*)",
            re.I,
        ),
        1,
    ),
    # key=/psk= stop at ':' as well: a Ceph disk's params chain "key=AQB...==:mon_host=...".
    ("value:key", re.compile(r"(?<![A-Za-z0-9_-])(?:key|psk)\s*=\s*([^\s,;&:'\"<>]+)", re.I), 1),
    (
        "value:password",
        re.compile(
            r"(?<![A-Za-z0-9])(?:[A-Za-z0-9_.-]*(?:passw(?:or)?d|passwd)[A-Za-z0-9_.-]*|pass|pwd)"
            rf"[\"']?\s*[=:]\s*{_ASSIGNED}",
            re.I,
        ),
        1,
    ),
    (
        "value:secret",
        re.compile(
            rf"(?<![A-Za-z0-9])[A-Za-z0-9_.-]*(?:{_SECRET_WORD})[A-Za-z0-9_.-]*"
            rf"[\"']?\s*[=:]\s*{_ASSIGNED}",
            re.I,
        ),
        1,
    ),
    ("value:cephx-key", re.compile(r"(?<![A-Za-z0-9+/])AQ[A-D][A-Za-z0-9+/]{33,37}={0,2}"), 0),
    ("value:aws-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0),
)
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")

MIN_COPY_CHARS = 4  # shorter redacted values are not searched for elsewhere (too many collisions)
MIN_ANYWHERE_CHARS = 8  # shorter ones only as a whole word (never inside "12345")
_WORD_CHAR = "A-Za-z0-9"
_MARKER_BYTES = REDACTION_MARKER.encode()


def name_rule(
    path: str, *, json_key: bool = False, extra: Iterable[re.Pattern[str]] = ()
) -> str | None:
    """The rule a sensitive path (any ``/``-separated component) matches, or None.

    With ``json_key=True`` (a key of a JSON object) the key-material rule is the narrower one.
    ``extra`` are a site's own name patterns (rule ``site:name``).
    """
    components = [path] if json_key else path.split("/")
    extra = tuple(extra)
    for component in components:
        if not component:
            continue
        for rule, pattern in _NAME_RULES:
            if json_key and rule == "name:key-material":
                pattern = _JSON_KEY_WORD
            if pattern.search(component):
                return rule
        if any(p.search(component) for p in extra):
            return "site:name"
    return None


def value_rule(value: bytes) -> str | None:
    """The first value rule that fires anywhere in ``value``, or None."""
    text = value.decode("utf-8", "surrogateescape")
    for rule, pattern, _group in _VALUE_RULES:
        if pattern.search(text):
            return rule
    return None


@dataclass(frozen=True)
class SiteRules:
    """A site's own rules (``--redact-rules FILE``): name patterns and value patterns."""

    names: tuple[re.Pattern[str], ...] = ()
    values: tuple[re.Pattern[str], ...] = ()
    source: str = ""


def load_site_rules(path: str) -> SiteRules:
    """Read a rules file: one rule a line, ``name REGEX`` or ``value REGEX``; ``#`` comments.

    ``name`` matches a XenStore path component or JSON key (the whole value is redacted);
    ``value`` matches inside any text, and its first group (or the whole match when it has
    none) is what is redacted.  Matching is case-insensitive.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(
            f"cannot read the redaction rules file {path}: {getattr(err, 'strerror', None) or err}",
            "Give a UTF-8 text file with one 'name REGEX' or 'value REGEX' rule a line.",
        ) from None
    names: list[re.Pattern[str]] = []
    values: list[re.Pattern[str]] = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, regex = line.partition(" ")
        regex = regex.strip()
        if kind not in ("name", "value") or not regex:
            raise UsageError(
                f"{path} line {number}: not a rule: {line[:60]!r}",
                "Each rule is 'name REGEX' (a node or field name) or 'value REGEX' (text).",
            )
        try:
            pattern = re.compile(regex, re.I)
        except re.error as err:
            raise UsageError(
                f"{path} line {number}: bad regular expression ({err})",
                "Rules use Python regular expressions.",
            ) from None
        if pattern.search(""):
            raise UsageError(
                f"{path} line {number}: the pattern matches empty text",
                "It would redact everywhere; make it match something.",
            )
        (names if kind == "name" else values).append(pattern)
    return SiteRules(tuple(names), tuple(values), path)
