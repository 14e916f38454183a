"""A small writer for initramfs archives (cpio "newc" format, gzip-compressed).

Written in Python rather than with the cpio tool so the archive is reproducible (fixed mtimes,
sorted order) and can hold a ``/dev/console`` device node without mknod on the host.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, a regular file, a symlink or a character device."""

    name: str               # path inside the archive, without a leading '/'
    mode: int               # full st_mode (type bits + permissions)
    data: bytes = b""       # file contents, or the symlink target
    rdev: tuple[int, int] = (0, 0)
    mtime: int = 0          # seconds; kept for Python sources so their .pyc stay valid


def _pad4(length: int) -> bytes:
    return b"\0" * ((4 - length % 4) % 4)


def _header(ino: int, entry: Entry, name: bytes) -> bytes:
    fields = [
        ino, entry.mode, 0, 0, 1 if not stat.S_ISDIR(entry.mode) else 2, entry.mtime,
        len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], len(name) + 1, 0,
    ]
    return b"070701" + b"".join(f"{value:08X}".encode() for value in fields)


def newc_archive(entries: list[Entry]) -> bytes:
    """The uncompressed newc archive of ``entries`` (in the given order) plus the trailer."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = entry.name.lstrip("/").encode()
        head = _header(ino if entry.name != "TRAILER!!!" else 0, entry, name)
        out += head + name + b"\0"
        out += _pad4(len(head) + len(name) + 1)
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


class InitramfsBuilder:
    """Collects entries, creating parent directories on the way; writes a .cpio.gz."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def _parents(self, name: str) -> None:
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.mkdir("/".join(parts[:i]))

    def mkdir(self, name: str, mode: int = 0o755) -> None:
        """Add a directory (and its parents)."""
        name = name.strip("/")
        if name and name not in self._entries:
            self._parents(name)
            self._entries[name] = Entry(name, stat.S_IFDIR | mode)

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        """Add a regular file with ``data``."""
        name = name.strip("/")
        self._parents(name)
        self._entries[name] = Entry(name, stat.S_IFREG | mode, data, mtime=mtime)

    def add_file(self, name: str, source: Path, mode: int | None = None, *,
                 keep_mtime: bool = False) -> None:
        """Add a host file, keeping its permission bits unless ``mode`` is given.

        ``keep_mtime`` keeps the file's modification time: Python checks a cached .pyc against
        its source's mtime, so an image of Python modules needs it or every import recompiles.
        """
        st = source.stat()
        perms = stat.S_IMODE(st.st_mode) if mode is None else mode
        self.add_bytes(name, source.read_bytes(), perms, int(st.st_mtime) if keep_mtime else 0)

    def has(self, name: str) -> bool:
        """True if ``name`` is already a member."""
        return name.strip("/") in self._entries

    def symlink(self, name: str, target: str) -> None:
        """Add a symbolic link ``name -> target``."""
        name = name.strip("/")
        self._parents(name)
        self._entries[name] = Entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        """Add a character device node (e.g. dev/console 5:1, so early output works)."""
        name = name.strip("/")
        self._parents(name)
        self._entries[name] = Entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def names(self) -> list[str]:
        """Member names, sorted (parents before children)."""
        return sorted(self._entries)

    def write(self, path: Path, *, compress: bool = True) -> None:
        """Write the archive to ``path`` (atomically, via a temporary file).

        gzip-compressed by default; ``compress=False`` writes the plain archive, which Linux
        also accepts and which saves a large image's decompression in a guest under TCG.
        """
        archive = newc_archive([self._entries[n] for n in self.names()])
        tmp = path.with_name(path.name + ".tmp")
        if not compress:
            tmp.write_bytes(archive)
            tmp.replace(path)
            return
        # No file name and a fixed mtime in the gzip header: the same inputs give the same bytes.
        with open(tmp, "wb") as raw, gzip.GzipFile(
            filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6
        ) as gz:
            gz.write(archive)
        tmp.replace(path)
