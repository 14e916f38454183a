"""What a process holds on the Xen devices, and dom0's bound ports: the real-Xen leak check.

tests/xen/conftest.py snapshots :func:`holdings` before and after every test and fails the test
if anything new is still held after a short settling time.  Parsers are pure (unit-tested).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grantscope.sources.lsevtchn import find_lsevtchn

if TYPE_CHECKING:
    from grantscope.xen.xenstore import XenStore

# Devices whose fds hold grants or ports; an xenbus/privcmd fd holds neither.
LEAK_DEVICES = ("/dev/xen/gntdev", "/dev/xen/gntalloc", "/dev/xen/evtchn")
# How long to wait for the kernel and the daemons to settle (a killed child's port, the
# xenconsoled/xenstored ports of a just-destroyed domU) before calling something a leak.
SETTLE_SECONDS = 20.0


@dataclass(frozen=True)
class Holdings:
    """What this process holds on the Xen devices, and dom0's bound ports."""

    maps: frozenset[str]        # /proc/self/maps lines of gntdev/gntalloc mappings
    fds: frozenset[str]         # "fd -> /dev/xen/..." for the leak devices
    ports: frozenset[str]       # lsevtchn lines ("N: state") of dom0's bound ports

    def new_since(self, before: Holdings) -> list[str]:
        """Human-readable lines for everything held now that was not held ``before``."""
        out = [f"mapping: {m}" for m in sorted(self.maps - before.maps)]
        out += [f"open fd: {f}" for f in sorted(self.fds - before.fds)]
        out += [f"dom0 port: {p}" for p in sorted(self.ports - before.ports)]
        return out


def own_mappings(maps_text: str) -> frozenset[str]:
    """The lines of a /proc/PID/maps text that map gntdev or gntalloc."""
    return frozenset(
        line.strip() for line in maps_text.splitlines()
        if line.rstrip().endswith(("/dev/xen/gntdev", "/dev/xen/gntalloc"))
    )


def own_device_fds(fd_dir: str = "/proc/self/fd") -> frozenset[str]:
    """Open fds (of the process whose fd directory this is) that point at a leak device."""
    found = set()
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue        # the fd of the listing itself, already closed
        if target in LEAK_DEVICES:
            found.add(f"{name} -> {target}")
    return frozenset(found)


_PORT_LINE = re.compile(r"^\s*(\d+):\s*(.*?)\s*$")


def parse_lsevtchn(text: str) -> frozenset[str]:
    """Ports in ``lsevtchn`` output as 'N: state' strings (it lists bound ports only)."""
    ports = set()
    for line in text.splitlines():
        match = _PORT_LINE.match(line)
        if match:
            ports.add(f"{match.group(1)}: {match.group(2)}")
    return frozenset(ports)


def dom0_ports() -> frozenset[str]:
    """dom0's bound event-channel ports, from ``lsevtchn 0``."""
    # The Xen release's own tool (/usr/lib/xen-4.17/bin or xen-4.20 on a trixie root).
    tool = find_lsevtchn()
    if tool is None:
        raise RuntimeError("lsevtchn not found (it ships with the Xen tools)")
    proc = subprocess.run([tool, "0"], capture_output=True, text=True, timeout=60,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"lsevtchn 0 failed: {proc.stderr.strip()}")
    return parse_lsevtchn(proc.stdout)


def holdings() -> Holdings:
    """What this process and dom0 hold right now."""
    return Holdings(own_mappings(Path("/proc/self/maps").read_text()), own_device_fds(),
                    dom0_ports())


def leaks_since(before: Holdings, settle: float = SETTLE_SECONDS) -> list[str]:
    """What is held now and was not ``before``, after waiting up to ``settle`` s for it to go."""
    deadline = time.monotonic() + settle
    while True:
        leaked = holdings().new_since(before)
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.25)


def ports_left_to(domid: int, timeout: float = 120.0) -> str:
    """Wait until dom0 holds no port to the destroyed domain ``domid``; '' then, else what is left.

    xenstored and xenconsoled unbind their ports to a destroyed guest a little after
    ``xl destroy`` returns; the leak check must not blame the next test for them.
    """
    from grantscope.sources.lsevtchn import read_lsevtchn

    deadline = time.monotonic() + timeout
    while True:
        ports, why = read_lsevtchn(0)
        left = [p for p in ports if p.remote_domid == domid]
        if not why and not left:
            return ""
        if time.monotonic() > deadline:
            return (f"dom0 ports to destroyed d{domid} remain after {timeout:g} s: "
                    f"{[p.to_json() for p in left]} {why}")
        time.sleep(1.0)


def wait_ports_released(domid: int, timeout: float = 120.0) -> None:
    """Wait until dom0 holds no port to the destroyed domain ``domid``; LabError if one stays.

    For every teardown that destroys a guest: a port left to a dead domain is a leak, never
    something to wait out silently (:func:`ports_left_to` returns what is left).
    """
    from grantscope.lab.errors import LabError

    left = ports_left_to(domid, timeout)
    if left:
        raise LabError(left, "dom0 still holds an event channel to a destroyed guest: whoever "
                             "bound it (a test, grantscope, xenstored or xenconsoled) leaked it")


def xenstore_left_by(domid: int, store: XenStore) -> list[str]:
    """The XenStore directories of the destroyed domain ``domid`` that are still there: its
    home and dom0's backend directories for it (``xl destroy`` removes them all)."""
    home = f"/local/domain/{domid}"
    left = [home] if store.exists(home) else []
    backends = "/local/domain/0/backend"
    kinds = store.list(backends) if store.exists(backends) else []
    left += [f"{backends}/{kind}/{domid}" for kind in kinds
             if store.exists(f"{backends}/{kind}/{domid}")]
    return left


def wait_guest_released(domid: int, timeout: float = 120.0) -> None:
    """All a guest destroyed with ``xl destroy`` held in dom0 is gone: its ports
    (:func:`wait_ports_released`), its XenStore home and the backend directories for it.
    LabError naming what stayed."""
    from grantscope.lab.errors import LabError
    from grantscope.xen.xenstore import XenStore

    wait_ports_released(domid, timeout)
    # xl destroy removed them before it returned; a moment more for a hotplug script racing it.
    deadline = time.monotonic() + 10.0
    with XenStore.open(timeout=30.0) as store:
        while (left := xenstore_left_by(domid, store)) and time.monotonic() < deadline:
            time.sleep(0.5)
    if left:
        raise LabError(f"XenStore still holds the destroyed d{domid}: {', '.join(left)}",
                       "xl destroy removes a guest's home and its backends; what stays is a "
                       "leak (a test, grantscope or the toolstack wrote it back)")
