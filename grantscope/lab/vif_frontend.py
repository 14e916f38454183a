"""A network frontend in user space: the guest half of a lab vif, driven by a test.

The lab's guests load no netfront, so a vif that ``xl`` gave a guest (``vif = [...]`` in its
config; dom0's netback is the kernel backend) waits in Initialising until something in the guest
connects it.  This module does what netfront does, with grantscope's own devices, and no
more: it grants two zeroed ring pages (tx, rx) to the backend, allocates an unbound event
channel for it, publishes ``tx-ring-ref``, ``rx-ring-ref``, ``event-channel`` and
``request-rx-copy`` in the frontend directory, and switches to Connected.  netback then maps
the rings and binds the port, exactly as for a real guest.

It never queues a request, so every notification it sends is one netback finds no work for:
the kernel counts it in the backend device's ``spurious_events`` and, past its threshold,
delays the EOI (``jiffies_eoi_delayed``).  That is a rogue frontend, the case ``report``'s
``evtchn-spurious`` finding names; the real-Xen tests use it to prove that finding::

    python3 -m grantscope.lab.vif_frontend --notify-seconds 10     # inside the guest

It prints one JSON line when connected (``{"state": "connected", "port", "tx_ref",
"rx_ref", ...}``), one per second of notifying, and one when it has closed the device again.
SIGTERM ends the notifying early; the device is closed in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import struct
import sys
import time
from collections.abc import Callable
from types import FrameType

from grantscope.errors import GrantscopeError
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.xenstore import XenStore

# XenbusState values (xen/include/public/io/xenbus.h).
INITIALISING, INIT_WAIT, INITIALISED, CONNECTED, CLOSING, CLOSED = 1, 2, 3, 4, 5, 6
# A fresh shared ring's header: req_prod, req_event, rsp_prod, rsp_event (SHARED_RING_INIT).
_RING_HEADER = struct.pack("<4I", 0, 1, 0, 1)
PAGE = 4096


class FrontendError(Exception):
    """The vif could not be connected or closed; the message says which step."""


def _say(doc: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def _wait_state(xs: XenStore, path: str, wanted: set[int], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        raw = xs.read_or_none(path)
        state = int(raw) if raw and raw.strip().isdigit() else 0
        if state in wanted:
            return state
        if time.monotonic() > deadline:
            raise FrontendError(f"{path} is {state}, waited {timeout:.0f}s for one of "
                                f"{sorted(wanted)}")
        time.sleep(0.1)


class VifFrontend:
    """One connected vif: its ring grants, its port, and the XenStore directories of both ends.

    Use :meth:`connect` to create one; :meth:`close` (idempotent) switches to Closed, waits
    for the backend to let go, and frees the port and pages.
    """

    def __init__(self, xs: XenStore, front: str, backend: str, backend_id: int,
                 offer: GrantOffer, channel: EventChannel, port: int) -> None:
        self.xs = xs
        self.front = front
        self.backend = backend
        self.backend_id = backend_id
        self.offer = offer
        self.channel = channel
        self.port = port
        self.sent = 0
        self._closed = False

    @classmethod
    def connect(cls, xs: XenStore, handle: int = 0, timeout: float = 60.0) -> VifFrontend:
        """Connect vif ``handle`` of this guest to its backend."""
        home = f"/local/domain/{int(xs.read('domid'))}"
        front = f"{home}/device/vif/{handle}"
        if not xs.exists(front):
            raise FrontendError(f"{front} does not exist: this guest has no vif {handle} "
                                "(give it one with vif = [...] in its xl config)")
        backend = xs.read(f"{front}/backend").decode()
        backend_id = int(xs.read(f"{front}/backend-id"))
        # After an earlier close the backend sits in Closed; like netfront on a reconnect,
        # say Initialising, and netback goes back to InitWait.
        xs.write(f"{front}/state", str(INITIALISING).encode())
        _wait_state(xs, f"{backend}/state", {INIT_WAIT}, timeout)
        offer = GrantOffer(backend_id, pages=2, writable=True)
        channel = EventChannel()
        try:
            for ring in (0, 1):
                offer.write(ring * PAGE, _RING_HEADER)
            port = channel.bind_unbound(backend_id)
            tx_ref, rx_ref = offer.grefs
            for key, value in (("tx-ring-ref", tx_ref), ("rx-ring-ref", rx_ref),
                               ("event-channel", port), ("request-rx-copy", 1)):
                xs.write(f"{front}/{key}", str(value).encode())
            xs.write(f"{front}/state", str(CONNECTED).encode())
            vif = cls(xs, front, backend, backend_id, offer, channel, port)
        except BaseException:
            channel.close()
            offer.close()
            raise
        try:
            _wait_state(xs, f"{backend}/state", {CONNECTED}, timeout)
        except BaseException:
            # The backend's failure is the news; a close it does not answer either is not.
            with contextlib.suppress(FrontendError):
                vif.close(timeout)
            raise
        return vif

    def storm(self, seconds: float, report: Callable[[int, float], None]) -> None:
        """Notify the backend as fast as possible for ``seconds`` (``sent`` counts them).

        ``report(sent, elapsed)`` is called about once a second.  Events the backend sends
        back are drained so they never pile up.
        """
        started = time.monotonic()
        next_report = started + 1.0
        while (now := time.monotonic()) - started < seconds:
            for _ in range(100):
                self.channel.notify(self.port)
            self.sent += 100
            if now >= next_report:
                self.channel.drain()
                report(self.sent, now - started)
                next_report = now + 1.0

    def close(self, timeout: float = 60.0) -> None:
        """Closing, then Closed once the backend has disconnected; then free port and pages."""
        if self._closed:
            return
        self._closed = True
        try:
            self.xs.write(f"{self.front}/state", str(CLOSING).encode())
            _wait_state(self.xs, f"{self.backend}/state", {CLOSING, CLOSED}, timeout)
            self.xs.write(f"{self.front}/state", str(CLOSED).encode())
        finally:
            # netback has unmapped the rings once it reached Closing; if it never did, the
            # kernel still ends the grants when the backend unmaps (gntalloc cannot force it).
            self.channel.close()
            self.offer.close()


class _Stop:
    """SIGTERM's handler: ends the storm (or the hold) but never interrupts a close."""

    def __init__(self) -> None:
        self.requested = False
        self.armed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt


class _Flag:
    """A signal handler that only records that the signal came."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.raised = True


def main(argv: list[str] | None = None) -> int:
    """``python3 -m grantscope.lab.vif_frontend [--handle N] [--quiet-until-usr1 S]
    [--notify-seconds S]``."""
    parser = argparse.ArgumentParser(prog="python3 -m grantscope.lab.vif_frontend",
                                     description="Connect this guest's vif from user space "
                                     "and notify its backend with no work queued.")
    parser.add_argument("--handle", type=int, default=0)
    parser.add_argument("--notify-seconds", type=float, default=0.0)
    parser.add_argument("--hold-seconds", type=float, default=0.0,
                        help="stay connected this long after notifying (before closing)")
    parser.add_argument("--quiet-until-usr1", type=float, default=0.0, metavar="SECONDS",
                        help="once connected, stay quiet (no notification) until SIGUSR1 or "
                        "this many seconds, then notify: a test's baseline of a quiet device")
    args = parser.parse_args(argv)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    go = _Flag()
    signal.signal(signal.SIGUSR1, go)
    try:
        with XenStore.open(timeout=30.0) as xs:
            vif = VifFrontend.connect(xs, args.handle)
            try:
                _say({"state": "connected", "front": vif.front, "backend": vif.backend,
                      "backend_id": vif.backend_id, "port": vif.port,
                      "tx_ref": vif.offer.grefs[0], "rx_ref": vif.offer.grefs[1]})
                if args.quiet_until_usr1 > 0:
                    _say({"state": "quiet"})
                    deadline = time.monotonic() + args.quiet_until_usr1
                    while not (go.raised or stop.requested) and time.monotonic() < deadline:
                        time.sleep(0.05)
                stop.armed = not stop.requested
                try:
                    if stop.armed:
                        vif.storm(args.notify_seconds,
                                  lambda n, t: _say({"state": "notifying", "sent": n,
                                                     "seconds": round(t, 2)}))
                        time.sleep(args.hold_seconds)
                except KeyboardInterrupt:
                    pass
                finally:
                    stop.armed = False
            finally:
                vif.close()
            _say({"state": "closed", "sent": vif.sent, "stopped_early": stop.requested})
        return 0
    except (FrontendError, GrantscopeError, OSError) as err:  # XenError, XenStoreError too
        sys.stderr.write(f"vif_frontend: {err}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
