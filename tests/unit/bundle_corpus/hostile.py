"""The hostile-bundle corpus: one generator per attack, written on demand into a directory.

Generated rather than stored so every case stays exact (a decompression bomb of 600 MiB is a
few hundred KiB of gzip; a stored copy could not show how it was made).  Each case says at
which stage it must be refused: ``read`` (the safe reader, so inspect/open/diff all refuse)
or ``replay`` (the bundle is intact but its content is malformed: opening it refuses).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from grantscope.bundle.format import FORMAT_NAME, SCHEMA_VERSION, Limits

Member = tuple[tarfile.TarInfo, Optional[bytes]]  # evaluated at import: no | on 3.9


def _info(
    name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _file(name: str, data: bytes) -> Member:
    return _info(name, len(data)), data


def manifest_for(listed: dict[str, bytes], **overrides: Any) -> bytes:
    """A correct manifest for ``listed`` (then ``overrides`` applied on top)."""
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "grantscope_version": "0.1.0",
        "host": {"hostname": "evil"},
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01Z",
        "options": {},
        "members": [
            {"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "collector": "x"}
            for n, d in listed.items()
        ],
        "collectors": [],
        "redaction": {"enabled": True},
    }
    manifest.update(overrides)
    return json.dumps(manifest).encode()


def tar_bytes(members: list[Member]) -> bytes:
    """An uncompressed tar of ``members`` exactly as given (no sanitising)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    """``data`` gzip-compressed."""
    return gzip.compress(data, mtime=0)


def good_members() -> dict[str, bytes]:
    """A minimal valid bundle's members (without the manifest)."""
    return {"host.json": b'{"hostname": "evil"}'}


def valid_with(extra: list[Member], listed: dict[str, bytes] | None = None) -> bytes:
    """A bundle with a correct manifest for ``listed`` plus the raw ``extra`` members."""
    listed = good_members() if listed is None else listed
    members = [_file("manifest.json", manifest_for(listed))]
    members += [_file(n, d) for n, d in listed.items()]
    return gz(tar_bytes(members + extra))


# -- the cases -----------------------------------------------------------------------------------
def traversal() -> bytes:
    return valid_with([_file("../escaped.txt", b"pwned")])


def traversal_nested() -> bytes:
    return valid_with([_file("pages/../../escaped.txt", b"pwned")])


def absolute_path() -> bytes:
    return valid_with([_file("/tmp/grantscope-absolute-escape.txt", b"pwned")])


def symlink() -> bytes:
    return valid_with([(_info("passwd", kind=tarfile.SYMTYPE, link="/etc/passwd"), None)])


def hardlink() -> bytes:
    return valid_with([(_info("hard", kind=tarfile.LNKTYPE, link="host.json"), None)])


def char_device() -> bytes:
    info = _info("console", kind=tarfile.CHRTYPE)
    info.devmajor, info.devminor = 5, 1
    return valid_with([(info, None)])


def block_device() -> bytes:
    info = _info("sda", kind=tarfile.BLKTYPE)
    info.devmajor, info.devminor = 8, 0
    return valid_with([(info, None)])


def fifo() -> bytes:
    return valid_with([(_info("pipe", kind=tarfile.FIFOTYPE), None)])


def directory_entry() -> bytes:
    return valid_with([(_info("pages", kind=tarfile.DIRTYPE), None)])


def odd_name() -> bytes:
    return valid_with([_file("pages\\..\\x", b"x")])


def oversize_member_header() -> bytes:
    """A header claiming 200 MiB (over the default 128 MiB member limit) with little data."""
    head = valid_with([])
    raw = gzip.decompress(head)
    info = _info("xenstore.json", 200 * 1024 * 1024)
    block = info.tobuf(tarfile.GNU_FORMAT)
    # Drop the end-of-archive blocks, append the lying header and a little data.
    body = raw.rstrip(b"\x00")
    body += b"\x00" * (-len(body) % 512)
    return gz(body + block + b"A" * 4096)


def oversize_member_small_limit() -> bytes:
    """A real 64 KiB member; refused under the corpus's small limits (32 KiB)."""
    data = b"x" * (64 * 1024)
    return valid_with([], listed={"host.json": b"{}", "big.bin": data})


def decompression_bomb() -> bytes:
    """600 MiB of zeros behind a tar header, as 600 concatenated gzip members (~600 KiB)."""
    header = _info("manifest.json", 600 * 1024 * 1024).tobuf(tarfile.GNU_FORMAT)
    first = header + bytes(1024 * 1024 - len(header))
    chunk = zlib.compress(bytes(1024 * 1024), 9)
    member = _gzip_member_from_deflate(chunk, bytes(1024 * 1024))
    return _gzip_member_from_deflate(zlib.compress(first, 9), first) + member * 599


def _gzip_member_from_deflate(zlib_stream: bytes, plain: bytes) -> bytes:
    # zlib.compress gives a zlib stream: strip its 2-byte header and 4-byte adler32 and wrap
    # the raw deflate data in a gzip header/trailer.
    deflate = zlib_stream[2:-4]
    head = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    crc = zlib.crc32(plain).to_bytes(4, "little")
    size = (len(plain) & 0xFFFFFFFF).to_bytes(4, "little")
    return head + deflate + crc + size


def missing_manifest() -> bytes:
    return gz(tar_bytes([_file("host.json", b"{}")]))


def unknown_version() -> bytes:
    listed = good_members()
    members = [_file("manifest.json", manifest_for(listed, schema_version=99))]
    return gz(tar_bytes(members + [_file(n, d) for n, d in listed.items()]))


def wrong_format() -> bytes:
    listed = good_members()
    members = [_file("manifest.json", manifest_for(listed, format="sosreport"))]
    return gz(tar_bytes(members + [_file(n, d) for n, d in listed.items()]))


def checksum_mismatch() -> bytes:
    listed = {"host.json": b'{"hostname": "good"}'}
    members = [_file("manifest.json", manifest_for(listed))]
    return gz(tar_bytes([*members, _file("host.json", b'{"hostname": "evil"}')]))


def size_mismatch() -> bytes:
    listed = {"host.json": b'{"hostname": "good"}'}
    members = [_file("manifest.json", manifest_for(listed))]
    return gz(tar_bytes([*members, _file("host.json", b'{"hostname": "good", "x": 1}')]))


def unlisted_member() -> bytes:
    return valid_with([_file("smuggled.bin", b"not in the manifest")])


def listed_but_missing() -> bytes:
    listed = {"host.json": b"{}", "xenstore.json": b"{}"}
    members = [_file("manifest.json", manifest_for(listed)), _file("host.json", b"{}")]
    return gz(tar_bytes(members))


def duplicate_member() -> bytes:
    listed = good_members()
    evil = manifest_for(listed, host={"hostname": "second"})
    return valid_with([_file("manifest.json", evil)])


def malformed_manifest_json() -> bytes:
    return gz(tar_bytes([_file("manifest.json", b'{"format": "grantscope-bundle", ')]))


def manifest_with_nan() -> bytes:
    text = manifest_for(good_members()).replace(b'"options": {}', b'"options": {"x": NaN}')
    members = [_file("manifest.json", text)] + [_file(n, d) for n, d in good_members().items()]
    return gz(tar_bytes(members))


def manifest_not_object() -> bytes:
    return gz(tar_bytes([_file("manifest.json", b"[1, 2, 3]")]))


def manifest_bad_members() -> bytes:
    text = manifest_for({}, members=[{"name": "../x", "sha256": "0" * 64, "size": 1}])
    return gz(tar_bytes([_file("manifest.json", text)]))


def not_gzip() -> bytes:
    return b"this is not a bundle at all\n" * 10


def truncated_gzip() -> bytes:
    data = valid_with([])
    return data[: len(data) // 2]


def corrupt_gzip() -> bytes:
    data = bytearray(valid_with([]))
    data[20:40] = b"\xff" * 20
    return bytes(data)


def gzip_not_tar() -> bytes:
    return gz(b"plain text inside gzip, not a tar archive\n" * 100)


def too_many_members() -> bytes:
    listed = {f"m{i:03d}.json": b"{}" for i in range(40)}
    return valid_with([], listed=listed)


def malformed_member_json() -> bytes:
    return valid_with([], listed={"host.json": b"{}", "xenstore.json": b"{not json"})


def malformed_xenstore_node() -> bytes:
    bad = json.dumps({"nodes": [{"path": "/x", "value_b64": "!!!not base64!!!", "perms": None}]})
    return valid_with([], listed={"host.json": b"{}", "xenstore.json": bad.encode()})


def malformed_grants_types() -> bytes:
    bad = json.dumps({"own": "everything", "processes": [], "hypervisor": None, "taken_at": 0})
    return valid_with([], listed={"host.json": b"{}", "grants.json": bad.encode()})


def page_index_to_missing_member() -> bytes:
    index = {"pages": [{"key": "k", "title": "t", "domid": 1, "gref": 2, "member": "pages/9.bin"}]}
    return valid_with([], listed={"host.json": b"{}", "pages.json": json.dumps(index).encode()})


@dataclass(frozen=True)
class Case:
    """One hostile bundle: its builder, the stage that must refuse it, words the error says."""

    name: str
    build: Callable[[], bytes]
    stage: str  # "read" or "replay"
    says: str
    small_limits: bool = False


SMALL_LIMITS = Limits(
    max_file_bytes=1 << 20,
    max_total_bytes=4 << 20,
    max_member_bytes=32 * 1024,
    max_manifest_bytes=32 * 1024,
    max_members=16,
)

CASES: tuple[Case, ...] = (
    Case("traversal", traversal, "read", "path traversal"),
    Case("traversal_nested", traversal_nested, "read", "path traversal"),
    Case("absolute_path", absolute_path, "read", "absolute path"),
    Case("symlink", symlink, "read", "is a link"),
    Case("hardlink", hardlink, "read", "is a link"),
    Case("char_device", char_device, "read", "device or FIFO"),
    Case("block_device", block_device, "read", "device or FIFO"),
    Case("fifo", fifo, "read", "device or FIFO"),
    Case("directory_entry", directory_entry, "read", "directory entry"),
    Case("odd_name", odd_name, "read", "path traversal"),
    Case("oversize_member_header", oversize_member_header, "read", "over the 134217728-byte limit"),
    Case("oversize_member", oversize_member_small_limit, "read", "over the 32768-byte limit", True),
    Case("decompression_bomb", decompression_bomb, "read", "decompression bomb"),
    Case("missing_manifest", missing_manifest, "read", "no manifest.json"),
    Case("unknown_version", unknown_version, "read", "unknown bundle schema version 99"),
    Case("wrong_format", wrong_format, "read", "not a grantscope bundle"),
    Case("checksum_mismatch", checksum_mismatch, "read", "checksum mismatch"),
    Case("size_mismatch", size_mismatch, "read", "the manifest says"),
    Case("unlisted_member", unlisted_member, "read", "not listed in the manifest"),
    Case("listed_but_missing", listed_but_missing, "read", "listed in the manifest but missing"),
    Case("duplicate_member", duplicate_member, "read", "appears twice"),
    Case("malformed_manifest_json", malformed_manifest_json, "read", "not valid JSON"),
    Case("manifest_with_nan", manifest_with_nan, "read", "not valid JSON"),
    Case("manifest_not_object", manifest_not_object, "read", "not a JSON object"),
    Case("manifest_bad_members", manifest_bad_members, "read", "a member has a bad name"),
    Case("not_gzip", not_gzip, "read", "not a gzip-compressed file"),
    Case("truncated_gzip", truncated_gzip, "read", "truncated"),
    Case("corrupt_gzip", corrupt_gzip, "read", "corrupt"),
    Case("gzip_not_tar", gzip_not_tar, "read", "not a readable tar archive"),
    Case("too_many_members", too_many_members, "read", "more than 16 members", True),
    Case("malformed_member_json", malformed_member_json, "replay", "not valid JSON"),
    Case("malformed_xenstore_node", malformed_xenstore_node, "replay", "not base64"),
    Case("malformed_grants_types", malformed_grants_types, "replay", "expected a list"),
    Case("page_index_missing", page_index_to_missing_member, "replay", "missing member"),
)


def write_case(case: Case, directory: Path) -> Path:
    """Write ``case``'s bundle into ``directory`` and return its path."""
    path = directory / f"{case.name}.tar.gz"
    path.write_bytes(case.build())
    return path
