"""Kernel module closures for the initramfs images, from ``modprobe --show-depends``.

The Debian kernel .deb ships no modules.dep, so the build runs ``depmod -b ROOT VER`` first;
then ``modprobe -d ROOT -S VER --show-depends MOD`` prints the modules MOD needs, in load order.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from grantscope.lab.errors import LabError

# dom0: 9p root + overlay, every Xen device grantscope uses (NOTES: all are modules), and
# netback: the kernel backend of the lab's test vifs (a PV device whose counters and rings
# report reads; the guest's frontend is grantscope.lab.vif_frontend).
DOM0_MODULES = (
    "virtio_pci", "9pnet_virtio", "9p", "overlay",
    "xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs", "xen-netback",
)
# domU: only the Xen devices its peer program uses.
DOMU_MODULES = ("xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs")


def parse_show_depends(output: str) -> list[str]:
    """The module files named by ``modprobe --show-depends`` output, in load order.

    Lines look like ``insmod /lib/modules/V/kernel/fs/9p/9p.ko`` (possibly followed by
    options) or ``builtin NAME`` for code built into the kernel, which needs no file.
    """
    paths: list[str] = []
    for line in output.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "insmod" and len(words) >= 2:
            paths.append(words[1])
        elif words[0] != "builtin":
            raise LabError(
                f"unexpected line from modprobe --show-depends: {line!r}",
                "The kmod package may be a version this code does not know.",
            )
    return paths


def merge_closures(closures: Iterable[list[str]]) -> list[str]:
    """Concatenate load-ordered closures, keeping each module's first position only."""
    seen: set[str] = set()
    merged: list[str] = []
    for closure in closures:
        for path in closure:
            if path not in seen:
                seen.add(path)
                merged.append(path)
    return merged


def module_closure(root: Path, version: str, names: Iterable[str]) -> list[Path]:
    """Module files (absolute host paths under ``root``) needed for ``names``, in load order."""
    closures = []
    for name in names:
        proc = subprocess.run(
            ["modprobe", "-d", str(root), "-S", version, "--show-depends", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(
                f"modprobe could not resolve kernel module {name!r} for {version}",
                proc.stderr.strip() or "Is modules.dep built (depmod -b)?",
            )
        closures.append(parse_show_depends(proc.stdout))
    paths = []
    for text in merge_closures(closures):
        # modprobe -d prints paths already prefixed by ROOT; accept both forms.
        path = Path(text)
        if not str(path).startswith(str(root)):
            path = root / str(path).lstrip("/")
        paths.append(path)
    return paths
