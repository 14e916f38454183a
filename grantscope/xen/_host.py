"""Small facts about the machine we run on: is it Xen, is it dom0, which module provides a
device.

Every reader takes a ``root`` so unit tests can point it at a fake tree.
"""

from __future__ import annotations

import os

# device node basename -> (kernel module name to load, its /sys/module directory name)
DEVICE_MODULES: dict[str, tuple[str, str]] = {
    "gntdev": ("xen-gntdev", "xen_gntdev"),
    "gntalloc": ("xen-gntalloc", "xen_gntalloc"),
    "evtchn": ("xen-evtchn", "xen_evtchn"),
    "privcmd": ("xen-privcmd", "xen_privcmd"),
    "xenbus": ("xenfs", "xenfs"),
}


def read_text(path: str, root: str = "/") -> str | None:
    """The stripped contents of ``root``-relative ``path``, or None if it cannot be read."""
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def hypervisor_type(root: str = "/") -> str | None:
    """``/sys/hypervisor/type`` ("xen" on a Xen host), or None when absent."""
    return read_text("/sys/hypervisor/type", root)


def is_xen_host(root: str = "/") -> bool:
    """True when this machine runs on Xen: the one "is this Xen?" check of grantscope.

    Any of the usual signs counts: ``/sys/hypervisor/type`` says "xen", xenfs is mounted
    on ``/proc/xen`` (only possible on Xen), or the kernel created ``/dev/xen`` (a Xen
    driver is loaded).  :func:`grantscope.xen.errors.require_xen` refuses on its answer.
    """
    if hypervisor_type(root) == "xen":
        return True
    if read_text("/proc/xen/capabilities", root) is not None:
        return True
    return os.path.isdir(os.path.join(root, "dev/xen"))


def is_dom0(root: str = "/") -> bool | None:
    """Whether this domain is the control domain (dom0): the one "is this dom0?" check.

    The kernel says it in two places, both from Xen's start-info flag SIF_INITDOMAIN:
    ``/proc/xen/capabilities`` lists ``control_d`` (when xenfs is mounted) and
    ``/sys/hypervisor/start_flags/initdomain`` is ``1``.  Either one saying so makes this
    dom0 (xenfs is often not mounted: grantscope talks to XenStore without it); a file that
    is there and does not say so makes it a domU; None when neither is there (not Xen, or a
    kernel that says neither), so each caller decides what "unknown" means for it.
    """
    caps = read_text("/proc/xen/capabilities", root)
    initdomain = read_text("/sys/hypervisor/start_flags/initdomain", root)
    if (caps is not None and "control_d" in caps) or initdomain == "1":
        return True
    if caps is not None or initdomain is not None:
        return False
    return None


def module_for(path: str) -> tuple[str, str] | None:
    """(module to load, /sys/module name) that provides the device node ``path``."""
    return DEVICE_MODULES.get(os.path.basename(path))


def module_loaded(sys_name: str, root: str = "/") -> bool:
    """True when ``/sys/module/<sys_name>`` exists (loaded, or built in with parameters)."""
    return os.path.isdir(os.path.join(root, "sys/module", sys_name))


def module_param(sys_name: str, param: str, root: str = "/") -> str | None:
    """A module parameter (e.g. ``xen_gntalloc`` ``limit``), or None."""
    return read_text(f"/sys/module/{sys_name}/parameters/{param}", root)
