"""Read-only observers of the kernel's Xen state: /proc/interrupts, xenbus sysfs counters,
/sys/hypervisor, and the processes holding /dev/xen devices.

Holders are found by walking ``/proc/PID/fd`` (psutil's ``open_files`` lists regular files
only, not character devices like ``/dev/xen/gntdev``); psutil then describes each one
(:func:`describe_process`: name, command line, user, start time, CPU, memory).

Each reader takes its root path as an argument (tests point it at a fixture tree) and never
raises for a missing file: what is absent is reported as ``None`` or in an ``unavailable`` text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from grantscope.model.interrupts import (
    InterruptsParse,
    XenbusCounters,
    parse_interrupts,
    parse_xenbus_counters,
)
from grantscope.model.toolout import DeviceHolder, ProcessInfo

__all__ = [
    "XENBUS_DEVICE_DIRS",
    "DeviceHolder",
    "ProcessInfo",
    "describe_process",
    "read_hypervisor",
    "read_interrupts",
    "read_xenbus_counters",
    "xen_device_holders",
]

T = TypeVar("T")

#: Where Linux lists xenbus devices: backends (in a driver domain) and frontends.
XENBUS_DEVICE_DIRS: tuple[str, ...] = ("/sys/bus/xen-backend/devices", "/sys/bus/xen/devices")
_COUNTER_FILES = (
    "nodename",
    "xenbus/event_channels",
    "xenbus/events",
    "xenbus/spurious_events",
    "xenbus/jiffies_eoi_delayed",
    "xenbus/spurious_threshold",
)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def read_interrupts(path: str = "/proc/interrupts") -> InterruptsParse | str:
    """The Xen rows of ``/proc/interrupts``, or a sentence saying why they are unavailable."""
    text = _read_text(Path(path))
    if text is None:
        return f"{path} could not be read"
    return parse_interrupts(text)


def read_xenbus_counters(dirs: tuple[str, ...] = XENBUS_DEVICE_DIRS) -> tuple[XenbusCounters, ...]:
    """Counters of every xenbus device found under ``dirs`` (empty when there is none)."""
    out: list[XenbusCounters] = []
    for d in dirs:
        base = Path(d)
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for name in names:
            files: dict[str, str] = {}
            for rel in _COUNTER_FILES:
                text = _read_text(base / name / rel)
                if text is not None:
                    files[rel] = text
            out.append(parse_xenbus_counters(name, files))
    return tuple(out)


def read_hypervisor(root: str = "/sys/hypervisor") -> dict[str, str]:
    """Every readable file under ``/sys/hypervisor`` as ``{"version/major": "4", ...}``."""
    out: dict[str, str] = {}
    base = Path(root)
    if not base.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            p = Path(dirpath) / f
            text = _read_text(p)
            if text is not None:
                out[str(p.relative_to(base))] = text.strip()
    return dict(sorted(out.items()))


def xen_device_holders(
    devices: tuple[str, ...] = ("/dev/xen/gntdev", "/dev/xen/gntalloc", "/dev/xen/evtchn"),
    proc: str = "/proc",
) -> tuple[DeviceHolder, ...]:
    """Processes holding any of ``devices`` open, from /proc/PID/fd and /proc/PID/maps.

    Processes that vanish or cannot be inspected (another user's, without privilege) are
    skipped or show ``mapped_pages=None``.
    """
    out: list[DeviceHolder] = []
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        return ()
    wanted = set(devices)
    for pid in pids:
        base = Path(proc) / str(pid)
        counts: dict[str, int] = {}
        try:
            for fd in os.listdir(base / "fd"):
                try:
                    target = os.readlink(base / "fd" / fd)
                except OSError:
                    continue
                if target in wanted:
                    counts[target] = counts.get(target, 0) + 1
        except OSError:
            continue
        if not counts:
            continue
        comm = (_read_text(base / "comm") or "?").strip()
        maps = _read_text(base / "maps")
        for dev, n in sorted(counts.items()):
            pages: int | None = None
            if maps is not None:
                pages = 0
                for line in maps.splitlines():
                    parts = line.split()
                    if len(parts) >= 6 and parts[5] == dev:
                        lo, _, hi = parts[0].partition("-")
                        pages += (int(hi, 16) - int(lo, 16)) // 4096
            out.append(DeviceHolder(pid=pid, comm=comm, device=dev, fds=n, mapped_pages=pages))
    return tuple(out)


def describe_process(pid: int) -> ProcessInfo | None:
    """The process ``pid`` through psutil, or None when it has gone. What it would not show
    (another user's process, without privilege) is left None or empty."""
    import psutil

    def allowed(read: Callable[[], T]) -> T | None:
        try:
            return read()
        except psutil.AccessDenied:
            return None

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            name = allowed(proc.name) or "?"
            cmdline = allowed(proc.cmdline) or []
            user = allowed(proc.username)
            started = allowed(proc.create_time)
            cpu = allowed(proc.cpu_times)
            memory = allowed(proc.memory_info)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return ProcessInfo(
        pid=pid,
        name=name,
        cmdline=tuple(cmdline),
        user=user,
        started=started,
        cpu_s=None if cpu is None else float(cpu.user + cpu.system),
        rss=None if memory is None else int(memory.rss),
    )
