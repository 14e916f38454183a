"""The guest agent: runs commands that dom0 hands a Python guest through XenStore.

It is PID 1's only job in the lab's Python guest (init/pyguest-init), so the real-Xen tests in
dom0 can run grantscope *inside* a PV, PVH or HVM guest and read back what it printed.  The
channel is the guest's own XenStore home, reached through ``/dev/xen/xenbus`` with grantscope's
XenStore client (so the agent is also a standing proof that the client works from a domU)::

    data/agent/type          written at start: the guest type from /sys/hypervisor/guest_type
    data/agent/ready         written at start: "1"
    data/agent/cmd/N         dom0 writes a request: JSON {"argv": [...], "timeout": seconds}
    data/agent/res/N/out/K   the command's stdout, in chunks of CHUNK bytes
    data/agent/res/N/err/K   its stderr, likewise
    data/agent/res/N/line    while it runs: the last line it printed (at most CHUNK bytes)
    data/agent/res/N/rc      written last: JSON {"rc": int, "out": chunks, "err": chunks,
                             "seconds": float}; rc -9 after a timeout, 127 if argv[0] is missing
    data/agent/signal/N      dom0 writes a signal number: the agent sends it to request N's
                             process (how a test ends an offer that waits for its peer)

Requests run concurrently, each in its own thread, so dom0 can leave one running (an offer
holding a page) while it sends the next.  Nodes dom0 creates under the guest's home belong to
the guest (xenstored gives them the parent's owner), so the agent can read them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from grantscope.xen.xenstore import XenStore

# xenstored limits a domU's node to 2048 bytes (quota-maxsize), path and permissions included.
CHUNK = 1024
POLL_SECONDS = 0.2
DEFAULT_TIMEOUT = 300.0
BASE = "data/agent"


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    """``data`` cut into pieces of at most ``size`` bytes (none for empty data)."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def run_request(request: dict[str, object], started_cb: Callable[[subprocess.Popen[bytes]], None]
                = lambda proc: None,
                line_cb: Callable[[bytes], None] = lambda line: None,
                ) -> tuple[int, bytes, bytes, float]:
    """Run one request; return (exit status, stdout, stderr, seconds).

    ``started_cb`` receives the process once it runs (so it can be signalled); ``line_cb``
    receives each line of stdout as it is printed (so dom0 can wait for "connected").
    """
    argv = [str(a) for a in request.get("argv", [])]  # type: ignore[attr-defined]
    timeout = float(request.get("timeout", DEFAULT_TIMEOUT))  # type: ignore[arg-type]
    started = time.monotonic()
    if not argv:
        return 2, b"", b"agent: empty argv\n", 0.0
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        return 127, b"", f"agent: cannot run {argv[0]}: {exc}\n".encode(), 0.0
    started_cb(proc)
    out: list[bytes] = []
    err: list[bytes] = []
    stdout, stderr = proc.stdout, proc.stderr  # pipes: never None here
    assert stdout is not None and stderr is not None

    def pump_out() -> None:
        for line in stdout:
            out.append(line)
            line_cb(line)

    readers = [threading.Thread(target=pump_out, daemon=True),
               threading.Thread(target=lambda: err.append(stderr.read()), daemon=True)]
    for reader in readers:
        reader.start()
    killed = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        killed, rc = True, -9
    for reader in readers:
        reader.join()
    stdout.close()
    stderr.close()
    if killed:
        err.append(f"agent: killed after {timeout:g} s\n".encode())
    return rc, b"".join(out), b"".join(err), time.monotonic() - started


class Agent:
    """Polls ``data/agent/cmd/N`` in the guest's home and answers under ``data/agent/res/N``."""

    def __init__(self, xs: XenStore) -> None:
        self.xs = xs
        self.home = f"/local/domain/{int(xs.read('domid'))}"
        self.lock = threading.Lock()     # one XenStore request in flight per xenbus file
        self.running: dict[int, subprocess.Popen[bytes]] = {}

    def _path(self, rel: str) -> str:
        return f"{self.home}/{BASE}/{rel}"

    def write(self, rel: str, value: bytes) -> None:
        """Write one node of the agent's tree."""
        with self.lock:
            self.xs.write(self._path(rel), value)

    def read(self, rel: str) -> bytes | None:
        """Read one node of the agent's tree, or None if it is not there."""
        with self.lock:
            return self.xs.read_or_none(self._path(rel))

    def answer(self, number: int, raw: bytes) -> None:
        """Run request ``number`` and publish its result (or why it could not be published)."""
        try:
            self._answer(number, raw)
        except Exception as exc:  # dom0 must hear of any failure, not wait forever
            note = f"agent: could not publish the result: {exc}"
            print(f"gslab-agent: request {number}: {note}", flush=True)
            self.write(f"res/{number}/rc", json.dumps(
                {"rc": 125, "out": 0, "err": 0, "seconds": 0.0, "agent_error": note}).encode())

    def _answer(self, number: int, raw: bytes) -> None:
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
            rc, out, err, seconds = run_request(
                request, lambda proc: self.running.__setitem__(number, proc),
                lambda line: self.write(f"res/{number}/line", line.rstrip(b"\n")[:CHUNK]))
        except ValueError as exc:
            rc, out, err, seconds = 2, b"", f"agent: bad request: {exc}\n".encode(), 0.0
        parts = {"out": chunks(out), "err": chunks(err)}
        for stream, pieces in parts.items():
            for i, piece in enumerate(pieces):
                self.write(f"res/{number}/{stream}/{i}", piece)
        summary = {"rc": rc, "out": len(parts["out"]), "err": len(parts["err"]),
                   "seconds": round(seconds, 3)}
        self.running.pop(number, None)
        self.write(f"res/{number}/rc", json.dumps(summary).encode())

    def deliver_signals(self) -> None:
        """Send each signal dom0 asked for to its running request (once)."""
        for number, proc in list(self.running.items()):
            raw = self.read(f"signal/{number}")
            if raw is not None and proc.poll() is None:
                print(f"gslab-agent: request {number}: signal {raw.decode()}", flush=True)
                proc.send_signal(int(raw))
                with self.lock:
                    self.xs.rm(self._path(f"signal/{number}"))

    def serve(self) -> None:
        """Announce readiness, then answer requests in order of their numbers, forever."""
        guest_type = Path("/sys/hypervisor/guest_type")
        kind = guest_type.read_text().strip() if guest_type.exists() else "unknown"
        self.write("type", kind.encode())
        self.write("ready", b"1")
        print(f"gslab-agent: ready in {self.home} ({kind})", flush=True)
        number = 0
        while True:
            self.deliver_signals()
            raw = self.read(f"cmd/{number}")
            if raw is None:
                time.sleep(POLL_SECONDS)
                continue
            print(f"gslab-agent: request {number}: {raw[:200]!r}", flush=True)
            threading.Thread(target=self.answer, args=(number, raw), daemon=True).start()
            number += 1


def main() -> int:
    """Serve until the guest is destroyed; exit 1 if XenStore cannot be reached."""
    try:
        xs = XenStore.open(timeout=30.0)
    except Exception as exc:  # the console is the only place this can be reported
        print(f"gslab-agent: cannot open XenStore: {exc}", file=sys.stderr, flush=True)
        return 1
    Agent(xs).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
