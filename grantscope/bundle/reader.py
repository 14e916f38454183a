"""The safe bundle reader: a bundle may come from anyone, so it is read into memory, never to disk.

Reading is in three stages, each with a limit (:class:`~grantscope.bundle.format.Limits`):

1. the compressed file, read whole (size capped);
2. the gzip stream, decompressed incrementally and stopped as soon as the decompressed size
   passes ``max_total_bytes`` (a decompression bomb never gets to allocate its payload);
3. the tar stream, parsed from memory with :mod:`tarfile` and walked member by member:
   only plain regular files with safe relative names are accepted, each under a size limit,
   and their bytes are read with ``extractfile`` into a dict.  Nothing is ever extracted.

Then the manifest is checked (present, valid JSON, known schema version), and every member
is matched against it (listed, same size, same sha256).  Every rejection is a
:class:`~grantscope.bundle.format.BundleError` (exit status 1) that names the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from grantscope.bundle.format import (
    DEFAULT_LIMITS,
    FORMAT_NAME,
    MANIFEST_NAME,
    MAX_MEMBER_NAME,
    MEMBER_NAME_RE,
    SCHEMA_VERSION,
    BundleError,
    Limits,
    is_sha256,
    malformed,
)

_REJECT_HINT = (
    "Nothing was extracted or opened. A bundle may come from anyone: ask the sender for a "
    "fresh 'grantscope bundle export' if this one should have been genuine."
)


def _reject(what: str) -> BundleError:
    return BundleError(f"unsafe or damaged bundle: {what}", _REJECT_HINT)


@dataclass
class Bundle:
    """An opened bundle: its manifest and every member's bytes, all in memory.

    ``problems`` lists integrity failures (checksum or size mismatches, members missing or not
    listed); it is always empty when the bundle was read with ``verify=True``.
    """

    path: str
    manifest: dict[str, Any]
    members: dict[str, bytes]
    problems: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """True when the bundle holds a member called ``name``."""
        return name in self.members

    def json(self, name: str) -> Any:
        """Member ``name`` parsed as JSON; :class:`BundleError` when it is not valid JSON."""
        data = self.members.get(name)
        if data is None:
            raise BundleError(
                f"the bundle has no member {name!r}",
                "Its collector may have failed at export time: see 'grantscope bundle inspect'.",
            )
        return parse_json(data, name)

    def json_or_none(self, name: str) -> Any:
        """Member ``name`` parsed as JSON, or None when the bundle does not hold it."""
        return self.json(name) if name in self.members else None

    @property
    def host(self) -> dict[str, Any]:
        """The host facts recorded in the manifest (an empty dict when none were gathered)."""
        host = self.manifest.get("host")
        return host if isinstance(host, dict) else {}

    def collector(self, name: str) -> dict[str, Any] | None:
        """The manifest's record for collector ``name``, or None."""
        for entry in self.manifest.get("collectors", []):
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        return None


# No number a grantscope bundle writes needs more digits than a uint64 (20) or a float's repr;
# a 400-digit integer would overflow float() later, a 5000-digit one costs quadratic time.
MAX_NUMBER_CHARS = 32


def parse_json(data: bytes, where: str) -> Any:
    """``data`` as JSON (UTF-8, no NaN/Infinity, every number finite and of at most
    :data:`MAX_NUMBER_CHARS` characters); :class:`BundleError` naming ``where`` if not."""
    try:
        return json.loads(
            data.decode("utf-8"),
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise malformed(where, f"not valid JSON ({err})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} digits is out of range")
    return int(text)


def _finite_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters is out of range")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range (not a finite number)")
    return value


def read_bundle(path: str, *, limits: Limits = DEFAULT_LIMITS, verify: bool = True) -> Bundle:
    """Open the bundle file at ``path`` safely (see the module docstring).

    With ``verify=False`` checksum, size and membership mismatches are collected in
    :attr:`Bundle.problems` instead of raised (``bundle inspect`` reports them all); every
    structural danger (links, traversal, bombs, bad manifest) is still refused.
    """
    compressed = _read_file(path, limits)
    raw = _gunzip(compressed, limits)
    members = _strip_root_dir(_read_tar(raw, limits))
    manifest = _check_manifest(members, limits)
    problems = _verify_members(manifest, members)
    if verify and problems:
        raise _reject(
            problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    del members[MANIFEST_NAME]
    return Bundle(path=path, manifest=manifest, members=members, problems=problems)


def _read_file(path: str, limits: Limits) -> bytes:
    try:
        with open(path, "rb") as handle:
            # read(n) allocates n bytes up front: ask for what the file holds, not the cap.
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_file_bytes:
                raise _reject(f"the file is larger than {limits.max_file_bytes} bytes")
            data = handle.read(size + 1) if size else handle.read(limits.max_file_bytes + 1)
    except FileNotFoundError:
        # bad usage (exit 2), as for every command given a missing file
        raise BundleError(f"no such bundle file: {path}", "Check the path.", exit_code=2) from None
    except IsADirectoryError:
        raise BundleError(
            f"{path} is a directory, not a bundle file", "Give the .tar.gz file.", exit_code=2
        ) from None
    except OSError as err:
        raise BundleError(
            f"cannot read {path}: {err.strerror or err}", "Check the path and its permissions."
        ) from None
    if len(data) > limits.max_file_bytes:
        raise _reject(f"the file is larger than {limits.max_file_bytes} bytes")
    return data


GZIP_CHUNK = 64 * 1024
GZIP_FIRST_FEED = 512


def _gunzip(data: bytes, limits: Limits) -> bytes:
    """Decompress every gzip member of ``data`` in one linear pass, never producing more than
    the limit allows.

    The input is fed in chunks from a moving offset, so what is left after a member ends is at
    most one (small) chunk: thousands of concatenated (even empty) members cost linear time, where
    re-slicing "the rest of the file" after each one was quadratic.
    """
    if not data.startswith(b"\x1f\x8b"):
        raise _reject("not a gzip-compressed file (a bundle is a .tar.gz)")
    view = memoryview(data)
    out = bytearray()
    pos = 0
    try:
        while pos < len(data):
            # Trailing zero padding is tolerated, and only that (a zero byte starts no gzip
            # member: this copy happens once, then the loop ends either way).
            if data[pos] == 0 and not data[pos:].strip(b"\x00"):
                break
            decomp = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
            # Each member starts with a small feed that doubles: the unused input copied at
            # its end is never more than what it consumed (or one small feed).
            size = GZIP_FIRST_FEED
            while not decomp.eof:
                if decomp.unconsumed_tail:
                    feed: bytes | memoryview = decomp.unconsumed_tail
                else:
                    feed = view[pos : pos + size]
                    pos += len(feed)
                    size = min(size * 2, GZIP_CHUNK)
                    if not feed:
                        raise _reject("the compressed data is truncated")
                room = limits.max_total_bytes - len(out) + 1
                out += decomp.decompress(feed, min(1 << 20, room))
                if len(out) > limits.max_total_bytes:
                    raise _reject(
                        f"it decompresses to more than {limits.max_total_bytes} bytes "
                        "(a decompression bomb, or far larger than any real bundle)"
                    )
            # The member ended inside the last chunk: step back over what it did not use.
            pos -= len(decomp.unused_data)
    except zlib.error as err:
        raise _reject(f"the compressed data is corrupt ({err})") from None
    return bytes(out)


def _read_tar(raw: bytes, limits: Limits) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            count = 0
            while True:
                info = archive.next()
                if info is None:
                    break
                count += 1
                if count > limits.max_members:
                    raise _reject(f"it has more than {limits.max_members} members")
                _check_member(info, limits)
                # What the header declares must be there: a sparse member (old GNU sparse
                # through PAX headers keeps the regular type) would be filled with zeros in
                # memory, and a size past the end of the stream is a lie of another kind.
                if info.sparse is not None:
                    raise _reject(f"member {info.name!r:.120} is a sparse file")
                if info.offset_data + info.size > len(raw):
                    raise _reject(
                        f"member {info.name!r:.120} declares {info.size} bytes, more than the "
                        "archive holds"
                    )
                if info.name in members:
                    raise _reject(f"member {info.name!r} appears twice")
                handle = archive.extractfile(info)
                if handle is None:  # not a regular file: already refused by _check_member
                    raise _reject(f"member {info.name!r} has no data")
                data = handle.read(info.size + 1)
                if len(data) != info.size:
                    raise _reject(f"member {info.name!r} is truncated")
                members[info.name] = data
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, ValueError, OSError, UnicodeError) as err:
        raise _reject(f"not a readable tar archive ({err})") from None
    return members


def _strip_root_dir(members: dict[str, bytes]) -> dict[str, bytes]:
    """Members named relative to the bundle: without the one top-level directory that
    exports write (``NAME/manifest.json``), or as they are in an older flat bundle."""
    if MANIFEST_NAME in members:
        return members  # a flat bundle (written before the top-level directory)
    roots = {name.partition("/")[0] for name in members}
    if len(roots) != 1:
        return members  # no single root: the manifest check names what is missing
    (root,) = roots
    if f"{root}/{MANIFEST_NAME}" not in members:
        return members
    return {name[len(root) + 1 :]: data for name, data in members.items()}


def _check_member(info: tarfile.TarInfo, limits: Limits) -> None:
    name = info.name
    shown = repr(name)[:120]
    if name.startswith("/") or PurePosixPath(name).is_absolute() or name.startswith("\\"):
        raise _reject(f"member {shown} has an absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise _reject(f"member {shown} escapes the bundle (path traversal with '..')")
    if info.issym() or info.islnk():
        raise _reject(f"member {shown} is a link (links are never followed or created)")
    if info.ischr() or info.isblk() or info.isfifo():
        raise _reject(f"member {shown} is a device or FIFO entry")
    if info.isdir():
        raise _reject(f"member {shown} is a directory entry (bundles hold plain files only)")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise _reject(f"member {shown} is not a plain file (tar type {info.type!r})")
    if len(name) > MAX_MEMBER_NAME or not MEMBER_NAME_RE.match(name):
        raise _reject(f"member {shown} has a name a bundle never uses")
    cap = limits.max_manifest_bytes if name == MANIFEST_NAME else limits.max_member_bytes
    if info.size > cap:
        raise _reject(f"member {shown} is {info.size} bytes, over the {cap}-byte limit")


def _check_manifest(members: dict[str, bytes], limits: Limits) -> dict[str, Any]:
    data = members.get(MANIFEST_NAME)
    if data is None:
        raise _reject("it has no manifest.json (not a grantscope bundle)")
    manifest = parse_json(data, MANIFEST_NAME)
    if not isinstance(manifest, dict):
        raise malformed(MANIFEST_NAME, "not a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise _reject(
            f"manifest.json does not say format {FORMAT_NAME!r} (not a grantscope bundle)"
        )
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise BundleError(
            f"unknown bundle schema version {version!r:.40}: this grantscope reads version "
            f"{SCHEMA_VERSION}",
            "The bundle was written by another grantscope release (or is damaged). "
            "Open it with the release that wrote it, or ask for a new export.",
        )
    listed = manifest.get("members")
    if not isinstance(listed, list):
        raise malformed(MANIFEST_NAME, "'members' is not a list")
    seen: set[str] = set()
    for entry in listed:
        if not isinstance(entry, dict):
            raise malformed(MANIFEST_NAME, "a 'members' entry is not an object")
        name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
        if not isinstance(name, str) or not MEMBER_NAME_RE.match(name) or name == MANIFEST_NAME:
            raise malformed(MANIFEST_NAME, f"a member has a bad name: {name!r:.80}")
        if name in seen:
            raise malformed(MANIFEST_NAME, f"member {name!r} is listed twice")
        seen.add(name)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise malformed(MANIFEST_NAME, f"member {name!r} has a bad size")
        if not is_sha256(digest):
            raise malformed(MANIFEST_NAME, f"member {name!r} has a bad sha256")
    collectors = manifest.get("collectors", [])
    if not isinstance(collectors, list) or not all(isinstance(c, dict) for c in collectors):
        raise malformed(MANIFEST_NAME, "'collectors' is not a list of objects")
    for key in ("host", "options", "redaction"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise malformed(MANIFEST_NAME, f"'{key}' is not an object")
    return manifest


def _verify_members(manifest: dict[str, Any], members: dict[str, bytes]) -> list[str]:
    """Every disagreement between the manifest and the members, in words."""
    problems: list[str] = []
    listed = {entry["name"]: entry for entry in manifest["members"]}
    for name, entry in listed.items():
        data = members.get(name)
        if data is None:
            problems.append(f"member {name!r} is listed in the manifest but missing")
            continue
        if len(data) != entry["size"]:
            problems.append(
                f"member {name!r} is {len(data)} bytes, the manifest says {entry['size']}"
            )
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(
                f"checksum mismatch for member {name!r} (sha256 differs from the manifest)"
            )
    for name in members:
        if name != MANIFEST_NAME and name not in listed:
            problems.append(f"member {name!r} is not listed in the manifest")
    return problems
