"""``bundle diff``: XenStore, grants, ports and findings changes between two bundles."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from bundle_corpus import fake

from grantscope.bundle.collect import Collector
from grantscope.bundle.diff import diff_bundles, format_diff
from grantscope.bundle.export import export_bundle
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.base import HvGrant, OwnPort

AFTER_DUMP = fake.HVDUMP.replace(
    "(XEN)       30 [0/0/  -   ]: s=2 n=0 x=0 d=1\n",
    "(XEN)       30 [0/0/  -   ]: s=3 n=0 x=0 d=1 p=5\n"
    "(XEN)       31 [0/0/  -   ]: s=2 n=0 x=0 d=1\n",
).replace(
    "(XEN) gnttab_usage_print_all ] done",
    "(XEN) [0x009]      0 0x1a009 0x00000001          0 0x01a009 0x19\n"
    "(XEN) gnttab_usage_print_all ] done",
)


def _pair(tmp_path: Path) -> tuple[str, str]:
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    export_bundle(str(a), fake.fake_collectors(pages=False))
    grants = dataclasses.replace(
        fake.GRANTS,
        hypervisor=(*fake.GRANTS.hypervisor, HvGrant(granter=1, ref=9, mapper=0, flags="0x19")),
    )
    events = dataclasses.replace(
        fake.EVENTS, ports=(*fake.EVENTS.ports, OwnPort(31, "interdomain", 1, 5, 2, "probe"))
    )
    after = fake.fake_collectors(
        pages=False,
        extra_nodes={"/local/domain/1/data/probe-gref": b"9"},
        grants=grants,
        events=events,
        hvdump=AFTER_DUMP,
        findings={"findings": []},
    )
    # Change one value and one permission too.
    for i, c in enumerate(after):
        if c.name == "xenstore":
            payload = c.fn()
            nodes = payload["xenstore.json"]["nodes"]
            for node in nodes:
                if node["path"] == "/local/domain/1/name":
                    node["value_b64"], node["value"] = "cmVuYW1lZA==", "renamed"
                if node["path"] == "/local/domain/1/device/vif/0/ring-ref":
                    node["perms"] = {"owner": 1, "default": "n", "acl": [[0, "b"]]}
            nodes[:] = [n for n in nodes if n["path"] != "/local/domain/1/data/binary"]
            after[i] = Collector("xenstore", lambda p=payload: p)
    export_bundle(str(b), after)
    return str(a), str(b)


def _section(result: dict, name: str) -> dict:
    return next(s for s in result["sections"] if s["section"] == name)


def test_diff_reports_xenstore_grants_ports_and_findings(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    result = diff_bundles(read_bundle(a), read_bundle(b))
    xs = _section(result, "xenstore")
    assert [i["key"] for i in xs["added"]] == ["/local/domain/1/data/probe-gref"]
    assert [i["key"] for i in xs["removed"]] == ["/local/domain/1/data/binary"]
    changed = {i["key"]: (i["before"], i["after"]) for i in xs["changed"]}
    assert changed["/local/domain/1/name"][1]["value"] == "renamed"
    assert changed["/local/domain/1/device/vif/0/ring-ref"] == (
        {"value": "8", "perms": "n1 r0"},
        {"value": "8", "perms": "n1 b0"},
    )
    assert len(changed) == 2
    grants = _section(result, "grants")
    assert [i["key"] for i in grants["added"]] == ["hv grant d1 ref 0x9 mapped by d0"]
    assert grants["removed"] == [] and grants["changed"] == []
    ports = _section(result, "ports")
    assert {i["key"] for i in ports["added"]} == {"hv port d0:31", "own port 31"}
    changed_ports = {i["key"]: i for i in ports["changed"]}
    assert changed_ports["hv port d0:30"]["after"] == {"state": 3, "remote": "d1:5", "virq": None}
    findings = _section(result, "findings")
    assert len(findings["removed"]) == 1 and findings["added"] == []
    assert result["changes"] == 4 + 1 + 3 + 1


def test_identical_bundles_have_no_changes(tmp_path: Path) -> None:
    a = tmp_path / "a.tar.gz"
    export_bundle(str(a), fake.fake_collectors())
    result = diff_bundles(read_bundle(str(a)), read_bundle(str(a)))
    assert result["changes"] == 0
    assert all(s["compared"] for s in result["sections"])


def test_a_section_missing_on_one_side_is_not_compared(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    export_bundle(str(a), fake.fake_collectors())
    export_bundle(str(b), [c for c in fake.fake_collectors() if c.name != "xenstore"])
    xs = _section(diff_bundles(read_bundle(str(a)), read_bundle(str(b))), "xenstore")
    assert xs["compared"] is False and "b_error" in xs and "a_error" not in xs
    assert xs["added"] == xs["removed"] == []


def test_cli_diff_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _pair(tmp_path)
    assert main(["bundle", "diff", a, b]) == 0
    out = capsys.readouterr().out
    assert "+ /local/domain/1/data/probe-gref" in out
    assert "- /local/domain/1/data/binary" in out
    assert "+ hv grant d1 ref 0x9 mapped by d0" in out
    assert "total: 9 change(s)" in out
    assert main(["bundle", "diff", a, b, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["changes"] == 9


def test_format_diff_marks_each_kind() -> None:
    text = format_diff(
        {
            "a": {"path": "a", "host": "h", "at": "t1"},
            "b": {"path": "b", "host": "h", "at": "t2"},
            "sections": [
                {
                    "section": "xenstore",
                    "compared": True,
                    "added": [{"key": "/n", "after": {"value": "1"}}],
                    "removed": [],
                    "changed": [{"key": "/c", "before": {"v": 1}, "after": {"v": 2}}],
                },
                {
                    "section": "findings",
                    "compared": False,
                    "a_error": "gone",
                    "added": [],
                    "removed": [],
                    "changed": [],
                },
            ],
            "changes": 2,
        }
    )
    assert "  + /n" in text and '  ~ /c  {"v": 1} -> {"v": 2}' in text
    assert "findings: not compared (A: gone)" in text
