"""Writing a bundle: run the collectors, redact, hash, and write the .tar.gz atomically.

The archive is written to a temporary file in the target's directory and renamed over the
target only once it is complete and flushed, so the target path never holds a partial
bundle; on any error, and on Ctrl-C, the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from grantscope import __version__
from grantscope.bundle.collect import Collector, CollectorResult, run_collector
from grantscope.bundle.format import (
    FORMAT_NAME,
    MANIFEST_NAME,
    MEMBER_NAME_RE,
    SCHEMA_VERSION,
    BundleError,
)
from grantscope.bundle.redact import Redactor, SiteRules

XENSTORE_MEMBER = "xenstore.json"

# progress(event, collector_name, index, total): event is "start" or "done" (with the result).
# Optional, not | None: an alias is evaluated at import, and 3.9's types have no | (3.10).
Progress = Callable[[str, str, int, int, Optional[CollectorResult]], None]


@dataclass(frozen=True)
class ExportResult:
    """A finished export: where it was written and the manifest it carries."""

    path: str
    manifest: dict[str, Any]
    size: int


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` (what the manifest records)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_bundle(
    target: str,
    collectors: Sequence[Collector],
    *,
    redact: bool = True,
    include_pages: bool = False,
    progress: Progress | None = None,
    site_rules: SiteRules | None = None,
) -> ExportResult:
    """Run ``collectors`` and write the bundle to ``target`` (see the module docstring)."""
    target_dir = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise BundleError(
            f"{target} is a directory", "Give a file name with -o, e.g. -o bundle.tar.gz."
        )
    if not os.path.isdir(target_dir):
        raise BundleError(
            f"the directory {target_dir} does not exist", "Create it or choose another -o path."
        )
    if not os.access(target_dir, os.W_OK):
        raise BundleError(
            f"cannot write in {target_dir}", "Choose another -o path, or check permissions."
        )

    started = utc_now()
    results: list[CollectorResult] = []
    for index, collector in enumerate(collectors):
        if progress:
            progress("start", collector.name, index, len(collectors), None)
        result = run_collector(collector)
        results.append(result)
        if progress:
            progress("done", collector.name, index, len(collectors), result)
    finished = utc_now()

    redactor = Redactor(enabled=redact, site=site_rules or SiteRules())
    members, owners = _prepare_members(results, redactor)
    host: dict[str, Any] = {}
    for result in results:
        if result.name == "host" and result.status == "ok":
            data = members.get("host.json")
            if data is not None:
                host = json.loads(data)
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "grantscope_version": __version__,
        "created_by": "grantscope bundle export",
        "host": host,
        "started_at": started,
        "finished_at": finished,
        "options": {"include_pages": include_pages, "redact": redact},
        "members": [
            {
                "name": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "collector": owners[name],
            }
            for name, data in members.items()
        ],
        "collectors": [
            r.to_json([n for n, owner in owners.items() if owner == r.name]) for r in results
        ],
        "redaction": redactor.manifest_section(),
    }
    if host.get("simulated") is True:  # the demo host (--demo): say so where readers look
        manifest["simulated"] = True
    manifest["root_dir"] = root_dir_name(target)
    manifest_bytes = json.dumps(manifest, indent=2).encode("utf-8")
    size = _write_atomically(target, target_dir, manifest_bytes, members, manifest["root_dir"])
    return ExportResult(path=target, manifest=manifest, size=size)


def _prepare_members(
    results: list[CollectorResult], redactor: Redactor
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every collected payload redacted on its parsed data (rules, then copies), then encoded.

    Serializing comes last: redaction never touches the bytes of encoded JSON.
    """
    payloads: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for result in results:
        if result.status != "ok":
            continue
        problem = _name_problem(result.payload, payloads)
        if problem is not None:
            # The collector's whole output is dropped: a half-kept collector would mislead.
            result.status, result.error, result.payload = "error", problem, {}
            continue
        for name, payload in result.payload.items():
            payloads[name] = redactor.redact(name, payload)
            owners[name] = result.name
    # Second pass, once every rule has run: a value redacted anywhere goes everywhere.
    members = {name: _encode(name, redactor.finish(name, p)) for name, p in payloads.items()}
    return members, owners


def _name_problem(payload: dict[str, Any], taken: dict[str, Any]) -> str | None:
    for name in payload:
        if not isinstance(name, str) or not MEMBER_NAME_RE.match(name) or name == MANIFEST_NAME:
            return f"collector produced a member with a bad name: {name!r:.60}"
        if name in taken:
            return f"collector produced member {name!r}, which another collector already wrote"
    return None


def _encode(name: str, payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if name == XENSTORE_MEMBER:
        return json.dumps(payload, indent=None, separators=(",", ":"), default=str).encode()
    return json.dumps(payload, indent=1, default=str).encode("utf-8")


def root_dir_name(target: str) -> str:
    """The one top-level directory of the archive: the file's name without ``.tar.gz``.

    ``tar xzf`` then makes one directory instead of spilling members into the current one.
    Made safe for a member name (``[A-Za-z0-9._-]``, starting with a letter or digit, at
    most 64 characters).
    """
    base = os.path.basename(target)
    for suffix in (".tar.gz", ".tgz", ".gz", ".tar"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in base)
    safe = safe.lstrip("._-")[:64].rstrip(".")
    return safe or "grantscope-bundle"


def _write_atomically(
    target: str, target_dir: str, manifest: bytes, members: dict[str, bytes], root: str
) -> int:
    fd, temp = tempfile.mkstemp(
        dir=target_dir, prefix=f".{os.path.basename(target)}.", suffix=".partial"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
                _add(archive, f"{root}/{MANIFEST_NAME}", manifest)
                for name, data in members.items():
                    _add(archive, f"{root}/{name}", data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)  # a bundle may carry sensitive data even when redacted
        os.replace(temp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(err, OSError):
            raise BundleError(
                f"cannot write the bundle {target}: {err.strerror or err}",
                "Check free space and permissions in the target directory; nothing was left.",
            ) from None
        raise
    return os.path.getsize(target)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(_dt.datetime.now(_dt.timezone.utc).timestamp())
    info.type = tarfile.REGTYPE
    archive.addfile(info, io.BytesIO(data))
