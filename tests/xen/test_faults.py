"""Faults on real Xen (issue 13): what grantscope says when the other end goes away.

    grantscope lab run -- .venv/bin/pytest -v tests/xen/test_faults.py

A C peer in a PV domU echoes a ping-pong, then closes its port (``gs_echo_max``): Xen puts
dom0's end back to "waiting for a connection", notifications go nowhere without an error, and
grantscope must say so, from ``lsevtchn``, instead of hanging or guessing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from grantscope.lab.domu import DomU

pytestmark = pytest.mark.timeout(600)

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
ECHOES = 20


def echo_peer_that_unbinds(domu_factory: Callable[..., DomU]) -> tuple[DomU, int]:
    """A PV peer offering a port that echoes ECHOES notifications and then closes it."""
    peer = domu_factory("echo", echo_max=ECHOES)
    port = int(peer.wait_key("data/port"))
    peer.wait_value("data/status", "ready")
    return peer, port


def test_pingpong_names_the_peer_that_closed_its_port(
    domu_factory: Callable[..., DomU],
) -> None:
    peer, port = echo_peer_that_unbinds(domu_factory)
    # More round trips than the peer will echo; each waits at most 3 s, and the process
    # itself must end (a hang fails by the subprocess timeout).
    proc = subprocess.run(
        [GRANTSCOPE, "pingpong", "--domid", str(peer.domid), "--port", str(port),
         "--count", str(ECHOES * 10), "--timeout", "3", "--json"],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    error = json.loads(proc.stdout)["error"]
    assert f"no echo from domain {peer.domid} port {port}" in error["message"], error
    assert "the peer closed its end" in error["message"], error
    assert f"d{peer.domid} port {port} was unbound" in error["message"], error
    assert peer.read_key("data/status") == "unbound"


def test_the_pingpong_probe_names_the_peer_that_closed_its_port(
    domu_factory: Callable[..., DomU],
) -> None:
    peer, port = echo_peer_that_unbinds(domu_factory)
    proc = subprocess.run(
        [GRANTSCOPE, "probe", "run", "pingpong", f"domid={peer.domid}", f"port={port}",
         f"count={ECHOES * 10}", "timeout=3", "--json"],
        capture_output=True, text=True, timeout=180, check=False)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False, doc
    failed = [s for s in doc["steps"] if not s["ok"]]
    assert [s["name"] for s in failed] == ["ping-pong"], failed
    assert "the peer closed its end" in json.dumps(failed[0]), failed[0]
    # cleanup still ran: the probe's own port is closed again (the autouse fixture checks
    # lsevtchn 0 for anything left behind).

