"""Every hostile bundle in the corpus is refused with a clear message and exit status 1.

Opening never extracts: these tests make ``TarFile.extract``/``extractall`` explode, and check
that no file appears where a traversal or absolute member points.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from bundle_corpus.hostile import CASES, SMALL_LIMITS, Case, write_case

from grantscope.bundle.check import inspect_bundle
from grantscope.bundle.format import DEFAULT_LIMITS, BundleError
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.replay import ReplayHost

# Cases whose only fault is integrity: inspect reports them rather than refusing to read.
INTEGRITY = {"checksum_mismatch", "size_mismatch", "unlisted_member", "listed_but_missing"}


@pytest.fixture(autouse=True)
def _no_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the bundle reader must never extract to disk")

    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)


def _limits(case: Case):  # type: ignore[no-untyped-def]
    return SMALL_LIMITS if case.small_limits else DEFAULT_LIMITS


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_bundle_is_refused(case: Case, tmp_path: Path) -> None:
    path = write_case(case, tmp_path)
    if case.stage == "read":
        with pytest.raises(BundleError) as info:
            read_bundle(str(path), limits=_limits(case))
    else:
        bundle = read_bundle(str(path), limits=_limits(case))  # intact: it is the content
        assert bundle.problems == []
        with pytest.raises(BundleError) as info:
            ReplayHost(bundle)
    assert case.says in info.value.message
    assert info.value.exit_code == 1
    # Nothing was written next to the bundle (no extraction, no escape).
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_traversal_and_absolute_members_never_land_on_disk(tmp_path: Path) -> None:
    for name in ("traversal", "traversal_nested", "absolute_path"):
        case = next(c for c in CASES if c.name == name)
        sub = tmp_path / name
        sub.mkdir()
        path = write_case(case, sub)
        with pytest.raises(BundleError):
            read_bundle(str(path))
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/grantscope-absolute-escape.txt").exists()


def test_bomb_is_small_on_disk_but_refused_by_the_decompressed_cap(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "decompression_bomb")
    path = write_case(case, tmp_path)
    assert path.stat().st_size < 2 * 1024 * 1024  # a few hundred KiB ...
    with pytest.raises(BundleError, match="decompresses to more than 268435456 bytes"):
        read_bundle(str(path))  # ... for 600 MiB: stopped at the 256 MiB cap
    assert main(["bundle", "open", str(path)]) == 1


# The bomb costs seconds per read: its CLI refusal is checked once, in the test above.
CLI_CASES = [
    c for c in CASES if c.stage == "read" and not c.small_limits and c.name != "decompression_bomb"
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_cli_open_inspect_and_diff_exit_1_with_the_reason(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_case(case, tmp_path))
    for argv in (["bundle", "open", path], ["bundle", "diff", path, path]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("grantscope: ")
        assert case.says in err
        assert "Traceback" not in err
    # inspect refuses dangers the same way, and lists integrity failures in its report.
    assert main(["bundle", "inspect", path]) == 1
    out = capsys.readouterr()
    assert case.says in (out.out if case.name in INTEGRITY else out.err)
    assert main(["bundle", "inspect", path, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    if case.name in INTEGRITY:
        assert any(case.says in p for p in doc["integrity"]["problems"])
    else:
        assert case.says in doc["error"]["message"]


def test_inspect_reports_every_integrity_problem_without_raising(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "checksum_mismatch")
    summary = inspect_bundle(str(write_case(case, tmp_path)))
    assert summary["ok"] is False
    assert any(
        "checksum mismatch" in p and "host.json" in p for p in summary["integrity"]["problems"]
    )


def test_missing_file_and_directory_are_explained(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle file"):
        read_bundle(str(tmp_path / "absent.tar.gz"))
    with pytest.raises(BundleError, match="is a directory"):
        read_bundle(str(tmp_path))


def test_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.tar.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(2 * 1024 * 1024))
    with pytest.raises(BundleError, match="larger than 1048576 bytes"):
        read_bundle(str(path), limits=SMALL_LIMITS)
