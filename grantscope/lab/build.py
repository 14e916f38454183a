"""``grantscope lab build``: fetch Xen + a Debian kernel, build the initramfs images and the peer.

Everything lands in the lab directory (:func:`grantscope.lab.paths.lab_dir`)::

    debs/<pkg>_<version>/*.deb        downloaded packages (apt-get download)
    pkgs/<pkg>_<version>/             their unpacked trees (dpkg-deb -x; depmod -b for the kernel)
    builds/<key>/                     xen, vmlinuz, dom0/domu.cpio.gz, xenpeer, manifest.json
    current -> builds/<key>           the build 'lab run' boots
    current-<config> -> builds/<key>  the build of a configuration with its own Debian release
                                      (its packages come through apt/<suite>, and its dom0 root
                                      is built by grantscope/lab/release.py)

``key`` hashes the package versions and the init/peer sources, so a changed script or a new
kernel gives a new build while an unchanged one is reused as is.  A build is complete when its
manifest.json exists (written last).  A file lock serialises concurrent builds.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path

from grantscope.lab import configs, deps, modules, paths, release
from grantscope.lab.cpio import InitramfsBuilder
from grantscope.lab.errors import LabError

XEN_PACKAGE = "xen-hypervisor-4.17-amd64"
XEN_IMAGE = "boot/xen-4.17-amd64.gz"
KERNEL_META_PACKAGE = "linux-image-amd64"
# Bump when the layout of a build changes in a way the source hash does not see.
BUILD_FORMAT = 1


@dataclass(frozen=True)
class LabBuild:
    """A complete build: the files 'lab run' boots and the domU helper starts guests from."""

    directory: Path
    key: str
    xen_version: str
    kernel_package: str
    kernel_package_version: str
    kernel_release: str          # e.g. 6.1.0-56-amd64 (the lib/modules directory name)

    @property
    def xen(self) -> Path:
        """Xen, decompressed: a multiboot ELF that QEMU's -kernel boots."""
        return self.directory / "xen"

    @property
    def kernel(self) -> Path:
        """The Linux kernel image used for dom0 and for every domU."""
        return self.directory / "vmlinuz"

    @property
    def dom0_initrd(self) -> Path:
        """dom0's initramfs (busybox, modules, the init that switches to the host's /)."""
        return self.directory / "dom0.cpio.gz"

    @property
    def domu_initrd(self) -> Path:
        """The domU initramfs (busybox, modules, the peer program)."""
        return self.directory / "domu.cpio.gz"

    @property
    def peer(self) -> Path:
        """The static peer program (also runnable in dom0 for the C benchmark anchors)."""
        return self.directory / "xenpeer"

    def to_json(self) -> dict[str, object]:
        """The build as a JSON-ready dict (``lab info --json``)."""
        data: dict[str, object] = {k: str(v) for k, v in asdict(self).items()}
        for name in ("xen", "kernel", "dom0_initrd", "domu_initrd", "peer"):
            data[name] = str(getattr(self, name))
        return data


def _run(argv: list[str], *, cwd: Path | None = None, what: str) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(
            f"could not {what}: '{' '.join(argv)}' exited with {proc.returncode}",
            "\n".join(detail) or "no output",
        )
    return proc.stdout


def _candidate_version(package: str, apt: Sequence[str] = ()) -> str:
    out = _run(["apt-cache", *apt, "policy", package], what=f"look up package {package}")
    match = re.search(r"^\s*Candidate:\s*(\S+)", out, re.M)
    if not match or match.group(1) == "(none)":
        raise LabError(
            f"Debian package {package} has no installable version here",
            "Run 'apt-get update' (or 'grantscope lab build --install-deps') so apt knows it.",
        )
    return match.group(1)


def parse_kernel_dependency(depends_output: str) -> str:
    """The versioned kernel package named by ``apt-cache depends linux-image-amd64``."""
    for line in depends_output.splitlines():
        match = re.match(r"^\s*\|?Depends:\s*(linux-image-\d\S*)", line)
        if match and not match.group(1).endswith("-unsigned"):
            return match.group(1)
    raise LabError(
        f"could not tell which kernel {KERNEL_META_PACKAGE} depends on",
        "Run 'apt-get update' so apt knows the current Debian kernel.",
    )


def resolve_versions(apt: Sequence[str] = (), xen_package: str = XEN_PACKAGE,
                     kernel_meta: str = KERNEL_META_PACKAGE) -> dict[str, str]:
    """The package versions a build is made of (from apt's lists; no download).  ``apt``:
    options that point apt at another release's lists (grantscope.lab.release)."""
    kernel_pkg = parse_kernel_dependency(
        _run(["apt-cache", *apt, "depends", kernel_meta], what="resolve the Debian kernel")
    )
    return {
        "xen_package": xen_package,
        "xen_version": _candidate_version(xen_package, apt),
        "kernel_package": kernel_pkg,
        "kernel_package_version": _candidate_version(kernel_pkg, apt),
    }


def source_hash() -> str:
    """Hash of everything in the package that goes into a build: init scripts, peer, module
    lists, format."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}\n".encode())
    # modules.py: its lists decide which modules the images carry.
    files = [p for d in (paths.INIT_DIR, paths.PEER_SOURCE.parent) for p in sorted(d.rglob("*"))]
    for path in [*files, Path(modules.__file__)]:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(paths.PACKAGE_DIR).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    busybox = Path("/bin/busybox")
    if busybox.exists():
        digest.update(hashlib.sha256(busybox.read_bytes()).digest())
    return digest.hexdigest()


def build_key(versions: dict[str, str], sources: str) -> str:
    """The cache key of a build: package versions + source hash."""
    text = json.dumps({"versions": versions, "sources": sources}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Who hears each step of a build: the CLI's progress display when one is drawn (build()'s
# on_step), else the step is one line on stderr.
_listener: ContextVar[Callable[[str], None] | None] = ContextVar("lab_build_listener",
                                                                 default=None)


def _say(message: str) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(message)
        return
    sys.stderr.write(f"lab build: {message}\n")
    sys.stderr.flush()


def fetch_package(root: Path, package: str, version: str, apt: Sequence[str] = ()) -> Path:
    """Download (once) and unpack (once) ``package=version``; return the unpacked tree.

    A kernel package that ships its modules under usr/lib/modules (Debian 13) gets a ``lib``
    link to ``usr/lib``, so the tree looks like a root to depmod and modprobe either way."""
    tree = root / "pkgs" / f"{package}_{version}"
    if (tree / ".unpacked").exists():
        return tree
    debdir = root / "debs" / f"{package}_{version}"
    debdir.mkdir(parents=True, exist_ok=True)
    debs = sorted(debdir.glob("*.deb"))
    if not debs:
        _say(f"apt-get download {package}={version}")
        _run(["apt-get", *apt, "download", f"{package}={version}"], cwd=debdir,
             what=f"download {package}")
        debs = sorted(debdir.glob("*.deb"))
        if not debs:
            raise LabError(f"apt-get download {package} produced no .deb", str(debdir))
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    _say(f"unpacking {debs[0].name}")
    _run(["dpkg-deb", "-x", str(debs[0]), str(tree)], what=f"unpack {debs[0].name}")
    if (tree / "usr" / "lib" / "modules").is_dir() and not (tree / "lib").exists():
        (tree / "lib").symlink_to("usr/lib")
    (tree / ".unpacked").write_text(version + "\n")
    return tree


def kernel_release(tree: Path) -> str:
    """The kernel release (lib/modules directory name) inside an unpacked kernel package."""
    releases = sorted(p.name for p in (tree / "lib" / "modules").iterdir() if p.is_dir())
    if len(releases) != 1:
        raise LabError(f"expected one kernel in {tree}/lib/modules, found {releases}")
    return releases[0]


def _module_bytes(path: Path) -> tuple[str, bytes]:
    """A module file's name in the initramfs (always .ko) and its uncompressed contents."""
    name = path.name
    if name.endswith(".ko.xz"):
        return name[:-3], lzma.decompress(path.read_bytes())
    if name.endswith(".ko.zst"):
        proc = subprocess.run(["zstd", "-dcq", str(path)], capture_output=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"could not decompress {path}", "Install zstd (apt-get install zstd).")
        return name[:-4], proc.stdout
    if name.endswith(".ko.gz"):
        return name[:-3], gzip.decompress(path.read_bytes())
    return name, path.read_bytes()


def add_modules(img: InitramfsBuilder, tree: Path, release: str, names: tuple[str, ...], *,
                prefix: str = "") -> None:
    """Add ``names`` and their dependencies, uncompressed, plus /modules.load (load order).

    ``prefix`` puts them under e.g. ``usr/``, for an image whose ``/lib`` is a link into /usr
    (an archive cannot create files through a link whose target comes later in it).
    """
    closure = modules.module_closure(tree, release, names)
    base = tree / "lib" / "modules" / release
    order = []
    for path in closure:
        rel_dir = path.parent.relative_to(base)
        name, data = _module_bytes(path)
        target = f"{prefix}lib/modules/{release}/{rel_dir.as_posix()}/{name}"
        img.add_bytes(target, data, 0o644)
        order.append("/" + target)
    img.add_bytes("modules.load", ("\n".join(order) + "\n").encode())


def base_image() -> InitramfsBuilder:
    """An initramfs with the usual directories, busybox as /bin/sh and a /dev/console node."""
    img = InitramfsBuilder()
    for d in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "mnt", "etc", "root"):
        img.mkdir(d)
    img.add_file("bin/busybox", Path("/bin/busybox"), 0o755)
    img.symlink("bin/sh", "busybox")
    img.chardev("dev/console", 5, 1)
    return img


def build_peer(output: Path) -> None:
    """Compile the peer program statically (it must run in a domU that has no libc)."""
    _run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-o", str(output), str(paths.PEER_SOURCE)],
         what="build the domU peer (gcc -static)")


def _build(root: Path, target: Path, versions: dict[str, str], key: str, *,
           xen_image: str = XEN_IMAGE, apt: Sequence[str] = ()) -> LabBuild:
    xen_tree = fetch_package(root, versions["xen_package"], versions["xen_version"], apt)
    kpkg, kver = versions["kernel_package"], versions["kernel_package_version"]
    ktree = fetch_package(root, kpkg, kver, apt)
    release = kernel_release(ktree)
    if not (ktree / "lib" / "modules" / release / "modules.dep").exists():
        _say(f"depmod -b {ktree} {release}")
        _run(["depmod", "-b", str(ktree), release], what="index the kernel modules (depmod)")

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with gzip.open(xen_tree / xen_image, "rb") as src, open(tmp / "xen", "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copyfile(ktree / "boot" / f"vmlinuz-{release}", tmp / "vmlinuz")

    _say("building the peer program")
    build_peer(tmp / "xenpeer")

    _say("building dom0.cpio.gz")
    dom0 = base_image()
    dom0.add_file("init", paths.INIT_DIR / "dom0-init", 0o755)
    dom0.add_file("stage2", paths.INIT_DIR / "dom0-stage2", 0o755)
    add_modules(dom0, ktree, release, modules.DOM0_MODULES)
    dom0.write(tmp / "dom0.cpio.gz")

    _say("building domu.cpio.gz")
    domu = base_image()
    domu.add_file("init", paths.INIT_DIR / "domu-init", 0o755)
    domu.add_file("bin/xenpeer", tmp / "xenpeer", 0o755)
    add_modules(domu, ktree, release, modules.DOMU_MODULES)
    domu.write(tmp / "domu.cpio.gz")

    build = LabBuild(target, key, versions["xen_version"], kpkg, kver, release)
    manifest = {**versions, "key": key, "kernel_release": release, "built": time.time()}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return build


def load_build(directory: Path) -> LabBuild:
    """The complete build in ``directory``; LabError if it is missing or incomplete."""
    manifest = directory / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
        return LabBuild(
            directory, data["key"], data["xen_version"], data["kernel_package"],
            data["kernel_package_version"], data["kernel_release"],
        )
    except (OSError, ValueError, KeyError) as err:
        raise LabError(
            f"no complete lab build in {directory}",
            "Run 'grantscope lab build' (add --install-deps on a fresh machine).",
        ) from err


# Manifest members that are not package versions (everything else went into the key).
_NOT_VERSIONS = ("key", "kernel_release", "built")


def is_stale(built: LabBuild) -> bool:
    """True when this checkout's init scripts, peer or module lists differ from the ones
    ``built`` was made from (its key, recomputed from its own package versions, differs)."""
    try:
        data = json.loads((built.directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return True
    versions = {k: str(v) for k, v in data.items() if k not in _NOT_VERSIONS}
    return build_key(versions, source_hash()) != built.key


def current_link(config: configs.LabConfig | None = None) -> str:
    """The name of the link to the build that ``config`` boots (``current`` for the host's)."""
    if config is None or config.release is None:
        return "current"
    return f"current-{config.name}"


def _point_current(root: Path, target: Path, link_name: str = "current") -> None:
    link = root / link_name
    tmp = root / f".current.tmp{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(Path("builds") / target.name)
    tmp.replace(link)


def current_build(root: Path | None = None,
                  config: configs.LabConfig | None = None) -> LabBuild:
    """The build 'lab run' boots: $GRANTSCOPE_LAB_BUILD if set (inside dom0), else the
    configuration's link (``current`` for the host's)."""
    override = os.environ.get(paths.LAB_BUILD_ENV)
    if override:
        return load_build(Path(override))
    root = paths.lab_dir() if root is None else root
    try:
        return load_build((root / current_link(config)).resolve())
    except LabError as err:
        if config is None or config.release is None:
            raise
        # say which build: the plain 'lab build' makes the host's, not this release's
        raise LabError(err.message, f"Run 'grantscope lab build --config {config.name}' (add "
                       "--install-deps on a fresh machine).") from err


def checkout_dir() -> Path:
    """The source checkout grantscope runs from (a release root's venv installs it)."""
    checkout = paths.PACKAGE_DIR.parent.parent
    if not (checkout / "pyproject.toml").exists():
        raise LabError(f"grantscope is not running from a source checkout ({checkout})",
                       "A release configuration installs this checkout into its dom0 root: "
                       "run grantscope from the checkout's venv (pip install -e).")
    return checkout


def release_root(config: configs.LabConfig, root: Path | None = None) -> Path:
    """The dom0 root of a release configuration, built (mmdebstrap) if not there yet."""
    assert config.release is not None
    return release.ensure_root(paths.lab_dir() if root is None else root, config.release,
                               checkout_dir(), say=_say)


def build(root: Path | None = None, *, install_deps: bool = False,
          on_step: Callable[[str], None] | None = None,
          config: configs.LabConfig | None = None) -> LabBuild:
    """Build (or reuse) the lab in ``root``; return the build.  ``on_step`` hears each step
    ("apt-get download ...", "building dom0.cpio.gz") instead of stderr.  A ``config`` with
    its own Debian release gets that release's Xen and kernel, and its dom0 root."""
    token = _listener.set(on_step)
    try:
        lab_root = paths.lab_dir() if root is None else root
        if config is None or config.release is None:
            return _build_or_reuse(lab_root, install_deps)
        result = _build_release(lab_root, install_deps, config)
        release_root(config, lab_root)
        return result
    finally:
        _listener.reset(token)


def _build_release(root: Path, install_deps: bool, config: configs.LabConfig) -> LabBuild:
    rel = config.release
    assert rel is not None
    if install_deps:
        deps.install_packages((*deps.INSTALL_PACKAGES, *deps.RELEASE_PACKAGES))
    deps.require((*deps.BUILD_TOOLS, *deps.RELEASE_TOOLS))
    release.update_lists(root, rel, force=install_deps)
    apt = release.apt_options(root, rel)
    versions = resolve_versions(apt, rel.xen_package, rel.kernel_meta_package)
    return _build_once(root, versions, current_link(config), f" for {config.name}",
                       xen_image=rel.xen_image, apt=apt)


def _build_or_reuse(root: Path, install_deps: bool) -> LabBuild:
    if install_deps:
        deps.install_packages()
    deps.require(deps.BUILD_TOOLS)
    try:
        versions = resolve_versions()
    except LabError as err:
        # Offline, or apt lists missing: a finished build is still good to use.
        try:
            existing = current_build(root)
        except LabError:
            raise err from None
        _say(f"{err.message}; reusing the existing build {existing.key}")
        return existing
    return _build_once(root, versions, current_link(), "")


def _build_once(root: Path, versions: dict[str, str], link_name: str, what: str, *,
                xen_image: str = XEN_IMAGE, apt: Sequence[str] = ()) -> LabBuild:
    """The build of these versions and sources: reused when complete, else built (under the
    lock); ``link_name`` then points at it."""
    key = build_key(versions, source_hash())
    target = root / "builds" / key
    with _build_lock(root):
        if (target / "manifest.json").exists():
            _say(f"up to date: {target}")
            result = load_build(target)
        else:
            _say(f"building {key}{what} (Xen {versions['xen_version']}, "
                 f"{versions['kernel_package']} {versions['kernel_package_version']})")
            result = _build(root, target, versions, key, xen_image=xen_image, apt=apt)
            _say(f"done: {target}")
        _point_current(root, target, link_name)
    return result
