"""Inputs 10x and 100x a real host's, for the bounded-reading tests and bench/bundle_scaling.py.

A real dom0 with a few guests has a few hundred XenStore nodes, tens of CPUs in
/proc/interrupts and a handful of findings; "scale" multiplies that.  Also the hostile shapes
the issue found: PAX sparse members, sizes past the end of the archive, thousands of empty
gzip members.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile

from bundle_corpus.hostile import _file, gz, manifest_for, tar_bytes

REAL_NODES = 400  # XenStore nodes of a dom0 with a few guests
REAL_CPUS = 64  # CPU columns of a big host's /proc/interrupts
REAL_FINDINGS = 40


def bundle(listed: dict[str, bytes]) -> bytes:
    """A sound bundle (correct manifest) holding ``listed``."""
    members = [_file("manifest.json", manifest_for(listed))]
    members += [_file(n, d) for n, d in listed.items()]
    return gz(tar_bytes(members))


def flat_xenstore(count: int) -> bytes:
    """xenstore.json with ``count`` children of one directory (the loader's worst case)."""
    value = base64.b64encode(b"v").decode()
    nodes = [
        {"path": f"/flat/n{i}", "value_b64": value, "value": "v", "perms": None}
        for i in range(count)
    ]
    return json.dumps({"root": "/", "nodes": nodes}).encode()


def interrupts(cpus: int, rows: int = 20) -> str:
    """/proc/interrupts with ``cpus`` CPU columns and ``rows`` Xen rows."""
    head = " ".join(f"CPU{i}" for i in range(cpus))
    lines = [f"      {head}"]
    for irq in range(rows):
        counts = " ".join(str(irq + c) for c in range(cpus))
        lines.append(f" {100 + irq}: {counts}  xen-dyn    -event     evtchn:qemu{irq}")
    return "\n".join(lines) + "\n"


def findings(count: int) -> bytes:
    """findings.json with ``count`` distinct findings, and the issue's ``[{}, ...]`` shape."""
    items = [{"code": f"c{i}", "subject": {"domid": i}, "title": "t"} for i in range(count)]
    return json.dumps({"findings": items + [{}] * count}).encode()


def sparse_member(declared: int = 100 * 1024 * 1024, copies: int = 50) -> bytes:
    """Old-style GNU sparse members declared through PAX headers (5 GB of zeros in all)."""
    listed = {"host.json": b"{}"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in [("manifest.json", manifest_for(listed)), *listed.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for i in range(copies):
            info = tarfile.TarInfo(f"sparse{i}.bin")
            info.size = 512
            info.pax_headers = {
                "GNU.sparse.size": str(declared),
                "GNU.sparse.numblocks": "1",
                "GNU.sparse.offset": str(declared - 512),
                "GNU.sparse.numbytes": "512",
            }
            archive.addfile(info, io.BytesIO(b"x" * 512))
    return gzip.compress(buf.getvalue(), mtime=0)


def size_past_the_end(declared: int = 64 * 1024 * 1024) -> bytes:
    """A member whose header declares more bytes (under the cap) than the archive holds."""
    raw = gzip.decompress(bundle({"host.json": b"{}"})).rstrip(b"\x00")
    raw += b"\x00" * (-len(raw) % 512)
    info = tarfile.TarInfo("xenstore.json")
    info.size = declared
    return gz(raw + info.tobuf(tarfile.GNU_FORMAT) + b"{" * 1024)


def empty_gzip_members(count: int) -> bytes:
    """A sound bundle followed by ``count`` empty gzip members (legal gzip, 20 bytes each)."""
    empty = gzip.compress(b"", mtime=0)
    return bundle({"host.json": b"{}"}) + empty * count
