"""Export -> inspect -> open (replay) on a fake collector set; failing collectors; atomic writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest
from bundle_corpus import fake

from grantscope.bundle.check import inspect_bundle
from grantscope.bundle.collect import Collector
from grantscope.bundle.export import export_bundle
from grantscope.bundle.format import REDACTION_MARKER, BundleError
from grantscope.bundle.reader import read_bundle
from grantscope.errors import UsageError
from grantscope.host.base import HvPort
from grantscope.host.replay import ReplayHost


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    target = tmp_path / "b.tar.gz"
    export_bundle(str(target), fake.fake_collectors(), include_pages=True)
    return target


def test_manifest_records_schema_host_members_and_collectors(exported: Path) -> None:
    bundle = read_bundle(str(exported))
    m = bundle.manifest
    assert m["format"] == "grantscope-bundle" and m["schema_version"] == 1
    assert m["grantscope_version"] and m["host"]["hostname"] == "labhost"
    assert m["started_at"] <= m["finished_at"]
    assert m["options"] == {"include_pages": True, "redact": True}
    names = {e["name"] for e in m["members"]}
    assert names == set(bundle.members) and "manifest.json" not in names
    for entry in m["members"]:
        data = bundle.members[entry["name"]]
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    statuses = {c["name"]: c["status"] for c in m["collectors"]}
    assert set(statuses.values()) == {"ok"} and "xenstore" in statuses
    assert {c["name"]: c["members"] for c in m["collectors"]}["pages"] == [
        "pages.json",
        "pages/0000.bin",
    ]


def test_archive_is_plain_files_with_the_manifest_first(exported: Path) -> None:
    with tarfile.open(exported, "r:gz") as archive:
        infos = archive.getmembers()
    # One top-level directory named after the file: 'tar xzf' never spills into the cwd.
    root = exported.name.removesuffix(".tar.gz")
    assert infos[0].name == f"{root}/manifest.json"
    assert all(i.isreg() and i.name.startswith(f"{root}/") for i in infos)
    assert oct(exported.stat().st_mode & 0o777) == "0o600"


def test_inspect_summarizes_and_verifies(exported: Path) -> None:
    summary = inspect_bundle(str(exported))
    assert summary["ok"] is True and summary["integrity"]["problems"] == []
    assert summary["host"]["hostname"] == "labhost"
    assert summary["redaction"]["enabled"] is True
    assert (
        "xenstore.json:/local/domain/0/backend/vfb/1/0/vncpasswd (name:vncpasswd)"
        in (summary["redaction"]["redacted_paths"])
    )


def test_replay_host_serves_what_was_exported(exported: Path) -> None:
    host = ReplayHost.open(str(exported))
    info = host.info()
    assert info.backend == "replay" and info.readonly is True
    assert "labhost" in info.label and host.bundle.manifest["finished_at"] in info.label
    assert info.domid == 0 and info.is_dom0 and info.xen_version == "4.17.7"
    assert host.devices() is None
    # XenStore: structure, raw bytes (also non-UTF-8), permissions.
    assert list(host.list("/")) == ["local", "vm"]
    assert list(host.list("/local/domain")) == ["0", "1"]
    assert host.read("/local/domain/1/data/binary") == fake.BINARY_VALUE
    assert host.read("/local/domain/1/device/vif/0/ring-ref") == b"8"
    assert host.read("/local/domain/7") is None and host.perms("/nope") is None
    assert host.perms("/local/domain/1/name") == fake.P1
    assert str(host.perms("/local/domain/1/name")) == "n1 r0"
    # A redacted node still exists, and reads as the marker.
    assert host.read(fake.SECRET_PATHS[0]) == REDACTION_MARKER.encode()
    expected = [
        (p, v, perms)
        for p, v, perms in fake.xenstore_nodes()
        if p not in fake.SECRET_PATHS and p.startswith("/local/domain/1")
    ]
    got = [
        (n.path, n.value, n.perms)
        for n in host.xenstore_snapshot("/local/domain/1")
        if n.path not in fake.SECRET_PATHS
    ]
    assert got == expected
    # Snapshots come back equal, field for field.
    assert host.grants() == fake.GRANTS
    # events.json had no hypervisor port table (the live host had not dumped 'e'); the
    # bundle's raw hvdump.txt fills it: dom0's VIRQ port 1 and its port 30 unbound for d1.
    assert fake.EVENTS.hypervisor is None
    assert host.events() == dataclasses.replace(fake.EVENTS, hypervisor=(
        HvPort(domid=0, port=1, state="virq", remote_domid=None, remote_port=None,
               pending=False, masked=False, vcpu=0, detail="virq 0"),
        HvPort(domid=0, port=30, state="unbound", remote_domid=1, remote_port=None,
               pending=False, masked=False, vcpu=0, detail="")))
    assert host.pages() == fake.PAGES
    assert host.read_page("offer:1:9") == fake.PAGE
    with pytest.raises(UsageError):
        host.read_page("grant:9:9")
    assert host.watch("/local").get(0.01) is None


def test_replay_of_a_bundle_without_snapshots_uses_the_raw_dump(tmp_path: Path) -> None:
    target = tmp_path / "raw.tar.gz"
    keep = {"host", "hvdump"}
    export_bundle(str(target), [c for c in fake.fake_collectors() if c.name in keep])
    host = ReplayHost.open(str(target))
    grants = host.grants()
    assert grants.own == () and grants.hypervisor is not None
    assert [(g.granter, g.ref, g.mapper) for g in grants.hypervisor] == [(1, 8, 0)]
    assert host.list("/") == () and host.pages() == ()


def test_failing_slow_and_absent_collectors_are_recorded_not_fatal(tmp_path: Path) -> None:
    release = threading.Event()
    target = tmp_path / "f.tar.gz"
    try:
        result = export_bundle(
            str(target), fake.fake_collectors(pages=False) + fake.failing_collectors(release)
        )
    finally:
        release.set()
    by_name = {c["name"]: c for c in result.manifest["collectors"]}
    assert by_name["broken"]["status"] == "error"
    assert "device exploded" in by_name["broken"]["error"]
    assert by_name["absent"]["status"] == "unavailable"
    assert by_name["absent"]["error"] == "not on this host"
    assert by_name["slow"]["status"] == "timeout" and by_name["slow"]["members"] == []
    assert 0.3 <= by_name["slow"]["duration_s"] < 5
    bundle = read_bundle(str(target))
    assert "slow.json" not in bundle.members and "xenstore.json" in bundle.members


def test_collector_with_a_bad_member_name_is_an_error_and_dropped(tmp_path: Path) -> None:
    bad = Collector("bad", lambda: {"ok.json": {}, "../escape.json": {}})
    result = export_bundle(str(tmp_path / "x.tar.gz"), [bad])
    entry = result.manifest["collectors"][0]
    assert entry["status"] == "error" and "bad name" in entry["error"]
    assert result.manifest["members"] == []


def test_failed_write_leaves_no_partial_bundle_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "b.tar.gz"
    target.write_bytes(b"previous bundle")
    calls = {"n": 0}
    real_addfile = tarfile.TarFile.addfile

    def failing_addfile(self: tarfile.TarFile, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_addfile(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tarfile.TarFile, "addfile", failing_addfile)
    with pytest.raises(BundleError, match="No space left on device"):
        export_bundle(str(target), fake.fake_collectors())
    assert target.read_bytes() == b"previous bundle"
    assert sorted(os.listdir(tmp_path)) == ["b.tar.gz"]


def test_ctrl_c_while_writing_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "addfile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(str(tmp_path / "b.tar.gz"), fake.fake_collectors())
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_collecting_writes_nothing(tmp_path: Path) -> None:
    def interrupt() -> dict[str, object]:
        raise KeyboardInterrupt

    # The collector's thread records it; the main thread's Ctrl-C is what aborts, so emulate
    # it through the progress callback, which runs in the main thread.
    def progress(event: str, *_rest: object) -> None:
        if event == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_bundle(str(tmp_path / "b.tar.gz"), [Collector("x", interrupt)], progress=progress)
    assert os.listdir(tmp_path) == []


def test_target_problems_are_explained(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        export_bundle(str(tmp_path / "no" / "such" / "b.tar.gz"), [])
    with pytest.raises(BundleError, match="is a directory"):
        export_bundle(str(tmp_path), [])


def test_progress_reports_each_collector(tmp_path: Path) -> None:
    seen: list[tuple[str, str, int, int]] = []

    def progress(event: str, name: str, index: int, total: int, _result: object) -> None:
        seen.append((event, name, index, total))

    collectors = fake.fake_collectors(pages=False)
    export_bundle(str(tmp_path / "p.tar.gz"), collectors, progress=progress)
    assert len(seen) == 2 * len(collectors)
    assert seen[0] == ("start", "host", 0, len(collectors))
    assert seen[-1][0] == "done"


def test_exported_json_members_are_valid_json(exported: Path) -> None:
    bundle = read_bundle(str(exported))
    for name, data in bundle.members.items():
        if name.endswith(".json"):
            json.loads(data)
