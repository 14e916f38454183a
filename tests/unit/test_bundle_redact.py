"""Redaction: no planted secret survives in any member, byte for byte; --no-redact keeps them."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from bundle_corpus import fake

from grantscope.bundle.export import export_bundle
from grantscope.bundle.format import REDACTION_MARKER, escape_value
from grantscope.bundle.reader import read_bundle
from grantscope.bundle.redact import Redactor, name_rule, value_rule


def _secret_forms(secret: bytes) -> list[bytes]:
    """The ways a secret could appear in a member: raw, escaped (xenstore, JSON), base64."""
    forms = [secret, escape_value(secret).encode(), base64.b64encode(secret)]
    text = secret.decode()
    forms.append(json.dumps(text)[1:-1].encode())
    return forms


def test_no_secret_in_any_member_or_anywhere_in_the_archive(tmp_path: Path) -> None:
    target = tmp_path / "r.tar.gz"
    export_bundle(str(target), fake.fake_collectors(), include_pages=True)
    bundle = read_bundle(str(target))
    whole = gzip.decompress(target.read_bytes())  # every byte of every member and header
    for secret in fake.SECRETS:
        for form in _secret_forms(secret):
            assert form not in whole, f"secret {secret[:12]!r} found in the archive"
            for name, data in bundle.members.items():
                assert form not in data, f"secret {secret[:12]!r} found in {name}"


def test_manifest_lists_every_redacted_path_but_never_a_value(tmp_path: Path) -> None:
    target = tmp_path / "r.tar.gz"
    export_bundle(str(target), fake.fake_collectors())
    redaction = read_bundle(str(target)).manifest["redaction"]
    assert redaction["enabled"] is True and redaction["marker"] == REDACTION_MARKER
    xs_paths = {r["path"] for r in redaction["redacted"] if r["member"] == "xenstore.json"}
    assert xs_paths == set(fake.SECRET_PATHS)
    rules = {r["path"]: r["rule"] for r in redaction["redacted"] if r["member"] == "xenstore.json"}
    assert rules["/local/domain/1/data/set_clipboard"] == "name:clipboard"
    assert rules["/local/domain/1/data/login"] == "value:password"
    assert rules["/local/domain/1/data/private-key"] == "name:key-material"
    # The probe log quoted the VNC password: the copy pass removed it and says where.
    copies = [r for r in redaction["redacted"] if r["member"] == "probe-log.json"]
    assert copies and all(r["rule"] == "copy:redacted-value" for r in copies)
    assert any(r["path"].endswith("/result/value") for r in copies)
    text = json.dumps(redaction).encode()
    for secret in fake.SECRETS:
        assert secret not in text


def test_ordinary_nodes_are_untouched(tmp_path: Path) -> None:
    target = tmp_path / "r.tar.gz"
    export_bundle(str(target), fake.fake_collectors())
    nodes = {n["path"]: n for n in read_bundle(str(target)).json("xenstore.json")["nodes"]}
    assert nodes["/local/domain/0/backend/vfb/1/0/keymap"]["value"] == "en-us"
    assert nodes["/local/domain/1/device/vif/0/ring-ref"]["value"] == "8"
    assert "redacted" not in nodes["/local/domain/1/name"]
    assert nodes["/local/domain/1/data/agent/token"]["redacted"] is True


def test_no_redact_keeps_secrets_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "open.tar.gz"
    export_bundle(str(target), fake.fake_collectors(), redact=False)
    bundle = read_bundle(str(target))
    assert bundle.manifest["options"]["redact"] is False
    redaction = bundle.manifest["redaction"]
    assert redaction["enabled"] is False and "--no-redact" in redaction["note"]
    kept = {r["path"] for r in redaction["sensitive_kept"] if r["member"] == "xenstore.json"}
    assert kept == set(fake.SECRET_PATHS)
    nodes = {n["path"]: n for n in bundle.json("xenstore.json")["nodes"]}
    assert nodes[fake.SECRET_PATHS[0]]["value"] == fake.VNC_PASSWORD.decode()
    assert fake.VNC_PASSWORD in bundle.members["probe-log.json"]


@pytest.mark.parametrize(
    "path",
    [
        "/vm/uuid/vncpasswd",
        "/local/domain/3/data/report_clipboard",
        "/local/domain/3/data/Password",
        "/local/domain/3/secrets/a",
        "/local/domain/3/attr/api_token",
        "/local/domain/3/data/ssh-key",
        "/local/domain/3/data/keys/0",
        "/local/domain/3/data/privkey",
        "/local/domain/3/data/wifi-psk",
    ],
)
def test_sensitive_names(path: str) -> None:
    assert name_rule(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/local/domain/0/backend/vfb/1/0/keymap",
        "/local/domain/1/device/vif/0/ring-ref",
        "/local/domain/1/device/vkbd/0/state",
        "/local/domain/1/control/shutdown",
        "/local/domain/1/data/monkey",
    ],
)
def test_ordinary_names(path: str) -> None:
    assert name_rule(path) is None


def test_json_key_rule_leaves_grantscope_field_names_alone() -> None:
    assert name_rule("page_key", json_key=True) is None
    assert name_rule("key", json_key=True) is None
    assert name_rule("private_key", json_key=True) == "name:key-material"
    assert name_rule("vncpasswd", json_key=True) == "name:vncpasswd"


@pytest.mark.parametrize(
    "value",
    [
        b"password=abc",
        b"Passwd: abc",
        b"token = xyz",
        b"SECRET=1",
        fake.PEM,
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIfake user@host",
    ],
)
def test_sensitive_values(value: bytes) -> None:
    assert value_rule(value) is not None


@pytest.mark.parametrize("value", [b"4", b"/vm/uuid/vncpasswd", b"Connected", b"tokens"])
def test_ordinary_values(value: bytes) -> None:
    assert value_rule(value) is None


def test_json_tree_redacts_sensitive_keys_and_whole_sensitive_subtrees() -> None:
    red = Redactor()
    out = red.json_tree(
        "x.json",
        {"a": 1, "api_key": "k-123456", "secrets": {"one": "s1", "two": ["s2"]}, "page_key": "p"},
    )
    assert out == {
        "a": 1,
        "api_key": REDACTION_MARKER,
        "secrets": {"one": REDACTION_MARKER, "two": [REDACTION_MARKER]},
        "page_key": "p",
    }
    assert {r["path"] for r in red.records} == {"/api_key", "/secrets/one", "/secrets/two/0"}
    # Copies of values of 4+ characters go elsewhere; shorter ones do not (too likely to collide).
    assert red.copies("copy k-123456 and s1") == (f"copy {REDACTION_MARKER} and s1", True)
