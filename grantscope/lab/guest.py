"""Drive grantscope inside a lab guest: dom0's side of the guest agent (grantscope.lab.agent).

A :class:`PyGuest` is a :class:`~grantscope.lab.domu.DomU` booted from the Python guest image
(grantscope.lab.pyguest) instead of the C peer's.  Its agent runs whatever dom0 asks, most
often grantscope's own CLI, and hands back exit status, stdout and stderr::

    with PyGuest("pvh") as guest:
        guest.wait_ready()
        doctor = guest.run(["grantscope", "doctor", "--json"])
        offer = guest.submit(["grantscope", "probe", "offer-page", ...])   # keeps running
        ...                                                                  # dom0 maps it
        print(guest.result(offer).stdout)

Only inside the lab's dom0 (``grantscope lab run``), which says where the image is.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from grantscope.lab import guest_death
from grantscope.lab.agent import BASE
from grantscope.lab.domu import AGENT, DomU, agent_image
from grantscope.lab.errors import LabError
from grantscope.xen.xenstore import XenStore

# Domain ids of the guests boot_guest started in this process: dom0's ports to them belong to
# xenstored and xenconsoled, which the real-Xen tier's leak check must not blame on a test.
BOOTED: set[int] = set()
# Python, textual and the unpacked image need room: the 74 MB archive and its files coexist
# while the kernel unpacks it.
GUEST_MEMORY_MB = 512
# A request is one XenStore write from dom0 (JSON of argv and timeout, plus the node's path):
# at most 4096 bytes in one message (grantscope.xen.xs_wire.PAYLOAD_MAX).  A file travels in
# pieces of this many bytes, base64 in the argv (4/3 as long, no escapes, NUL bytes allowed).
FILE_PIECE_BYTES = 2048
# Writes one piece: python3 -c WRITE_PIECE PATH MODE BASE64 (MODE "wb" first, then "ab").
WRITE_PIECE = ("import base64, os, sys; path, mode, data = sys.argv[1:]; "
               "os.makedirs(os.path.dirname(path) or '.', exist_ok=True); "
               "open(path, mode).write(base64.b64decode(data))")


@dataclass(frozen=True)
class GuestResult:
    """What one command printed in the guest and how it ended."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    seconds: float         # as the guest measured it, process start to exit

    def json(self) -> dict[str, object]:
        """stdout parsed as one JSON document (LabError naming the command if it is not)."""
        try:
            doc = json.loads(self.stdout)
        except ValueError as err:
            raise LabError(f"guest command {' '.join(self.argv)} did not print JSON",
                           f"exit {self.rc}; stdout:\n{self.stdout[-2000:]}\n"
                           f"stderr:\n{self.stderr[-2000:]}") from err
        if not isinstance(doc, dict):
            raise LabError(f"guest command {' '.join(self.argv)} printed JSON that is not "
                           "an object", self.stdout[-2000:])
        return doc


class PyGuest(DomU):
    """A guest of type ``kind`` (pv, pvh, hvm) running grantscope's agent."""

    def __init__(self, kind: str = "pv", *, name: str | None = None,
                 memory_mb: int = GUEST_MEMORY_MB, create_timeout: float = 600.0,
                 xl_options: Mapping[str, str] | None = None) -> None:
        super().__init__(AGENT, kind=kind, name=name or f"gs-py{kind}-{os.getpid()}",
                         memory_mb=memory_mb, create_timeout=create_timeout,
                         ramdisk=agent_image(), xl_options=xl_options)
        self._next = 0
        self._xs: XenStore | None = None
        self.ready_seconds: float | None = None
        # Guests of this type that died while booting before this one answered (boot_guest).
        self.boot_deaths: tuple[str, ...] = ()

    def _store(self) -> XenStore:
        if self._xs is None:
            self._xs = XenStore.open(timeout=30.0)
        return self._xs

    def destroy(self) -> None:
        """Destroy the guest and close dom0's XenStore connection."""
        try:
            super().destroy()
        finally:
            if self._xs is not None:
                self._xs.close()
                self._xs = None

    def agent_path(self, rel: str) -> str:
        """The absolute path of ``data/agent/<rel>`` in the guest's home."""
        return f"{self.home}/{BASE}/{rel}"

    def wait_ready(self, timeout: float = 600.0) -> str:
        """Wait for the agent; return the guest type it read from /sys/hypervisor."""
        started = time.monotonic()
        self.wait_key(f"{BASE}/ready", timeout=timeout)
        self.ready_seconds = (self.create_seconds or 0.0) + time.monotonic() - started
        return self.read_key(f"{BASE}/type") or ""

    def submit(self, argv: Sequence[str], *, timeout: float = 300.0) -> int:
        """Hand ``argv`` to the agent (it starts at once); return the request's number."""
        number = self._next
        self._next += 1
        request = json.dumps({"argv": list(argv), "timeout": timeout}).encode()
        self._store().write(self.agent_path(f"cmd/{number}"), request)
        return number

    def signal(self, number: int, signum: int = signal.SIGTERM) -> None:
        """Ask the agent to send ``signum`` to request ``number``'s process."""
        self._store().write(self.agent_path(f"signal/{number}"), str(int(signum)).encode())

    def _read_stream(self, number: int, stream: str, count: int) -> str:
        xs = self._store()
        data = b"".join(xs.read(self.agent_path(f"res/{number}/{stream}/{i}"))
                        for i in range(count))
        return data.decode(errors="replace")

    def result(self, number: int, *, timeout: float = 400.0) -> GuestResult:
        """Wait for request ``number`` to finish; LabError with the console if it never does."""
        xs = self._store()
        request = json.loads(xs.read(self.agent_path(f"cmd/{number}")))
        deadline = time.monotonic() + timeout
        while (raw := xs.read_or_none(self.agent_path(f"res/{number}/rc"))) is None:
            if time.monotonic() > deadline:
                raise LabError(f"guest {self.name}: {' '.join(request['argv'])} did not finish "
                               f"within {timeout:.0f}s", f"Its console:\n{self.console_tail()}")
            if not self.alive():
                raise LabError(f"guest {self.name} died while running "
                               f"{' '.join(request['argv'])}",
                               f"Its console:\n{self.console_tail()}")
            time.sleep(0.2)
        summary = json.loads(raw)
        if "agent_error" in summary:
            raise LabError(f"guest {self.name}: {summary['agent_error']}",
                           f"Its console:\n{self.console_tail()}")
        return GuestResult(tuple(request["argv"]), int(summary["rc"]),
                           self._read_stream(number, "out", int(summary["out"])),
                           self._read_stream(number, "err", int(summary["err"])),
                           float(summary["seconds"]))

    def wait_line(self, number: int, text: str, *, timeout: float = 300.0) -> str:
        """Wait until request ``number``, still running, prints a line containing ``text``;
        return that line.  LabError (with the console) if it ends or the time runs out first.

        Only the latest line is visible, so ``text`` must be on a line the command stays on
        (e.g. the last thing it prints before it waits).
        """
        deadline = time.monotonic() + timeout
        xs = self._store()
        while True:
            line = (xs.read_or_none(self.agent_path(f"res/{number}/line")) or b"").decode(
                errors="replace")
            if text in line:
                return line
            ended = xs.read_or_none(self.agent_path(f"res/{number}/rc")) is not None
            if ended:
                done = self.result(number)
                raise LabError(f"guest {self.name}: request {number} ended (exit {done.rc}) "
                               f"without printing {text!r}",
                               f"stdout:\n{done.stdout[-1500:]}\nstderr:\n{done.stderr[-2500:]}")
            if time.monotonic() > deadline or not self.alive():
                why = "timed out" if self.alive() else "the guest died"
                raise LabError(f"guest {self.name}: request {number} never printed {text!r} "
                               f"({why}; last line {line!r})",
                               f"Its console:\n{self.console_tail()}")
            time.sleep(0.2)

    def run(self, argv: Sequence[str], *, timeout: float = 300.0) -> GuestResult:
        """Run ``argv`` in the guest and wait for it."""
        return self.result(self.submit(argv, timeout=timeout), timeout=timeout + 60.0)

    def put_file(self, path: str, data: bytes | str, *, timeout: float = 300.0) -> None:
        """Write ``data`` to ``path`` in the guest (a script too long for one request's argv:
        a request is one XenStore message); LabError if a piece could not be written."""
        for argv in put_file_requests(path, data):
            done = self.run(argv, timeout=timeout)
            if done.rc != 0:
                raise LabError(f"guest {self.name}: writing {path} failed (exit {done.rc})",
                               done.stderr[-2000:])


def put_file_requests(path: str, data: bytes | str) -> list[list[str]]:
    """The guest commands that write ``data`` (text as UTF-8) to ``path``, one piece each
    (at least one: an empty file is written too)."""
    raw = data.encode() if isinstance(data, str) else data
    pieces = [raw[i:i + FILE_PIECE_BYTES] for i in range(0, len(raw), FILE_PIECE_BYTES)]
    return [["python3", "-c", WRITE_PIECE, path, "wb" if i == 0 else "ab",
             base64.b64encode(piece).decode()] for i, piece in enumerate(pieces or [b""])]

def boot_guest(kind: str, *, timeout: float = 1200.0,
               xl_options: Mapping[str, str] | None = None) -> PyGuest:
    """A started guest whose agent answered; a PVH/HVM guest whose death while booting Xen
    logged is booted again, up to ``guest_death.BOOT_RETRIES`` times (grantscope.lab.guest_death).

    Each such death is said on stderr and listed in the returned guest's ``boot_deaths`` (the
    tests record them in the JUnit report).  A guest that is alive but silent, or that died
    without Xen logging why, is an error at once.
    """
    deaths: list[str] = []
    while True:
        guest = PyGuest(kind, xl_options=xl_options).start()
        if guest.domid is not None:
            BOOTED.add(guest.domid)
        try:
            guest.wait_ready(timeout=timeout)
        except LabError as err:
            dead = not guest.alive()
            death = guest_death.logged_death(guest.domid) if dead else None
            guest.destroy()
            if not dead:
                raise
            decision = guest_death.may_retry(kind, booting=True, retries=len(deaths),
                                             death=death)
            if not decision.retry:
                raise LabError(f"{err.message} ({decision.why})", err.explanation) from err
            deaths.append(f"d{guest.domid} {decision.why}")
            sys.stderr.write(f"lab: the {kind} guest d{guest.domid} {decision.why}; "
                             "booting another\n")
            continue
        guest.boot_deaths = tuple(deaths)
        return guest


@contextmanager
def guest_session(kind: str, *,
                  xl_options: Mapping[str, str] | None = None) -> Iterator[PyGuest]:
    """:func:`boot_guest`; at the end the guest is destroyed and dom0 is waited for until it
    holds none of the guest's ports (LabError names any it keeps: a leak)."""
    from grantscope.lab.leaks import wait_ports_released

    booted = boot_guest(kind, xl_options=xl_options)
    try:
        yield booted
    finally:
        booted.destroy()
        if booted.domid is not None:
            wait_ports_released(booted.domid)
