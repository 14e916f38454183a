"""One exception type for every device failure, explained in words.

A :class:`XenError` carries the errno, the call that failed (``open``, ``mmap``,
``IOCTL_GNTDEV_MAP_GRANT_REF`` ...), its arguments, the likely causes and, when a
GRANT_COPY diagnosis ran, the grant status Xen reported.  :func:`from_oserror`
turns an ``OSError`` from a device call into one, choosing the explanation from the
call and the errno.
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Iterable, Mapping
from typing import Any

from grantscope.errors import GrantscopeError, NoXenError
from grantscope.xen import _host, gntstatus
from grantscope.xen.abi import DOMID_FIRST_RESERVED, DOMID_SELF


class XenError(GrantscopeError):
    """A failed device call or hypercall, with its errno, call, arguments and causes."""

    def __init__(
        self,
        message: str,
        summary: str = "",
        *,
        errno: int | None = None,
        call: str = "",
        arguments: Mapping[str, object] | None = None,
        causes: Iterable[str] = (),
        hint: str = "",
        gnttab_status: int | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.errno = errno
        self.call = call
        self.arguments: dict[str, object] = dict(arguments or {})
        self.causes: list[str] = list(causes)
        self.hint = hint
        self.gnttab_status = gnttab_status
        super().__init__(message, _compose(summary, self.causes, hint), exit_code=exit_code)

    @property
    def errno_name(self) -> str | None:
        """``"EINVAL"`` etc., or None when no errno is involved."""
        if self.errno is None:
            return None
        return errno_mod.errorcode.get(self.errno, f"E{self.errno}")

    def to_json(self) -> dict[str, Any]:
        """The error as the ``error`` member of ``--json`` output."""
        status = self.gnttab_status
        return {
            "message": self.message,
            "errno": self.errno,
            "errno_name": self.errno_name,
            "call": self.call,
            "arguments": self.arguments,
            "explanation": self.explanation,
            "causes": list(self.causes),
            "gnttab_status": status,
            "gnttab_status_name": None if status is None else gntstatus.status_name(status),
        }


class XenUnavailableError(XenError, NoXenError):
    """The device is absent: not a Xen host, or the driver module is not loaded (exit 2)."""

    exit_code = 2


def _compose(summary: str, causes: list[str], hint: str) -> str:
    lines = [summary] if summary else []
    if causes:
        lines.append("Likely causes:")
        lines.extend(f"  - {c}" for c in causes)
    if hint:
        lines.append(f"Try: {hint}")
    return "\n".join(lines)


# A headline names at most this many items of a list argument (a map of 400 grefs would
# otherwise print all of them); the full list stays in ``arguments`` for --json.
_HEADLINE_ITEMS = 6


def _fmt_value(value: object) -> str:
    if isinstance(value, (list, tuple)) and len(value) > _HEADLINE_ITEMS:
        head = ", ".join(str(v) for v in value[:_HEADLINE_ITEMS - 1])
        return f"[{head}, ... {value[-1]}] ({len(value)} items)"
    return str(value)


def _fmt_args(arguments: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in arguments.items())


def _headline(call: str, arguments: Mapping[str, object], err: int | None) -> str:
    what = f"{call}({_fmt_args(arguments)})"
    if err is None:
        return f"{what} failed"
    name = errno_mod.errorcode.get(err, f"E{err}")
    return f"{what} failed: {name} ({os.strerror(err)})"


def not_xen_error(call: str = "open", arguments: Mapping[str, object] | None = None,
                  err: int | None = errno_mod.ENOENT, *,
                  command: str | None = None, also: str = "") -> XenUnavailableError:
    """The error for a machine that is not a Xen host (exit status 2).

    ``command`` (e.g. "xs ls") names the command in the hint, which says how to try it on
    the simulated host instead (``grantscope --demo COMMAND``); ``also`` adds another way.
    """
    args = dict(arguments or {})
    demo = (f"'grantscope --demo {command}' to try it on a simulated host (labelled "
            "SIMULATED)" if command else "'grantscope --demo' for a simulated host")
    return XenUnavailableError(
        "not running on Xen: this command needs a Xen host (dom0 or a domU)",
        "/sys/hypervisor/type does not say 'xen', /proc/xen is not mounted and /dev/xen is "
        "absent, so the Xen devices and XenStore cannot exist here.",
        errno=err,
        call=call,
        arguments=args,
        hint="run grantscope inside a Xen domain (see 'grantscope doctor') or in the "
        f"disposable one 'grantscope lab shell' boots under QEMU, or use {demo}"
        + (f"; {also}" if also else ""),
    )


def require_xen(root: str = "/", *, command: str | None = None, also: str = "") -> None:
    """Raise :class:`XenUnavailableError` (exit 2) unless this machine runs on Xen.

    The one refusal every command that needs Xen gives (``command`` names it in the hint,
    with the ``--demo`` way to try it); the check is :func:`grantscope.xen._host.is_xen_host`.
    """
    if not _host.is_xen_host(root):
        raise not_xen_error("check", {"hypervisor": _host.hypervisor_type(root) or "none"},
                            err=None, command=command, also=also)


def _open_error(exc: OSError, path: str, root: str) -> XenError:
    err = exc.errno
    args = {"path": path}
    if err in (errno_mod.ENOENT, errno_mod.ENXIO, errno_mod.ENODEV):
        if not _host.is_xen_host(root):
            return not_xen_error("open", args, err)
        module = _host.module_for(path)
        load = module[0] if module else "the Xen driver"
        loaded = module is not None and _host.module_loaded(module[1], root)
        causes = [
            f"the {load} kernel module is not loaded"
            if not loaded
            else f"{load} is loaded but the node {path} was not created (no udev/devtmpfs?)",
            "/dev/xen is not populated (devtmpfs not mounted)",
        ]
        return XenUnavailableError(
            f"{path} is missing ({os.strerror(err or 0)})",
            "This machine runs on Xen but the device node is absent.",
            errno=err,
            call="open",
            arguments=args,
            causes=causes,
            hint=f"modprobe {load} (as root), then check ls -l {path}",
        )
    if err in (errno_mod.EACCES, errno_mod.EPERM):
        causes = []
        if os.geteuid() != 0:
            causes.append(f"not running as root (euid {os.geteuid()})")
        try:
            st = os.stat(path)
            causes.append(
                f"{path} is mode {st.st_mode & 0o777:o}, owner {st.st_uid}:{st.st_gid}"
            )
        except OSError:
            pass
        causes.append("a security module (SELinux/AppArmor) denies access")
        return XenError(
            _headline("open", args, err),
            "Permission denied opening the Xen device.",
            errno=err,
            call="open",
            arguments=args,
            causes=causes,
            hint="run as root (sudo grantscope ...), or grant your group rw access to the node",
        )
    return _generic(exc, "open", args)


def _generic(exc: OSError, call: str, arguments: Mapping[str, object],
             causes: Iterable[str] = (), hint: str = "", summary: str = "") -> XenError:
    return XenError(
        _headline(call, arguments, exc.errno),
        summary or (os.strerror(exc.errno) if exc.errno else str(exc)),
        errno=exc.errno,
        call=call,
        arguments=arguments,
        causes=causes,
        hint=hint,
    )


def from_oserror(
    exc: OSError,
    call: str,
    arguments: Mapping[str, object] | None = None,
    *,
    path: str | None = None,
    root: str = "/",
) -> XenError:
    """Explain ``exc`` raised by ``call`` (``open``, ``mmap``, an ``IOCTL_*`` name, ``read``...).

    ``path`` names the device involved; ``root`` is for tests (fake sysfs).
    """
    args = dict(arguments or {})
    if path is not None:
        args.setdefault("path", path)
    err = exc.errno
    device = os.path.basename(path or str(args.get("path", "")))
    if call == "open":
        return _open_error(exc, str(args.get("path", path or "")), root)
    if err in (errno_mod.EACCES, errno_mod.EPERM):
        causes = [
            "this event-channel fd was restricted to one domain (IOCTL_EVTCHN_RESTRICT_DOMID) "
            "and the peer is another domain"
            if call.startswith("IOCTL_EVTCHN")
            else "the device refused the operation for this process",
            "an XSM/FLASK policy in Xen denies the operation",
        ]
        if os.geteuid() != 0:
            causes.insert(0, f"not running as root (euid {os.geteuid()})")
        return _generic(exc, call, args, causes, "run as root; check Xen's XSM policy",
                        "Permission denied.")
    if call == "IOCTL_GNTALLOC_ALLOC_GREF" and err == errno_mod.ENOSPC:
        limit = _host.module_param("xen_gntalloc", "limit", root)
        return _generic(
            exc, call, args,
            [
                "gntalloc's global grant limit is reached (module parameter 'limit', "
                f"currently {limit or 'unknown; default 1024'}): other processes hold grants",
                "the domain's grant table is full (max_grant_frames)",
            ],
            "free grants held by other processes, or raise the limit: "
            "echo N > /sys/module/xen_gntalloc/parameters/limit",
            "No space left to allocate more grants.",
        )
    if err == errno_mod.ENOTCONN and call.startswith("IOCTL_EVTCHN"):
        return _generic(
            exc, call, args,
            [
                f"port {args.get('port')} is not bound through this event-channel fd "
                "(ports belong to the fd that bound them)",
                "the port was already unbound",
            ],
            "bind the port first (bind_interdomain/bind_unbound) on the same EventChannel",
            "The port is not bound here.",
        )
    if err == errno_mod.ESRCH and call.startswith("IOCTL_EVTCHN"):
        return _generic(
            exc, call, args,
            [f"domain {args.get('remote_domid')} does not exist (destroyed, or a wrong id)"],
            "check the domid with 'xl list'",
            "No such domain.",
        )
    if err == errno_mod.EINVAL:
        return _einval(exc, call, args, device, root)
    if err == errno_mod.ENOSPC and call.startswith("IOCTL_EVTCHN"):
        return _generic(
            exc, call, args,
            ["the domain has no free event-channel ports (max_event_channels reached)"],
            "unbind unused ports, or raise max_event_channels in the domain config",
            "No free event-channel port.",
        )
    if err == errno_mod.ENOENT and call in ("IOCTL_GNTDEV_UNMAP_GRANT_REF",
                                             "IOCTL_GNTALLOC_DEALLOC_GREF"):
        return _generic(exc, call, args,
                        ["no mapping/allocation with that index and count on this fd"],
                        summary="Nothing to release at that index.")
    if err == errno_mod.ENOMEM:
        return _generic(exc, call, args,
                        ["the kernel ran out of memory or of address space for the mapping",
                         "too many pages requested at once"],
                        "map fewer pages", "Out of memory.")
    if err in (errno_mod.ENOTTY, errno_mod.ENOSYS):
        return _generic(exc, call, args,
                        [f"this kernel's {device or 'Xen'} driver does not implement {call}"],
                        "use a newer kernel", "The ioctl is not supported.")
    if err == errno_mod.EFBIG and call == "read":
        return _generic(exc, call, args,
                        ["the event ring overflowed: events were not read fast enough"],
                        "reset the channel (IOCTL_EVTCHN_RESET) and read events promptly",
                        "Event-channel ring overflow.")
    return _generic(exc, call, args)


def _einval(exc: OSError, call: str, args: dict[str, object], device: str,
            root: str) -> XenError:
    causes: list[str]
    hint = ""
    if call == "mmap" and device == "gntalloc":
        causes = ["the mapping was not MAP_SHARED", "no allocation at that offset"]
    elif call == "mmap":
        causes = ["a grant in the range failed to map (run GRANT_COPY to learn its status)",
                  "a writable mmap of a read-only map, or the range was already mmapped"]
    elif call == "IOCTL_GNTDEV_MAP_GRANT_REF":
        limit = _host.module_param("xen_gntdev", "limit", root)
        causes = [f"count is 0 or above gntdev's per-request limit ({limit or 'default 65536'})"]
    elif call in ("IOCTL_GNTDEV_SET_UNMAP_NOTIFY", "IOCTL_GNTALLOC_SET_UNMAP_NOTIFY"):
        causes = [
            f"event channel port {args.get('port')} is not bound in this kernel "
            "(bind it with an EventChannel first)",
            "CLEAR_BYTE on a read-only mapping",
            "the offset is outside the mapped range",
        ]
    elif call == "IOCTL_GNTDEV_GRANT_COPY":
        causes = ["a segment copies local to local (neither side is a grant)",
                  "a foreign offset + length exceeds the 4096-byte page"]
    elif call == "IOCTL_EVTCHN_BIND_INTERDOMAIN":
        causes = [
            f"remote port {args.get('remote_port')} of domain {args.get('remote_domid')} is "
            "not an unbound port offered to this domain (wrong port, already bound, or "
            "offered to another domid)",
            "the remote port number is out of range",
        ]
        hint = ("have the peer allocate an unbound port for this domain's id and publish it; "
                "check with 'lsevtchn DOMID'")
    elif call == "IOCTL_EVTCHN_UNBIND":
        causes = ["the port number is beyond this domain's event channels"]
    elif call == "IOCTL_EVTCHN_BIND_VIRQ":
        causes = ["the VIRQ number is invalid or already bound in this domain",
                  "a per-vCPU VIRQ cannot be bound through the evtchn device"]
    elif call == "IOCTL_EVTCHN_RESTRICT_DOMID":
        causes = ["domid 0 and reserved domids (>= 0x7FF0) cannot be a restriction target"]
    else:
        causes = ["an argument is invalid for this call"]
    return _generic(exc, call, args, causes, hint, "Invalid argument.")


def map_failed_error(
    exc: OSError,
    domid: int,
    grefs: Iterable[int],
    *,
    writable: bool,
    failing_gref: int | None,
    status: int | None,
) -> XenError:
    """The error for a gntdev map whose ``mmap`` failed, explained by a GRANT_COPY status.

    ``status`` is what a one-byte GRANT_COPY of ``(domid, failing_gref)`` returned
    (None when the probe could not run).  A probe that says ``okay`` for every
    gref while the map failed points at write access (a read-only grant mapped
    writable), which GRANT_COPY cannot see because it only reads.
    """
    refs = list(grefs)
    args: dict[str, object] = {"domid": domid, "grefs": refs, "writable": writable}
    if domid >= DOMID_FIRST_RESERVED:
        # Seen on Xen 4.17: GRANT_COPY resolves DOMID_SELF (copy status 0 for an own
        # grant) but map_grant_ref looks the domain up by id and answers bad_domain.
        name = "DOMID_SELF" if domid == DOMID_SELF else f"reserved domid {domid:#x}"
        summary = (f"Domain {domid} is {name}, which the grant map hypercall does not accept "
                   "(Xen's map_grant_ref answers -2 bad domain for it)"
                   + ("" if status is None else
                      f"; a GRANT_COPY of the same grant says: {gntstatus.describe(status)}")
                   + ".")
        causes = [f"domid {domid} is {name}: grants must be mapped by the granter's real "
                  "domain id (0 for dom0)"]
        hint = "use the granting domain's real id (see 'grantscope doctor' for your own)"
    elif status is not None and status != 0 and failing_gref is not None:
        summary = (
            f"Mapping domain {domid}'s grant {failing_gref} failed. A GRANT_COPY of the same "
            f"grant says: {gntstatus.describe(status)}."
        )
        causes = list(gntstatus.causes(status))
        hint = "check the grant on the granting side (who it was granted to, and when it ended)"
    elif status == 0:
        summary = (
            f"The map of domain {domid}'s grants failed, yet a GRANT_COPY of each grant "
            "succeeded (status 0 okay): the grants exist and are readable by this domain."
        )
        # GRANT_COPY uses no maptrack entry, so a full maptrack passes the probe; Linux's
        # gntdev turns the map's GNTST_no_space into EINVAL (seen in the lab: a PV guest
        # with max_maptrack_frames=2 mapping 400 pages).
        maptrack = (
            f"this domain's maptrack table is full: Xen answers the map with -13 no_space "
            f"and gntdev reports EINVAL. It caps how many foreign grants this domain can have "
            f"mapped at once (max_maptrack_frames); in a PV domain each mapped page takes two "
            f"entries, so these {len(refs)} page(s) need {2 * len(refs)}"
        )
        causes = [
            *(["the grant is read-only and was mapped writable (map it with --ro)"]
              if writable else []),
            maptrack,
            "the mapping itself failed (address space, or a grant ended meanwhile)",
        ]
        hint = ("map read-only, or have the granter grant write access; if the maptrack is "
                "full, unmap what is no longer used or raise max_maptrack_frames (dom0's "
                "'grantscope report' names a full maptrack)"
                if writable else
                "unmap what is no longer used, map fewer pages at once, or raise "
                "max_maptrack_frames in this domain's xl.cfg (dom0's 'grantscope report' "
                "names a full maptrack)")
    else:
        summary = (f"The map of domain {domid}'s grants failed at mmap and the GRANT_COPY "
                   "diagnosis could not run.")
        causes = list(gntstatus.causes(-1))
        hint = "check the grant on the granting side"
    return XenError(
        _headline("mmap", {"domid": domid, "grefs": refs}, exc.errno),
        summary,
        errno=exc.errno,
        call="mmap",
        arguments=args,
        causes=causes,
        hint=hint,
        gnttab_status=status,
    )
