"""The Python guest image: a domU initramfs that carries Python and grantscope itself.

The lab's ordinary domU runs a static C peer because a guest sees nothing of the host's files.
To run grantscope *inside* a PV, PVH or HVM guest, this module packs the host's own Python
runtime into an initramfs, the way a distribution's root filesystem would hold it:

- ``/usr/bin/python3.11`` and the standard library (without the test suite, the static
  ``config-*`` directory, tkinter, idlelib, lib2to3 and ensurepip, which nothing here imports);
- grantscope's runtime dependencies (textual, rich, pyxs, cffi, psutil, ... : the closure of
  ``Requires-Dist`` from the installed metadata) copied file by file from their installed RECORD
  into ``/usr/local/lib/python3.11/dist-packages``, the directory Debian's Python searches;
- the grantscope package from this checkout (probes and themes included) and a ``grantscope``
  launcher in ``/usr/local/bin``;
- every shared library those binaries need (found with ``ldd``), at their real paths, with
  Debian's ``/lib`` and ``/lib64`` links;
- busybox, the guest's Xen device modules and ``init`` = init/pyguest-init, which starts the
  guest agent (:mod:`grantscope.lab.agent`).

Modification times are kept so the cached ``.pyc`` files stay valid: without them every import
would recompile in the guest, which under TCG costs minutes.  The archive is gzip-compressed
(74 MB -> 26 MB): an HVM guest's firmware copies its initramfs through the device model's
fw_cfg interface, which under TCG took minutes for the plain archive.

The image depends on the current source, so it is rebuilt when any input changes; the key hashes
each input's path, size and mtime (cheap to check before every lab run).
"""

from __future__ import annotations

import compileall
import hashlib
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from grantscope.lab import modules, paths
from grantscope.lab.build import LabBuild, add_modules, base_image, fetch_package
from grantscope.lab.cpio import InitramfsBuilder
from grantscope.lab.errors import LabError

# Bump when the image layout changes in a way the input hash does not see.
IMAGE_FORMAT = 2
DIST_PACKAGES = "usr/local/lib/python3.{minor}/dist-packages"
# Standard-library parts nothing in grantscope imports; together about 30 MB.
STDLIB_SKIP = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
               "pydoc_data", "config-", "site-packages", "dist-packages")
IMAGE_NAME = "pyguest.cpio.gz"
KEEP_IMAGES = 3


@dataclass(frozen=True)
class ImageFile:
    """One host file and where it goes in the image."""

    source: Path
    target: str          # path inside the image, no leading '/'


def _skip_stdlib(rel: Path) -> bool:
    top = rel.parts[0] if rel.parts else ""
    return any(top == s or (s.endswith("-") and top.startswith(s)) for s in STDLIB_SKIP)


def stdlib_files() -> Iterator[ImageFile]:
    """The standard library (sources, .pyc, lib-dynload) at its own path."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*")):
        rel = path.relative_to(stdlib)
        if _skip_stdlib(rel) or path.is_dir():
            continue
        if path.is_file():
            yield ImageFile(path, str(path).lstrip("/"))


def runtime_distributions(root: str = "grantscope") -> list[metadata.Distribution]:
    """The installed distributions grantscope needs at run time (without itself)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as err:
            raise LabError(f"grantscope's dependency {name!r} is not installed",
                           "Install the project first: .venv/bin/pip install -e .") from err
        seen[key] = dist
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[ ;<>=!\[~(]", req, maxsplit=1)[0])
    return [d for k, d in sorted(seen.items()) if k != root]


def distribution_files(dists: Iterable[metadata.Distribution], dest: str) -> Iterator[ImageFile]:
    """Each distribution's installed files (from RECORD) under ``dest``; no scripts."""
    for dist in dists:
        for rel in dist.files or []:
            if rel.parts and (rel.parts[0] == ".." or rel.parts[0].endswith(".data")):
                continue   # console scripts and data outside site-packages
            source = Path(str(dist.locate_file(rel)))
            if source.is_file():
                yield ImageFile(source, f"{dest}/{rel.as_posix()}")


def grantscope_files(dest: str) -> Iterator[ImageFile]:
    """The grantscope package of this checkout (following the probes/themes links).

    Compiled first, so the guest imports cached bytecode instead of compiling every module.
    """
    package = paths.PACKAGE_DIR.parent
    tag = sys.implementation.cache_tag
    compileall.compile_dir(str(package), quiet=2)
    for dirpath, dirnames, filenames in os.walk(package, followlinks=True):
        dirnames.sort()
        in_cache = Path(dirpath).name == "__pycache__"
        for name in sorted(filenames):
            if in_cache and (tag not in name or ".opt-" in name):
                continue
            source = Path(dirpath) / name
            rel = source.relative_to(package.parent)
            yield ImageFile(source, f"{dest}/{rel.as_posix()}")


def shared_libraries(binaries: Iterable[Path]) -> set[Path]:
    """Every library ``ldd`` names for ``binaries``, plus the dynamic loader."""
    found: set[Path] = set()
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            match = re.search(r"(/\S+) \(0x", line)
            if match:
                found.add(Path(match.group(1)))
    return found


def _add_path(img: InitramfsBuilder, path: Path) -> None:
    """Add ``path`` with its symbolic links on the way, as they are on the host."""
    parts = path.parts[1:]
    for i in range(1, len(parts)):
        prefix = Path("/", *parts[:i])
        if prefix.is_symlink():
            img.symlink(str(prefix).lstrip("/"), os.readlink(prefix))
            _add_path(img, prefix.resolve() / Path(*parts[i:]))
            return
    name = str(path).lstrip("/")
    if img.has(name):
        return
    if path.is_symlink():
        target = os.readlink(path)
        img.symlink(name, target)
        _add_path(img, (path.parent / target).resolve() if not target.startswith("/")
                  else Path(target))
    else:
        img.add_file(name, path, keep_mtime=True)


def launcher(python: str) -> bytes:
    """The /usr/local/bin/grantscope script (what pip's console-script wrapper does)."""
    return (f"#!{python}\nimport sys\nfrom grantscope.__main__ import main\n"
            "sys.exit(main())\n").encode()


def image_inputs() -> tuple[Path, list[ImageFile]]:
    """The Python interpreter and every file the image takes from the host."""
    python = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    dest = DIST_PACKAGES.format(minor=sys.version_info.minor)
    files = [*stdlib_files(), *distribution_files(runtime_distributions(), dest),
             *grantscope_files(dest)]
    return python, files


def image_key(build: LabBuild, python: Path, files: list[ImageFile]) -> str:
    """A hash of the lab build, the init script and each input's path, size and mtime."""
    digest = hashlib.sha256(f"format={IMAGE_FORMAT} build={build.key}\n".encode())
    digest.update((paths.INIT_DIR / "pyguest-init").read_bytes())
    for item in [ImageFile(python, str(python).lstrip("/")), *files]:
        st = item.source.stat()
        digest.update(f"{item.target}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _build_image(build: LabBuild, root: Path, python: Path, files: list[ImageFile],
                 output: Path) -> None:
    img = base_image()
    img.add_file("init", paths.INIT_DIR / "pyguest-init", 0o755)
    ktree = fetch_package(root, build.kernel_package, build.kernel_package_version)
    add_modules(img, ktree, build.kernel_release, modules.DOMU_MODULES, prefix="usr/")
    # Debian's merged /usr: the loader is found through /lib64 and libraries through /lib.
    for link in ("lib", "lib64"):
        if Path("/", link).is_symlink():
            img.symlink(link, os.readlink(Path("/", link)))
    _add_path(img, python)
    minor = sys.version_info.minor
    img.symlink("usr/bin/python3", python.name)
    binaries = [python]
    for item in files:
        img.add_file(item.target, item.source, keep_mtime=True)
        if item.source.suffix == ".so" or ".so." in item.source.name:
            binaries.append(item.source)
    for lib in sorted(shared_libraries(binaries)):
        _add_path(img, lib)
    img.add_bytes("usr/local/bin/grantscope", launcher(f"/usr/bin/python3.{minor}"), 0o755)
    img.add_bytes("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    img.add_bytes("etc/group", b"root:x:0:\n")
    img.write(output)


def ensure_image(build: LabBuild, root: Path | None = None) -> Path:
    """The Python guest image for ``build``, built now if its inputs changed."""
    root = paths.lab_dir() if root is None else root
    python, files = image_inputs()
    key = image_key(build, python, files)
    directory = root / "pyguest" / key
    output = directory / IMAGE_NAME
    if output.exists():
        return output
    directory.mkdir(parents=True, exist_ok=True)
    sys.stderr.write(f"lab: building the Python guest image {key} ({len(files)} files)\n")
    _build_image(build, root, python, files, output)
    _prune(directory.parent, keep=KEEP_IMAGES)
    return output


def _prune(images: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest images (each is ~75 MB; a source edit makes one).

    More than one is kept because another lab run may still be booting a guest from its image.
    """
    built = sorted((d for d in images.iterdir() if (d / IMAGE_NAME).exists()),
                   key=lambda d: (d / IMAGE_NAME).stat().st_mtime, reverse=True)
    for old in built[keep:]:
        shutil.rmtree(old, ignore_errors=True)
