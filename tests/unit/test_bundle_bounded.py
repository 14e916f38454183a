"""Bounded reading: what a bundle declares must be there, and reading is linear in its size.

Every case runs at 10x and 100x a real host's size.  The complexity bounds are counts and sizes
(bytes handed to the decompressor, parser steps, peak memory), never wall time: timings are in
bench/bundle_scaling.py and docs/PERFORMANCE.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from bundle_corpus import large

from grantscope.bundle import reader
from grantscope.bundle.diff import diff_bundles
from grantscope.bundle.format import BundleError
from grantscope.bundle.reader import read_bundle
from grantscope.host.replay import ReplayHost
from grantscope.model import interrupts as interrupts_model

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_sparse_members_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "sparse.tar.gz", large.sparse_member())
    assert Path(path).stat().st_size < 64 * 1024  # a few KB that once asked for 5 GB
    with pytest.raises(BundleError, match="is a sparse file"):
        read_bundle(path)


def test_a_size_past_the_end_of_the_archive_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "lie.tar.gz", large.size_past_the_end())
    with pytest.raises(BundleError, match="declares 67108864 bytes, more than the archive holds"):
        read_bundle(path)


_DECOMPRESSOBJ = zlib.decompressobj


class _CountingDecompressor:
    fed = 0

    def __init__(self, wbits: int) -> None:
        self._inner = _DECOMPRESSOBJ(wbits=wbits)

    def decompress(self, data: Any, max_length: int = 0) -> bytes:
        _CountingDecompressor.fed += len(data)
        return self._inner.decompress(data, max_length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("scale", [10, 100])
def test_concatenated_empty_gzip_members_are_read_in_one_linear_pass(
    scale: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 1000 * scale  # 100x: 100 000 members, 2 MB (the case)
    data = large.empty_gzip_members(count)
    path = _write(tmp_path, "many.tar.gz", data)
    _CountingDecompressor.fed = 0
    monkeypatch.setattr(reader.zlib, "decompressobj", _CountingDecompressor)
    bundle = read_bundle(path)
    assert bundle.json("host.json") == {}
    # Linear: every input byte is handed to a decompressor a bounded number of times (feeding
    # "the rest of the file" per member was count * size / 2: 10^11 bytes at 100x).
    assert _CountingDecompressor.fed <= 40 * len(data)


@pytest.mark.parametrize("scale", [10, 100])
def test_parse_interrupts_is_linear_in_cpu_columns(
    scale: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpus = large.REAL_CPUS * scale
    text = large.interrupts(cpus)
    calls = 0
    real = interrupts_model._is_number

    def counting(word: str) -> bool:
        nonlocal calls
        calls += 1
        return real(word)

    monkeypatch.setattr(interrupts_model, "_is_number", counting)
    parsed = interrupts_model.parse_interrupts(text)
    assert parsed.cpus == cpus and len(parsed.rows) == 20 and parsed.unparsed == ()
    row = parsed.rows[3]
    assert len(row.counts) == cpus and row.total == sum(3 + c for c in range(cpus))
    assert row.action == "evtchn:qemu3"
    assert calls <= 2 * (cpus + 4) * 20


def _peak(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("scale", [10, 100])
def test_replay_loader_is_linear_in_a_flat_directory(scale: int, tmp_path: Path) -> None:
    count = large.REAL_NODES * scale
    member = large.flat_xenstore(count)
    path = _write(tmp_path, "flat.tar.gz", large.bundle({"xenstore.json": member}))
    host, peak = _peak(lambda: ReplayHost.open(path))
    names = host.list("/flat")
    assert len(names) == count and names[:2] == ("n0", "n1") and names[-1] == f"n{count - 1}"
    assert host.list("/") == ("flat",)
    assert peak <= 40 * len(member) + (8 << 20)


@pytest.mark.parametrize("scale", [10, 100])
def test_diff_of_findings_is_linear(scale: int, tmp_path: Path) -> None:
    count = large.REAL_FINDINGS * scale
    a = _write(tmp_path, "a.tar.gz", large.bundle({"findings.json": large.findings(count)}))
    b = _write(tmp_path, "b.tar.gz", large.bundle({"findings.json": large.findings(count // 2)}))
    member = len(large.findings(count))
    result, peak = _peak(lambda: diff_bundles(read_bundle(a), read_bundle(b)))
    section = next(s for s in result["sections"] if s["section"] == "findings")
    assert section["compared"] and len(section["removed"]) == count - count // 2
    assert peak <= 60 * member + (8 << 20)  # the issue saw 447 MB for 15 KB


# -- under a memory cap: inspect, diff and open refuse or read, never MemoryError -----------------
_CAPPED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from grantscope.cli import main
from grantscope.host.replay import ReplayHost
from grantscope.bundle.format import BundleError
verb, paths = sys.argv[2], sys.argv[3:]
if verb == "open":  # what 'bundle open' does before the TUI starts: read, verify, decode
    try:
        host = ReplayHost.open(paths[0])
        host.grants(); host.events(); host.list("/")
        code = 0
    except BundleError as err:
        print("grantscope:", err.message, file=sys.stderr)
        code = 1
else:
    code = main(["bundle", verb, *paths])
sys.exit(code)
"""
MEMORY_CAP = 1 << 30  # 1 GiB of address space: the reader's caps (256 MiB) fit, 5 GB does not


@pytest.mark.parametrize(
    ("name", "build", "code"),
    [
        ("sparse", large.sparse_member, 1),
        ("past-the-end", large.size_past_the_end, 1),
        ("empty-gzip", lambda: large.empty_gzip_members(100_000), 0),
        ("flat", lambda: large.bundle({"xenstore.json": large.flat_xenstore(40_000)}), 0),
        # Open refuses the "[{}, ...]" findings as malformed; inspect and diff read them.
        ("findings", lambda: large.bundle({"findings.json": large.findings(4_000)}), 0),
    ],
)
@pytest.mark.parametrize("verb", ["inspect", "diff", "open"])
def test_under_a_memory_cap(verb: str, name: str, build: Any, code: int, tmp_path: Path) -> None:
    if name == "findings" and verb == "open":
        code = 1
    path = _write(tmp_path, f"{name}.tar.gz", build())
    paths = [path, path] if verb == "diff" else [path]
    done = subprocess.run(
        [sys.executable, "-c", _CAPPED, str(MEMORY_CAP), verb, *paths],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, (done.returncode, done.stderr[-400:])
    if code == 1:
        assert done.stderr.startswith(("grantscope: unsafe or damaged", "grantscope: malformed"))
    elif verb == "inspect":
        assert "integrity ok" in done.stdout
    elif verb == "diff":
        assert json.dumps("total: 0 change(s)")[1:-1] in done.stdout
