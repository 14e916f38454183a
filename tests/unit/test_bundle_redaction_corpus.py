"""The redaction corpus (tests/unit/bundle_corpus/planted.py) through a whole export.

Over 25 secrets of every class the redactor knows, planted in a XenStore tree and in console
text, plain, inside longer values, base64-encoded and short: none may be left anywhere in the
archive, raw, hex or base64 at any alignment; the bundle must still open, inspect and diff; and
ordinary values around them must come through unchanged.  The same corpus runs on real Xen in
tests/xen/test_bundle_redaction.py.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from bundle_corpus import fake, planted

from grantscope.bundle.check import inspect_bundle
from grantscope.bundle.collect import Collector
from grantscope.bundle.diff import diff_bundles
from grantscope.bundle.export import export_bundle
from grantscope.bundle.format import REDACTION_MARKER
from grantscope.bundle.reader import read_bundle
from grantscope.bundle.redact import load_site_rules
from grantscope.cli import main
from grantscope.errors import UsageError
from grantscope.host.replay import ReplayHost

BASE = "/local/domain/1/data/gs-corpus"


def _corpus_nodes() -> dict[str, bytes]:
    nodes = {f"{BASE}/{p.rel}": p.value for p in planted.PLANTS}
    nodes.update({f"{BASE}/{rel}": value for rel, value in planted.ORDINARY.items()})
    return nodes


def _export(tmp_path: Path, name: str = "corpus.tar.gz", **kwargs: object) -> Path:
    target = tmp_path / name
    collectors = fake.fake_collectors(
        extra_nodes=_corpus_nodes(), hvdump=fake.HVDUMP + planted.CONSOLE_TEXT
    )
    collectors.append(Collector("dmesg", lambda: {"xl-dmesg.txt": planted.CONSOLE_TEXT.encode()}))
    export_bundle(str(target), collectors, include_pages=True, **kwargs)  # type: ignore[arg-type]
    return target


def test_the_corpus_is_big_enough() -> None:
    assert len(planted.all_secrets()) >= 25
    assert len(planted.PLANTS) >= 25


def test_no_planted_secret_survives_in_any_form(tmp_path: Path) -> None:
    target = _export(tmp_path)
    whole = gzip.decompress(target.read_bytes())  # every byte of every member and header
    for secret in planted.all_secrets():
        for form in planted.forms(secret):
            assert form not in whole, f"{secret!r} left in the archive as {form!r}"


def test_the_redacted_bundle_opens_inspects_and_diffs_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _export(tmp_path, "a.tar.gz"), _export(tmp_path, "b.tar.gz")
    summary = inspect_bundle(str(a))
    assert summary["ok"] is True
    host = ReplayHost.open(str(a))
    assert host.read(f"{BASE}/data/password") == REDACTION_MARKER.encode()
    assert (
        host.read(f"{BASE}/data/login")
        == f"user=root password={REDACTION_MARKER} shell=/bin/sh".encode()
    )
    params = host.read(f"{BASE}/backend/vbd/51712/params")
    assert params == f"rbd:pool/img:id=admin:key={REDACTION_MARKER}:mon_host=10.0.0.1".encode()
    diff = diff_bundles(read_bundle(str(a)), read_bundle(str(b)))
    assert all(s["compared"] for s in diff["sections"] if s["section"] in ("xenstore", "grants"))
    assert diff["changes"] == 0
    for argv in (["bundle", "inspect", str(a)], ["bundle", "diff", str(a), str(b)]):
        assert main(argv) == 0
    capsys.readouterr()


def test_ordinary_values_and_numbers_are_untouched(tmp_path: Path) -> None:
    bundle = read_bundle(str(_export(tmp_path)))
    nodes = {n["path"]: n for n in bundle.json("xenstore.json")["nodes"]}
    for rel, value in planted.ORDINARY.items():
        node = nodes[f"{BASE}/{rel}"]
        assert base64.b64decode(node["value_b64"]) == value and "redacted" not in node
    lines = bundle.members["xl-dmesg.txt"].decode().splitlines()
    assert lines[-1] == "(XEN) pid 12345 at 1234 true false"
    assert bundle.json("grants.json")["processes"][0]["pid"] == 4242


def test_both_encodings_of_a_redacted_xenstore_value_agree(tmp_path: Path) -> None:
    for node in read_bundle(str(_export(tmp_path))).json("xenstore.json")["nodes"]:
        if node.get("redacted"):
            raw = base64.b64decode(node["value_b64"])
            assert REDACTION_MARKER.encode() in raw
            assert REDACTION_MARKER in node["value"]


def test_a_four_character_secret_never_corrupts_numbers_or_booleans(tmp_path: Path) -> None:
    target = tmp_path / "short.tar.gz"
    extra = {"/vm/x/vncpasswd": b"1234", "/local/domain/1/data/vnc/passwd": b"true"}
    export_bundle(str(target), fake.fake_collectors(extra_nodes=extra, hvdump="(XEN) 12345\n"))
    host = ReplayHost.open(str(target))  # the old byte scrub made this invalid JSON
    assert host.grants().processes[0].pid == 4242
    bundle = host.bundle
    assert b'"writable": true' in bundle.members["grants.json"]
    assert bundle.members["hvdump.txt"] == b"(XEN) 12345\n"


def test_manifest_names_each_redaction_never_the_secret(tmp_path: Path) -> None:
    manifest = read_bundle(str(_export(tmp_path))).manifest
    records = manifest["redaction"]["redacted"]
    paths = {r["path"] for r in records if r["member"] == "xenstore.json"}
    for plant in planted.PLANTS:
        assert f"{BASE}/{plant.rel}" in paths, plant.rel
    dmesg = {(r["line"], r["rule"]) for r in records if r["member"] == "xl-dmesg.txt"}
    assert (1, "value:password") in dmesg and (3, "value:bearer") in dmesg
    assert (5, "copy:redacted-value") in dmesg
    text = json.dumps(manifest)
    for secret in planted.all_secrets():
        assert secret not in text


def test_site_rules_add_names_and_values(tmp_path: Path) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text("# our own\nname ^asset-tag$\nvalue employee-id (E\\d{6})\n")
    extra = {
        "/local/domain/1/data/asset-tag": b"AT-000-777",
        "/local/domain/1/data/owner": b"employee-id E123456",
    }
    target = tmp_path / "site.tar.gz"
    export_bundle(
        str(target),
        fake.fake_collectors(extra_nodes=extra),
        site_rules=load_site_rules(str(rules)),
    )
    whole = gzip.decompress(target.read_bytes())
    assert b"AT-000-777" not in whole and b"E123456" not in whole
    manifest = read_bundle(str(target)).manifest["redaction"]
    assert manifest["site_rules"] == {"file": str(rules), "names": 1, "values": 1}
    assert {
        "member": "xenstore.json",
        "path": "/local/domain/1/data/owner",
        "rule": "site:value",
    } in (manifest["redacted"])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("bogus rule\n", "not a rule"),
        ("value (\n", "bad regular expression"),
        ("name .*\n", "empty"),
    ],
)
def test_bad_site_rules_are_explained(tmp_path: Path, text: str, says: str) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text(text)
    with pytest.raises(UsageError, match=says):
        load_site_rules(str(rules))
    with pytest.raises(UsageError, match="cannot read"):
        load_site_rules(str(tmp_path / "absent"))


def test_cli_redact_rules_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("name (\n")
    target = tmp_path / "never.tar.gz"
    assert main(["bundle", "export", "-o", str(target), "--redact-rules", str(bad)]) == 2
    assert "line 1: bad regular expression" in capsys.readouterr().err
    assert not target.exists()
    good = tmp_path / "good.txt"
    good.write_text("value hostname-secret-(\\w+)\n")
    assert main(["bundle", "export", "-o", str(target), "--redact-rules", str(good), "--json"]) in (
        0,
        1,
    )
    capsys.readouterr()
    assert read_bundle(str(target)).manifest["redaction"]["site_rules"]["values"] == 1
