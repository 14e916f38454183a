"""Export honesty: one top-level directory in the archive, and exit 1 for a partial bundle."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from bundle_corpus import fake
from bundle_corpus.hostile import _file, gz, manifest_for, tar_bytes

from grantscope.bundle import collectors as collectors_module
from grantscope.bundle.collect import Collector, Unavailable
from grantscope.bundle.completeness import expected_collectors, partial_failures
from grantscope.bundle.export import export_bundle, root_dir_name
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.replay import ReplayHost


def test_members_sit_under_one_directory_named_after_the_bundle(tmp_path: Path) -> None:
    target = tmp_path / "site-a 2026.tar.gz"
    export_bundle(str(target), fake.fake_collectors())
    with tarfile.open(target, "r:gz") as archive:
        names = archive.getnames()
    assert names[0] == "site-a_2026/manifest.json"
    assert all(n.startswith("site-a_2026/") for n in names)
    bundle = read_bundle(str(target))
    assert "xenstore.json" in bundle.members and "pages/0000.bin" in bundle.members
    assert bundle.manifest["root_dir"] == "site-a_2026"


@pytest.mark.parametrize(
    ("target", "root"),
    [
        ("b.tar.gz", "b"),
        ("x/y/grantscope-bundle-h-20261202T000000Z.tgz", "grantscope-bundle-h-20261202T000000Z"),
        ("..tar.gz", "grantscope-bundle"),
        ("évil name.tar.gz", "vil_name"),
        ("a" * 100 + ".tar.gz", "a" * 64),
    ],
)
def test_root_dir_names_are_safe_member_components(target: str, root: str) -> None:
    assert root_dir_name(target) == root


def test_old_flat_bundles_still_open(tmp_path: Path) -> None:
    listed = {"host.json": b'{"hostname": "old"}'}
    members = [_file("manifest.json", manifest_for(listed))]
    members += [_file(n, d) for n, d in listed.items()]
    path = tmp_path / "flat.tar.gz"
    path.write_bytes(gz(tar_bytes(members)))
    assert read_bundle(str(path)).json("host.json") == {"hostname": "old"}
    ReplayHost.open(str(path)).close()


def test_two_roots_are_not_a_bundle(tmp_path: Path) -> None:
    listed = {"host.json": b"{}"}
    members = [_file("a/manifest.json", manifest_for(listed)), _file("b/host.json", b"{}")]
    path = tmp_path / "two.tar.gz"
    path.write_bytes(gz(tar_bytes(members)))
    assert main(["bundle", "inspect", str(path)]) == 1


def test_expected_collectors_follow_the_role() -> None:
    assert "hvdump" in expected_collectors("dom0") and "hvdump" not in expected_collectors("domU")
    assert "xenstore" in expected_collectors("domU")
    assert expected_collectors("none") == {"host", "interrupts", "processes"}
    manifest: dict[str, Any] = {
        "host": {"role": "domU"},
        "collectors": [
            {"name": "domains", "status": "unavailable"},  # no xl in a domU: expected
            {"name": "xenstore", "status": "unavailable"},
            {"name": "probe_log", "status": "timeout"},  # a timeout is a failure anywhere
        ],
    }
    assert [c["name"] for c in partial_failures(manifest)] == ["xenstore", "probe_log"]


def _dom0_without_xenstore() -> list[Collector]:
    def no_xenstore() -> Any:
        raise Unavailable("no XenStore here: xenstored is not running")

    host = {"hostname": "h", "role": "dom0", "xen_version": "4.17"}
    return [
        Collector("host", lambda: {"host.json": host}),
        Collector("xenstore", no_xenstore),
    ]


def test_a_partial_dom0_export_exits_1_but_writes_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        collectors_module, "standard_collectors", lambda s: _dom0_without_xenstore()
    )
    target = tmp_path / "p.tar.gz"
    assert main(["bundle", "export", "-o", str(target)]) == 1
    out = capsys.readouterr()
    assert read_bundle(str(target)).host["role"] == "dom0"  # written all the same
    assert "partial bundle: 1 collector(s) a dom0 host should support failed: xenstore" in out.err
    assert "--allow-partial" in out.err and "xenstored is not running" in out.out
    assert main(["bundle", "export", "-o", str(target), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["partial"] == ["xenstore"] and doc["path"] == str(target)
    assert main(["bundle", "export", "-o", str(target), "--allow-partial"]) == 0
    assert "accepted (--allow-partial)" in capsys.readouterr().err
    assert main(["bundle", "export", "-o", str(target), "--allow-partial", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_tar_extraction_makes_one_directory(tmp_path: Path) -> None:
    target = tmp_path / "one.tar.gz"
    export_bundle(str(target), fake.fake_collectors(pages=False))
    out = tmp_path / "x"
    out.mkdir()
    with tarfile.open(fileobj=io.BytesIO(target.read_bytes()), mode="r:gz") as archive:
        archive.extractall(out)  # our own archive, written just above
    assert [p.name for p in out.iterdir()] == ["one"]
    assert (out / "one" / "manifest.json").is_file()
