"""The host tools the lab needs, the Debian packages that provide them, and installing them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from grantscope.lab.errors import LabError, MissingToolsError

XEN_BIN = "/usr/lib/xen-4.17/bin"


@dataclass(frozen=True)
class Tool:
    """One thing the lab needs on the host: a command on PATH or a file, and its package."""

    name: str           # a command name looked up on PATH, or an absolute file path
    package: str        # the Debian package that provides it
    purpose: str        # why the lab needs it (shown in the message)


BUILD_TOOLS = (
    Tool("apt-get", "apt", "download the Xen and kernel packages"),
    Tool("dpkg-deb", "dpkg", "unpack the downloaded packages"),
    Tool("depmod", "kmod", "index the kernel's modules"),
    Tool("modprobe", "kmod", "list each module's dependencies"),
    Tool("/bin/busybox", "busybox-static", "the initramfs userland"),
    Tool("gcc", "gcc", "build the static domU peer"),
    Tool("/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev", "link the peer statically"),
    Tool("/usr/include/xen/gntalloc.h", "linux-libc-dev", "the Xen device ioctls for the peer"),
)
RUN_TOOLS = (
    Tool("qemu-system-x86_64", "qemu-system-x86", "boot Xen under QEMU"),
    Tool(f"{XEN_BIN}/xenstored", "xen-utils-4.17", "dom0's xenstored, xl, xenconsoled"),
    Tool("xenstore-read", "xenstore-utils", "wait for xenstored in dom0"),
    Tool("/usr/libexec/xen-qemu-system-i386", "qemu-system-xen",
         "the device model of HVM guests (dom0 runs it from the host's files)"),
)
# What a configuration with its own Debian release (grantscope/lab/release.py) needs besides.
RELEASE_TOOLS = (
    Tool("mmdebstrap", "mmdebstrap", "build the release's dom0 root"),
    Tool("/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring",
         "check the release's packages"),
)
RELEASE_PACKAGES = ("mmdebstrap", "debian-archive-keyring")
# Everything --install-deps installs: the tools above plus cpio (kept for manual initramfs work).
INSTALL_PACKAGES = (
    "qemu-system-x86", "xen-utils-4.17", "xenstore-utils", "busybox-static",
    "kmod", "cpio", "gcc", "libc6-dev", "linux-libc-dev", "qemu-system-xen",
)


def _present(tool: Tool, which: Callable[[str], str | None]) -> bool:
    if tool.name.startswith("/"):
        return os.path.exists(tool.name)
    return which(tool.name) is not None


def missing_tools(
    tools: Iterable[Tool], *, which: Callable[[str], str | None] = shutil.which
) -> list[Tool]:
    """The tools in ``tools`` that are not on this host."""
    return [t for t in tools if not _present(t, which)]


def missing_tools_error(missing: list[Tool]) -> MissingToolsError:
    """The error that names each missing tool, its package, and the command that fixes it."""
    packages = sorted({t.package for t in missing})
    lines = [f"  {t.name} (package {t.package}): needed to {t.purpose}" for t in missing]
    explanation = (
        "Missing:\n" + "\n".join(lines) + "\n"
        f"Install them as root with: apt-get update && apt-get install {' '.join(packages)}\n"
        "or run: grantscope lab build --install-deps"
    )
    noun = "tool" if len(missing) == 1 else "tools"
    return MissingToolsError(f"the lab needs {len(missing)} {noun} not installed here", explanation)


def require(tools: Iterable[Tool]) -> None:
    """Raise :class:`MissingToolsError` if any of ``tools`` is missing."""
    missing = missing_tools(tools)
    if missing:
        raise missing_tools_error(missing)


def install_packages(packages: Iterable[str] = INSTALL_PACKAGES) -> None:
    """``apt-get update`` then ``apt-get install -y`` the lab's packages (needs root)."""
    if os.geteuid() != 0:
        raise LabError(
            "--install-deps must run as root (it calls apt-get install)",
            "Run it with sudo, or install the packages yourself: "
            f"apt-get install {' '.join(packages)}",
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    commands = [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends",
         "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
         *packages],
    ]
    for argv in commands:
        sys.stderr.write(f"lab: {' '.join(argv)}\n")
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            raise LabError(
                f"'{' '.join(argv[:2])}' failed with exit status {proc.returncode}",
                "See apt-get's output above; the lab needs Debian's archive reachable.",
            )
