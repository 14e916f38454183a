"""Is this machine usable by grantscope?  Read-only checks, one immutable report.

Checks: the hypervisor, the /dev/xen nodes (present, a character device, openable by
us), the driver modules, root, XenStore reachability, our own domid, dom0 or domU,
the guest type, the Xen version, the kernel and the Python running grantscope.  Opening a
device node and closing it again is the only "action" taken: nothing is bound, granted or
written.
"""

from __future__ import annotations

import os
import platform
import stat
import sys
from collections.abc import Callable
from dataclasses import field
from typing import Any

from grantscope._compat import slotted_dataclass
from grantscope.sources import xsdaemon
from grantscope.sources.guest_caps import capabilities
from grantscope.xen import _host

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"

# Nodes grantscope needs (must open) and the ones it uses when present.
REQUIRED_NODES = ("gntdev", "gntalloc", "evtchn")
OPTIONAL_NODES = ("xenbus", "privcmd")


@slotted_dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ok / warn / fail / info."""

    name: str
    status: str
    summary: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "detail": self.detail}


@slotted_dataclass(frozen=True)
class DoctorReport:
    """All checks plus the facts they established."""

    checks: tuple[Check, ...]
    xen: bool
    domid: int | None = None
    role: str | None = None  # "dom0" | "domU"
    guest_type: str | None = None
    xen_version: str | None = None
    xenstore: str | None = None  # transport used, when reachable
    xenstored: str | None = None  # the daemon's flavour: "xenstored" | "oxenstored" | None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """True when nothing failed: grantscope's device commands can run here."""
        return self.xen and all(c.status != FAIL for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``ok`` is :attr:`usable`)."""
        return {
            "ok": self.usable,
            "xen": self.xen,
            "domid": self.domid,
            "role": self.role,
            "guest_type": self.guest_type,
            "xen_version": self.xen_version,
            "xenstore": self.xenstore,
            "xenstored": self.xenstored,
            "checks": [c.to_json() for c in self.checks],
        }


StoreOpener = Callable[[], Any]


def _default_store() -> Any:
    from grantscope.xen.xenstore import XenStore  # absent in early builds: caught by caller

    return XenStore.open(timeout=2.0)


def _check_node(name: str, dev_dir: str, required: bool) -> Check:
    path = os.path.join(dev_dir, name)
    module = _host.module_for(path)
    load = module[0] if module else "the driver"
    missing = FAIL if required else WARN
    try:
        st = os.stat(path)
    except OSError:
        return Check(f"device {name}", missing, f"{path} is missing",
                     f"load the driver: modprobe {load}")
    mode = f"mode {stat.S_IMODE(st.st_mode):o} owner {st.st_uid}:{st.st_gid}"
    if not stat.S_ISCHR(st.st_mode):
        return Check(f"device {name}", missing, f"{path} is not a character device", mode)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        hint = "run as root" if os.geteuid() != 0 else "check the node's permissions / XSM"
        return Check(f"device {name}", missing,
                     f"{path} cannot be opened: {os.strerror(exc.errno or 0)}",
                     f"{mode}; {hint}")
    os.close(fd)
    return Check(f"device {name}", OK, f"{path} opens read-write", mode)


def _check_module(node: str, dev_dir: str, root: str) -> Check:
    module = _host.DEVICE_MODULES[node]
    if _host.module_loaded(module[1], root):
        detail = ""
        limit = _host.module_param(module[1], "limit", root)
        if limit is not None:
            detail = f"limit={limit}"
        return Check(f"module {module[0]}", OK, f"{module[0]} is loaded", detail)
    if os.path.exists(os.path.join(dev_dir, node)):
        return Check(f"module {module[0]}", INFO,
                     f"{module[0]} not in /sys/module (built into the kernel?)")
    return Check(f"module {module[0]}", FAIL, f"{module[0]} is not loaded",
                 f"modprobe {module[0]}")


def _capabilities(root: str) -> str | None:
    return _host.read_text("/proc/xen/capabilities", root)


def _version(root: str) -> str | None:
    major = _host.read_text("/sys/hypervisor/version/major", root)
    minor = _host.read_text("/sys/hypervisor/version/minor", root)
    if major is None or minor is None:
        return None
    extra = _host.read_text("/sys/hypervisor/version/extra", root) or ""
    return f"{major}.{minor}{extra}"


def run_doctor(
    root: str = "/",
    *,
    dev_dir: str | None = None,
    open_store: StoreOpener | None = None,
) -> DoctorReport:
    """Run every check.  ``root``/``dev_dir``/``open_store`` let tests fake the machine."""
    dev = dev_dir if dev_dir is not None else os.path.join(root, "dev/xen")
    checks: list[Check] = []
    hv = _host.hypervisor_type(root)
    xen = _host.is_xen_host(root)
    if not xen:
        checks.append(Check("hypervisor", FAIL, "not a Xen host",
                            f"/sys/hypervisor/type is {hv or 'absent'} and /proc/xen is not "
                            "mounted; run grantscope in a Xen domain, or try "
                            "'grantscope --demo'"))
        return DoctorReport(checks=tuple(checks), xen=False)
    seen = hv or ("xenfs" if _capabilities(root) is not None else "/dev/xen")
    checks.append(Check("hypervisor", OK, f"running on Xen ({seen})"))

    version = _version(root)
    checks.append(Check("xen version", INFO if version else WARN,
                        version or "unknown (/sys/hypervisor/version unreadable)"))
    # The dom0/domU kernel and this Python: what differs across releases (docs/COMPATIBILITY.md).
    kernel = _host.read_text("/proc/sys/kernel/osrelease", root)
    checks.append(Check("kernel", INFO if kernel else WARN,
                        f"Linux {kernel}" if kernel else "unknown (/proc/sys/kernel/osrelease)"))
    checks.append(Check("python", INFO, f"Python {platform.python_version()}", sys.executable))
    guest_type = _host.read_text("/sys/hypervisor/guest_type", root)
    checks.append(Check("guest type", INFO if guest_type else WARN,
                        guest_type or "unknown (/sys/hypervisor/guest_type absent)"))
    dom0 = _host.is_dom0(root)
    role = None if dom0 is None else ("dom0" if dom0 else "domU")
    checks.append(Check("role", INFO if role else WARN,
                        role or "unknown (no /proc/xen/capabilities or start_flags)",
                        "from /proc/xen/capabilities" if _capabilities(root) is not None
                        else "from /sys/hypervisor/start_flags"))

    euid = os.geteuid()
    checks.append(Check("root", OK if euid == 0 else WARN,
                        "running as root" if euid == 0 else f"not root (euid {euid})",
                        "" if euid == 0 else "the /dev/xen devices are normally root-only"))

    for node in REQUIRED_NODES:
        checks.append(_check_node(node, dev, required=True))
        checks.append(_check_module(node, dev, root))
    for node in OPTIONAL_NODES:
        checks.append(_check_node(node, dev, required=False))

    domid: int | None = 0 if dom0 else None
    transport: str | None = None
    try:
        store = (open_store or _default_store)()
    except ImportError:
        checks.append(Check("xenstore", FAIL, "XenStore client not available in this build",
                            "grantscope.xen.xenstore is missing"))
        store = None
    except Exception as exc:  # any failure to connect is a finding, not a crash
        checks.append(Check("xenstore", FAIL, "XenStore is not reachable",
                            getattr(exc, "message", None) or str(exc)))
        store = None
    if store is not None:
        try:
            transport = str(getattr(store, "transport", "") or "") or None
            raw = store.read_or_none("domid")
            if raw is not None and raw.strip().isdigit():
                domid = int(raw.strip())
            checks.append(Check("xenstore", OK, f"XenStore reachable ({transport})",
                                str(getattr(store, "path", ""))))
        except Exception as exc:
            checks.append(Check("xenstore", FAIL, "XenStore connected but a read failed",
                                getattr(exc, "message", None) or str(exc)))
        finally:
            store.close()
    daemon = xsdaemon.detect(root)
    checks.append(_daemon_check(daemon))
    checks.append(Check("domid", INFO if domid is not None else WARN,
                        f"own domid {domid}" if domid is not None else "own domid unknown",
                        "XenStore 'domid'" if domid is not None and not dom0
                        else ("dom0" if dom0 else "XenStore 'domid' unreadable")))
    for cap in capabilities(role, guest_type):
        checks.append(Check("can" if cap.can else "cannot", INFO, cap.summary, cap.detail))
    return DoctorReport(checks=tuple(checks), xen=True, domid=domid, role=role,
                        guest_type=guest_type, xen_version=version, xenstore=transport,
                        xenstored=daemon.flavour)


def _daemon_check(daemon: xsdaemon.XsDaemon) -> Check:
    """Which XenStore daemon answers, and what differs for the user under oxenstored."""
    if daemon.flavour is None:
        return Check("xenstore daemon", INFO, "unknown", daemon.how)
    name = "C xenstored" if daemon.flavour == xsdaemon.C_XENSTORED else "oxenstored (OCaml)"
    detail = daemon.how
    if daemon.differences:
        detail += "; differs from C xenstored: " + "; ".join(daemon.differences)
    return Check("xenstore daemon", INFO, name, detail)
