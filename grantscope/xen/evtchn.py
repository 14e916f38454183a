"""Event channels through /dev/xen/evtchn.

One :class:`EventChannel` is one fd that can hold several ports.  A port that
fires is masked by the kernel until its number is written back to the device;
:meth:`EventChannel.wait` and :meth:`EventChannel.drain` do that before returning.

The hot path (notify, wait) uses preallocated request bytes and a non-blocking fd; where
the install compiled ``grantscope.xen._evtloop``, wait's poll, read and unmask write are one
call into C (``gs_wait_once``), else three from Python (the same syscalls).  The round trip
is dominated by the kernel and Xen, and every avoided interpreter step keeps it close to C.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import time

from grantscope.closing import Closing
from grantscope.xen import abi, evtloop
from grantscope.xen import readonly as _readonly
from grantscope.xen._fd import check_domid, check_u32, open_device
from grantscope.xen.compiled import fast_path
from grantscope.xen.errors import from_oserror

EVTCHN_PATH = "/dev/xen/evtchn"
# How long bind_interdomain waits for the event Xen marks pending on the new port.
BIND_SETTLE_S = 0.25
_READ_MAX = 4096  # the driver returns at most a page of u32 ports per read
_PORTS_MAX = _READ_MAX // 4
_FOREVER = float("inf")  # wait(None) in the compiled helper: no limit
_U32 = struct.Struct("=I")  # read(2) returns the pending ports as u32s
_BIND_UNBOUND = abi.packed("struct ioctl_evtchn_bind_unbound_port")
_BIND_INTERDOMAIN = abi.packed("struct ioctl_evtchn_bind_interdomain")
_BIND_VIRQ = abi.packed("struct ioctl_evtchn_bind_virq")
_UNBIND = abi.packed("struct ioctl_evtchn_unbind")
_NOTIFY = abi.packed("struct ioctl_evtchn_notify")
_RESTRICT = abi.packed("struct ioctl_evtchn_restrict_domid")
_POLLIN = select.POLLIN


class EventChannel(Closing):
    """An open /dev/xen/evtchn fd and the ports bound through it.

    A context manager; :meth:`close` unbinds every port (idempotent).  ``fileno()``
    is pollable: readable when a port fired.
    """

    def __init__(self, *, path: str = EVTCHN_PATH) -> None:
        self.path = path
        self._fd = open_device(path, nonblock=True)
        self._poll = select.poll()
        self._poll.register(self._fd, _POLLIN)
        self._ports: set[int] = set()
        self._port_bytes: dict[int, bytes] = {}  # preallocated ioctl argument per port
        self._pending: list[int] = []  # fired and unmasked, not yet reported
        # wait()'s fast path in C when the compiled helper is built (one call for poll,
        # read and write back); None: the same three syscalls from Python.
        c_wait = fast_path("gs_wait_once")
        self._c_wait = None if c_wait is None else c_wait[1]
        if c_wait is not None:
            self._c_fired = c_wait[0].new("unsigned int[]", _PORTS_MAX)
            self._c_err = c_wait[0].new("int *")

    # -- state -----------------------------------------------------------------
    def fileno(self) -> int:
        """The device fd (raises ValueError once closed)."""
        if self._fd < 0:
            raise ValueError("event channel is closed")
        return self._fd

    @property
    def ports(self) -> frozenset[int]:
        """The local ports bound through this fd."""
        return frozenset(self._ports)

    @property
    def has_pending(self) -> bool:
        """True when ports fired that :meth:`wait` has not reported yet."""
        return bool(self._pending)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._fd < 0

    # -- binding ---------------------------------------------------------------
    def _bind(self, call: str, request: int, arg: bytes, args: dict[str, object]) -> int:
        _readonly.refuse_if_readonly(f"binding an event channel ({call})")
        buf = bytearray(arg)  # mutable: fcntl.ioctl then returns the ioctl's value (the port)
        try:
            port = fcntl.ioctl(self.fileno(), request, buf, True)
        except OSError as exc:
            raise from_oserror(exc, call, args, path=self.path) from None
        self._ports.add(port)
        self._port_bytes[port] = _NOTIFY.pack(port)
        return int(port)

    def bind_unbound(self, remote_domid: int) -> int:
        """Allocate a new port that ``remote_domid`` may bind to; the local port."""
        check_domid(remote_domid)
        return self._bind("IOCTL_EVTCHN_BIND_UNBOUND_PORT", abi.IOCTL_EVTCHN_BIND_UNBOUND_PORT,
                          _BIND_UNBOUND.pack(remote_domid), {"remote_domid": remote_domid})

    def bind_interdomain(self, remote_domid: int, remote_port: int) -> int:
        """Connect to ``remote_domid``'s unbound port ``remote_port``; the local port.

        Xen marks the binder's new port pending on every interdomain bind; that
        event is consumed here so a later :meth:`wait` only reports real notifications.
        """
        check_domid(remote_domid)
        check_u32(remote_port, "remote_port")
        port = self._bind("IOCTL_EVTCHN_BIND_INTERDOMAIN", abi.IOCTL_EVTCHN_BIND_INTERDOMAIN,
                          _BIND_INTERDOMAIN.pack(remote_domid, remote_port),
                          {"remote_domid": remote_domid, "remote_port": remote_port})
        self._settle(port)
        return port

    def _settle(self, port: int) -> None:
        """Consume the spurious bind event of ``port``; keep any other port that fired."""
        deadline = time.monotonic() + BIND_SETTLE_S
        while True:
            fired = self._read_available()
            if port in fired:
                fired.remove(port)
                self._pending.extend(p for p in fired if p not in self._pending)
                return
            self._pending.extend(p for p in fired if p not in self._pending)
            left = deadline - time.monotonic()
            if left <= 0 or not self._poll.poll(max(1, int(left * 1000))):
                return

    def bind_virq(self, virq: int) -> int:
        """Bind virtual IRQ ``virq`` (e.g. VIRQ_DOM_EXC=3 in dom0); the local port."""
        check_u32(virq, "virq")
        return self._bind("IOCTL_EVTCHN_BIND_VIRQ", abi.IOCTL_EVTCHN_BIND_VIRQ,
                          _BIND_VIRQ.pack(virq), {"virq": virq})

    def unbind(self, port: int) -> None:
        """Unbind ``port`` (ENOTCONN, explained, if it is not bound through this fd)."""
        check_u32(port, "port")
        try:
            fcntl.ioctl(self.fileno(), abi.IOCTL_EVTCHN_UNBIND, _UNBIND.pack(port))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_EVTCHN_UNBIND", {"port": port},
                               path=self.path) from None
        self._forget(port)

    def _forget(self, port: int) -> None:
        self._ports.discard(port)
        self._port_bytes.pop(port, None)
        if port in self._pending:
            self._pending.remove(port)

    def reset(self) -> None:
        """IOCTL_EVTCHN_RESET: clear the event ring and an overflow condition."""
        try:
            fcntl.ioctl(self.fileno(), abi.IOCTL_EVTCHN_RESET, 0)
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_EVTCHN_RESET", {}, path=self.path) from None
        self._pending.clear()

    def restrict_domid(self, domid: int) -> None:
        """Restrict this fd to binding ports of ``domid`` only (irreversible)."""
        check_domid(domid)
        try:
            fcntl.ioctl(self.fileno(), abi.IOCTL_EVTCHN_RESTRICT_DOMID,
                        _RESTRICT.pack(domid))
        except OSError as exc:
            raise from_oserror(exc, "IOCTL_EVTCHN_RESTRICT_DOMID", {"domid": domid},
                               path=self.path) from None

    # -- events ----------------------------------------------------------------
    def notify(self, port: int) -> None:
        """Send an event on ``port`` (ENOTCONN, explained, if not bound through this fd)."""
        if _readonly._depth:  # the hot path: one attribute read when not read-only
            _readonly.refuse_if_readonly(f"notifying event channel port {port}")
        arg = self._port_bytes.get(port)
        if arg is None:
            arg = _NOTIFY.pack(check_u32(port, "port"))
        try:
            fcntl.ioctl(self._fd, abi.IOCTL_EVTCHN_NOTIFY, arg)
        except OSError as exc:
            if self._fd < 0:
                raise ValueError("event channel is closed") from None
            raise from_oserror(exc, "IOCTL_EVTCHN_NOTIFY", {"port": port},
                               path=self.path) from None

    def _read_available(self) -> list[int]:
        """Read and unmask whatever fired (non-blocking); [] when nothing."""
        try:
            data = os.read(self._fd, _READ_MAX)
        except BlockingIOError:
            return []
        except OSError as exc:
            if self._fd < 0:
                raise ValueError("event channel is closed") from None
            raise from_oserror(exc, "read", {"fd": self._fd}, path=self.path) from None
        if not data:
            return []
        try:
            os.write(self._fd, data)  # unmask every port we just consumed
        except OSError as exc:
            raise from_oserror(exc, "write", {"fd": self._fd}, path=self.path) from None
        if len(data) == 4:
            return [_U32.unpack(data)[0]]
        return list(struct.unpack(f"={len(data) // 4}I", data))

    def wait(self, timeout: float | None) -> list[int]:
        """Block up to ``timeout`` seconds (None: forever) for ports to fire.

        Returns the ports that fired, already unmasked; [] on timeout.
        """
        if self._pending:
            out, self._pending = self._pending, []
            return out
        c_wait = self._c_wait
        if c_wait is not None:
            got = c_wait(self._fd, _FOREVER if timeout is None else timeout, self._c_fired,
                         _PORTS_MAX, self._c_err)
            if got > 0:
                fired = self._c_fired
                return [fired[0]] if got == 1 else [fired[i] for i in range(got)]
            if got == 0:
                return []
            if got == -4:
                raise ValueError("event channel is closed")
            if got == -2:
                raise evtloop.syscall_error(self._c_err[0], self._fd, self.path)
            # -1 (a signal: handled on return) or -3 (woke with nothing): the slow path
            return self._wait_slow(timeout)
        fd = self._fd
        if fd < 0:
            raise ValueError("event channel is closed")
        # Fast path: poll, read, write back, no clock reads (in a PV guest a clock read
        # can be a real syscall).  After a wake-up with nothing to read (rare) the wait
        # goes on with the clock, for up to ``timeout`` more.
        ms = -1 if timeout is None else (0 if timeout <= 0 else int(timeout * 1000 + 0.999))
        if self._poll.poll(ms):
            try:
                data = os.read(fd, _READ_MAX)
            except BlockingIOError:
                data = b""
            except OSError as exc:
                raise from_oserror(exc, "read", {"fd": fd}, path=self.path) from None
            if data:
                try:
                    os.write(fd, data)  # unmask what we consumed
                except OSError as exc:
                    raise from_oserror(exc, "write", {"fd": fd}, path=self.path) from None
                if len(data) == 4:
                    return [_U32.unpack(data)[0]]
                return list(struct.unpack(f"={len(data) // 4}I", data))
        elif timeout is not None:
            return []
        return self._wait_slow(timeout)

    def _wait_slow(self, timeout: float | None) -> list[int]:
        """The rest of a wait after a spurious wake-up (or a blocking wait)."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        poll = self._poll.poll
        while True:
            if deadline is None:
                ms = -1
            else:
                left = deadline - time.monotonic()
                ms = 0 if left <= 0 else max(1, int(left * 1000 + 0.999))
            if poll(ms):
                fired = self._read_available()
                if fired:
                    return fired
            elif deadline is not None:
                return []
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def drain(self) -> list[int]:
        """Consume (and unmask) whatever is pending, without blocking."""
        if self._fd < 0:
            raise ValueError("event channel is closed")
        out, self._pending = self._pending, []
        while True:
            fired = self._read_available()
            if not fired:
                return out
            out.extend(p for p in fired if p not in out)

    # -- lifetime --------------------------------------------------------------
    def close(self) -> None:
        """Unbind every port and close the fd (idempotent)."""
        if self._fd < 0:
            return
        try:
            for port in sorted(self._ports):
                # Closing the fd unbinds whatever is left, so a failure here loses nothing.
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self._fd, abi.IOCTL_EVTCHN_UNBIND, _UNBIND.pack(port))
        finally:
            self._ports.clear()
            self._port_bytes.clear()
            self._pending.clear()
            with contextlib.suppress(KeyError, ValueError):
                self._poll.unregister(self._fd)
            fd, self._fd = self._fd, -1
            os.close(fd)


    def __repr__(self) -> str:
        state = "closed" if self.closed else f"ports={sorted(self._ports)}"
        return f"<EventChannel {state}>"
