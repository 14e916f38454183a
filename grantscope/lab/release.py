"""A Debian release other than the host's: its apt view and the dom0 root built from it (issue 15).

A lab configuration such as ``trixie`` boots that release's Xen and kernel and runs dom0 from a
root of that release instead of the host's ``/`` (a release's ``xl``/``xenstored`` must match its
hypervisor).  Everything lands in the lab directory::

    apt/<suite>/                      apt's own sources.list, lists and cache for that suite
                                      (the host's apt configuration is never touched)
    roots/<suite>-<key>/              the root (mmdebstrap), with grantscope in a venv
    roots/<suite>-<key>.json          written last: the root is complete

``key`` hashes the root's Debian package list, the checkout's pyproject.toml (the Python
packages the venv holds) and the checkout's path (the venv's editable install points there), so
the root is built once and again only when one of those changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grantscope.lab.errors import LabError

DEBIAN_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Where the venv with grantscope lives inside a release root.
ROOT_VENV = "/opt/grantscope-venv"
# Bump when the layout of a root changes in a way the key does not see.
ROOT_FORMAT = 2
# The host's CA bundle, copied into the root while pip runs there (a TLS-intercepting proxy's
# CA is only in the host's bundle, not in pip's own).
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Release:
    """A Debian release a lab configuration boots: its Xen and kernel packages and dom0 root."""

    suite: str                          # e.g. trixie
    xen_package: str                    # e.g. xen-hypervisor-4.20-amd64
    xen_image: str                      # the hypervisor inside it, e.g. boot/xen-4.20-amd64.gz
    root_packages: tuple[str, ...]      # what dom0's root holds besides the essential set
    kernel_meta_package: str = "linux-image-amd64"


def apt_dir(lab_root: Path, release: Release) -> Path:
    """The directory of the suite's own apt state."""
    return lab_root / "apt" / release.suite


def apt_options(lab_root: Path, release: Release) -> list[str]:
    """``-o`` options that point apt at the suite's own sources, lists and cache only."""
    base = apt_dir(lab_root, release)
    return ["-o", f"Dir::Etc::SourceList={base / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={base / 'lists'}",
            "-o", f"Dir::Cache={base / 'cache'}",
            "-o", f"Dir::State::status={base / 'status'}",
            "-o", "APT::Architecture=amd64"]


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, env=env)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        raise LabError(f"could not {what}: '{shlex.join(argv[:3])} ...' exited with "
                       f"{proc.returncode}", "\n".join(detail) or "no output")
    return proc.stdout


def update_lists(lab_root: Path, release: Release, *, force: bool = False) -> None:
    """``apt-get update`` the suite's own lists (once; again when ``force``)."""
    base = apt_dir(lab_root, release)
    lists = base / "lists"
    if not force and any(lists.glob("*_Packages")):
        return
    if not Path(KEYRING).exists():
        raise LabError(f"no Debian archive keyring at {KEYRING}",
                       "Install it: apt-get install debian-archive-keyring")
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "status").touch()
    (base / "sources.list").write_text(
        f"deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {release.suite} main\n")
    _run(["apt-get", *apt_options(lab_root, release), "update", "-q"],
         f"read Debian {release.suite}'s package lists")


def root_key(release: Release, checkout: Path) -> str:
    """The cache key of a release root: its package lists and the checkout it installs."""
    pyproject = (checkout / "pyproject.toml").read_bytes()
    text = json.dumps({"format": ROOT_FORMAT, "suite": release.suite, "mirror": DEBIAN_MIRROR,
                       "packages": sorted(release.root_packages), "checkout": str(checkout),
                       "pyproject": hashlib.sha256(pyproject).hexdigest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def root_path(lab_root: Path, release: Release, checkout: Path) -> Path:
    """Where the root for ``checkout`` lives (complete when its .json exists)."""
    return lab_root / "roots" / f"{release.suite}-{root_key(release, checkout)}"


def _hooks(checkout: Path) -> list[str]:
    """mmdebstrap customize hooks: a venv with grantscope[test] from ``checkout``, editable.

    setuptools joins it because cffi compiles through it on Python 3.12+, and the C loop is
    built again in that venv whenever a fresh clone lacks it (:func:`prepare_checkout`).

    The checkout is bind-mounted at its own path while pip runs, so the editable install points
    where dom0 will see it (the lab shows the checkout at the same path).  pip runs with a clean
    environment (the host's PIP_* settings name host paths) and the host's CA bundle.
    """
    ck = shlex.quote(str(checkout))
    pip_env = ("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "
               "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_NO_CACHE_DIR=1")
    if HOST_CA_BUNDLE.exists():
        # PIP_CERT for pip itself, SSL_CERT_FILE for the pip that installs the build backend
        # (it runs isolated from PIP_* settings).
        pip_env += " PIP_CERT=/tmp/gslab-ca.crt SSL_CERT_FILE=/tmp/gslab-ca.crt"
    pip = f'chroot "$1" {pip_env} {ROOT_VENV}/bin/pip install -q'
    return [
        f'chroot "$1" python3 -m venv {ROOT_VENV}',
        f'cp {shlex.quote(str(HOST_CA_BUNDLE))} "$1/tmp/gslab-ca.crt" || true',
        # A release's own pip may predate editable installs from pyproject.toml (PEP 660:
        # bullseye's pip 20.3 refuses them), so the venv gets a current pip first.
        f'{pip} --upgrade pip',
        f'mkdir -p "$1"{ck} && mount --bind {ck} "$1"{ck} && '
        f'{{ {pip} -e {ck}"[test]" setuptools; rc=$?; '
        f'umount "$1"{ck}; exit $rc; }}',
        'rm -f "$1/tmp/gslab-ca.crt"',
    ]


def ensure_root(lab_root: Path, release: Release, checkout: Path,
                say: Callable[[str], None] = print) -> Path:
    """The root of ``release`` for ``checkout``: reused when complete, else built (mmdebstrap)."""
    target = root_path(lab_root, release, checkout)
    stamp = target.with_name(target.name + ".json")
    if stamp.exists():
        return target
    if shutil.which("mmdebstrap") is None:
        raise LabError(f"building the Debian {release.suite} root needs mmdebstrap",
                       "Install it: apt-get install mmdebstrap "
                       "(or grantscope lab build --install-deps)")
    if os.geteuid() != 0:
        raise LabError(f"building the Debian {release.suite} root needs root (mmdebstrap)",
                       "Run 'grantscope lab build --config ...' as root.")
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    argv = ["mmdebstrap", "--variant=apt", f"--keyring={KEYRING}",
            f"--include={','.join(release.root_packages)}"]
    argv += [f"--customize-hook={hook}" for hook in _hooks(checkout)]
    argv += [release.suite, str(tmp), DEBIAN_MIRROR]
    say(f"mmdebstrap {release.suite} ({len(release.root_packages)} packages + a venv "
        f"with grantscope) into {target}")
    started = time.monotonic()
    log = target.with_name(target.name + ".log")
    with open(log, "w") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        lines = log.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if "rror" in line][-8:] or lines[-8:]
        raise LabError(f"could not build the Debian {release.suite} root: mmdebstrap exited "
                       f"with {proc.returncode}", "\n".join(errors) + f"\nFull log: {log}")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    stamp.write_text(json.dumps({"suite": release.suite, "packages": list(release.root_packages),
                                 "checkout": str(checkout), "venv": ROOT_VENV,
                                 "seconds": round(time.monotonic() - started, 1),
                                 "built": time.time()}, indent=2) + "\n")
    return target


# Exits 0 when the checkout (argv[1]) holds a C loop for this Python no older than its builder.
_LOOP_IS_CURRENT = (
    "import sys, sysconfig, pathlib; x = pathlib.Path(sys.argv[1], 'grantscope', 'xen'); "
    "so = x / ('_evtloop' + sysconfig.get_config_var('EXT_SUFFIX')); "
    "sys.exit(0 if so.exists() and so.stat().st_mtime >= "
    "(x / '_evtloop_build.py').stat().st_mtime else 1)")


def prepare_checkout(root: Path, checkout: Path) -> None:
    """Byte-compile the checkout's grantscope for the root's Python and build its C loop there.

    dom0 sees the checkout read-only, so without ``cpython-3NN.pyc`` files every grantscope
    process there would compile each module again under TCG (seconds per process).  compileall
    skips what is up to date.  The C loop of ``pingpong`` (``_evtloop.cpython-3NN-*.so``) is
    built only by the install that made the root, so a root reused for a fresh clone of the
    same path would find none and ``pingpong`` would fall back to its Python loop: it is built
    here when missing or older than its builder.  The checkout is bind-mounted into the root
    in a private mount namespace (unshare), so nothing stays mounted.  One process compiles
    (no ``-j``): the chroot has no /dev/shm, which compileall's workers need on Python 3.9.
    """
    ck = shlex.quote(str(checkout))
    python = f'chroot "$1" {ROOT_VENV}/bin/python'
    inner = (f'mkdir -p "$1"{ck} && mount --bind {ck} "$1"{ck} && '
             f'{python} -m compileall -q {ck}/grantscope && '
             f'{{ {python} -c {shlex.quote(_LOOP_IS_CURRENT)} {ck} || '
             f'{python} {ck}/grantscope/xen/_evtloop_build.py; }}')
    _run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh", str(root)],
         f"byte-compile {checkout}/grantscope and build its C loop for the {root.name} root")
