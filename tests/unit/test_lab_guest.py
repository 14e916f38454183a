"""The Python guest pieces that need no Xen: the agent's protocol and the image's contents."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from grantscope.lab import agent, guest, pyguest
from grantscope.xen.xs_wire import PAYLOAD_MAX


class Store:
    """A dict standing in for the guest's XenStore (relative 'domid' like xenstored)."""

    def __init__(self) -> None:
        self.nodes: dict[str, bytes] = {"domid": b"7"}
        self.lock = threading.Lock()

    def read(self, path: str) -> bytes:
        with self.lock:
            return self.nodes[path]

    def read_or_none(self, path: str) -> bytes | None:
        with self.lock:
            return self.nodes.get(path)

    def write(self, path: str, value: bytes) -> None:
        with self.lock:
            self.nodes[path] = bytes(value)

    def rm(self, path: str) -> None:
        with self.lock:
            self.nodes = {k: v for k, v in self.nodes.items()
                          if k != path and not k.startswith(path + "/")}


def _result(store: Store, number: int, timeout: float = 30.0) -> dict[str, object]:
    base = f"/local/domain/7/data/agent/res/{number}"
    deadline = time.monotonic() + timeout
    while (raw := store.read_or_none(f"{base}/rc")) is None:
        assert time.monotonic() < deadline, store.nodes.keys()
        time.sleep(0.02)
    summary = json.loads(raw)
    for stream in ("out", "err"):
        summary[stream] = b"".join(store.nodes[f"{base}/{stream}/{i}"]
                                   for i in range(summary[stream]))
    return summary


def _serve(store: Store) -> agent.Agent:
    served = agent.Agent(store)  # type: ignore[arg-type]
    threading.Thread(target=served.serve, daemon=True).start()
    return served


def test_chunks_cut_output_below_the_domu_node_size_limit() -> None:
    data = bytes(range(256)) * 9
    pieces = agent.chunks(data)
    assert b"".join(pieces) == data and all(len(p) <= 1024 for p in pieces)
    assert agent.chunks(b"") == []


def test_a_file_travels_in_requests_that_each_fit_one_xenstore_message(tmp_path: Path) -> None:
    # ordinary text, text whose JSON escapes are six times longer, and nothing at all
    path = str(tmp_path / "sub" / "script.py")
    node = "/local/domain/7/data/agent/cmd/12345"
    for text in ("print('hello')\n" * 600, "\x1b\x00é" * 2000 + "end", ""):
        requests = guest.put_file_requests(path, text)
        for argv in requests:
            size = len(node) + 1 + len(json.dumps({"argv": argv, "timeout": 300.0}).encode())
            assert size <= PAYLOAD_MAX, (size, len(requests))
        for argv in requests:  # what the agent runs, with this Python for the guest's python3
            rc, _out, err, _secs = agent.run_request({"argv": [sys.executable, *argv[1:]]})
            assert rc == 0, err
        assert Path(path).read_text(encoding="utf-8") == text
    assert len(guest.put_file_requests(path, "x" * 5000)) == 3


def test_agent_runs_requests_in_order_and_returns_long_output(capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    store = Store()
    _serve(store)
    base = "/local/domain/7/data/agent"
    code = "import sys; sys.stdout.write('x' * 5000); sys.stderr.write('warn'); sys.exit(3)"
    store.write(f"{base}/cmd/0", json.dumps({"argv": [sys.executable, "-c", code]}).encode())
    store.write(f"{base}/cmd/1", json.dumps({"argv": ["/no/such/program"]}).encode())
    first, second = _result(store, 0), _result(store, 1)
    assert store.nodes[f"{base}/ready"] == b"1"
    assert first["rc"] == 3 and first["out"] == b"x" * 5000 and first["err"] == b"warn"
    assert second["rc"] == 127 and b"cannot run /no/such/program" in second["err"]  # type: ignore[operator]


def test_agent_delivers_a_signal_to_a_running_request() -> None:
    store = Store()
    _serve(store)
    base = "/local/domain/7/data/agent"
    code = "import time; print('up', flush=True); time.sleep(120)"
    store.write(f"{base}/cmd/0", json.dumps({"argv": [sys.executable, "-c", code]}).encode())
    time.sleep(1.0)
    # While it runs, its last line is visible (what PyGuest.wait_line polls).
    assert store.nodes[f"{base}/res/0/line"] == b"up"
    store.write(f"{base}/signal/0", str(int(signal.SIGTERM)).encode())
    done = _result(store, 0)
    assert done["rc"] == -signal.SIGTERM and done["out"] == b"up\n"
    assert f"{base}/signal/0" not in store.nodes


def test_agent_times_out_and_reports_bad_requests() -> None:
    store = Store()
    _serve(store)
    base = "/local/domain/7/data/agent"
    code = "import time; time.sleep(60)"
    store.write(f"{base}/cmd/0", json.dumps({"argv": [sys.executable, "-c", code],
                                             "timeout": 0.5}).encode())
    store.write(f"{base}/cmd/1", b"not json")
    assert _result(store, 0)["rc"] == -9
    bad = _result(store, 1)
    assert bad["rc"] == 2 and b"bad request" in bad["err"]  # type: ignore[operator]


def test_image_inputs_hold_python_the_runtime_dependencies_and_grantscope() -> None:
    python, files = pyguest.image_inputs()
    targets = {f.target for f in files}
    dest = pyguest.DIST_PACKAGES.format(minor=sys.version_info.minor)
    assert python.is_file() and python.name.startswith("python3")
    for module in ("textual/__init__.py", "rich/__init__.py", "pyxs/__init__.py",
                   "psutil/__init__.py", "grantscope/lab/agent.py",
                   "grantscope/probes/map_grant.py", "grantscope/themes/grantscope-dark.toml"):
        assert f"{dest}/{module}" in targets, module
    stdlib = Path(str(python)).parent.parent / "lib" / f"python3.{sys.version_info.minor}"
    assert f"{str(stdlib).lstrip('/')}/json/__init__.py" in targets
    # What nothing imports stays out; pytest and the type checkers are not runtime deps.
    assert not [t for t in targets if "/tkinter/" in t or "/config-3" in t
                or "/_pytest/" in t or "/mypy/" in t]


def test_launcher_runs_grantscope_main() -> None:
    text = pyguest.launcher("/usr/bin/python3.11").decode()
    assert text.startswith("#!/usr/bin/python3.11\n")
    assert "from grantscope.__main__ import main" in text
