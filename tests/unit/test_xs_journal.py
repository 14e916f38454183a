"""The journal of the XenStore nodes grantscope created, and 'report' naming what a killed
process left (issue 13: nodes left by a SIGKILL are reported as leftovers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from xsd_double import XsdDouble, running_double

from grantscope.model.findings import Observation, analyze
from grantscope.model.observation import XsLeftover
from grantscope.sources.xs_journals import dead_journals
from grantscope.xen.xenstore import XenStore
from grantscope.xen.xs_journal import process_start
from grantscope.xen.xs_owned import OwnedNodes


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The journals' directory this test writes to (tests/unit/conftest.py sets it)."""
    where = tmp_path / "run"
    assert os.environ["GRANTSCOPE_RUN_DIR"] == str(where)
    return where


@pytest.fixture
def xsd() -> Iterator[XsdDouble]:
    with running_double() as double:
        double.put("/local/domain/0/data/theirs", b"kept")
        yield double


def _journals(where: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(where.glob("xenstore-*.json"))]


def test_created_nodes_are_noted_until_they_are_removed(xsd: XsdDouble, run_dir: Path) -> None:
    with XenStore.open(xsd.socket_path) as store:
        owned = OwnedNodes(store)
        owned.write("/local/domain/0/data/theirs", b"changed")  # existed: restored, not noted
        owned.write("/local/domain/0/data/gs/mailbox/gref", b"8")
        (doc,) = _journals(run_dir)
        assert doc["pid"] == os.getpid() and doc["start"] == process_start(os.getpid())
        assert doc["nodes"] == ["/local/domain/0/data/gs/mailbox/gref"]
        assert doc["dirs"] == ["/local/domain/0/data/gs", "/local/domain/0/data/gs/mailbox"]
        assert [f.stat().st_mode & 0o777 for f in run_dir.glob("*.json")] == [0o600]
        assert owned.remove() == []
        assert _journals(run_dir) == []  # removed cleanly: the note goes
        assert store.read("/local/domain/0/data/theirs") == b"kept"


def test_the_demo_store_keeps_no_journal(run_dir: Path) -> None:
    from grantscope.host.sim import SimHost

    owned = OwnedNodes(SimHost().store)
    owned.write("/local/domain/0/data/gs", b"1")
    assert not run_dir.exists()


def test_a_killed_process_is_named_with_the_nodes_still_there(xsd: XsdDouble,
                                                              run_dir: Path) -> None:
    child = ("import os, signal, sys\n"
             "from grantscope.xen.xenstore import XenStore\n"
             "from grantscope.xen.xs_owned import OwnedNodes\n"
             "owned = OwnedNodes(XenStore.open(sys.argv[1]))\n"
             "owned.write('/local/domain/0/data/gs-kill/port', b'5')\n"
             "owned.write('/local/domain/0/data/gs-kill/gref', b'9')\n"
             "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", child, xsd.socket_path], timeout=60,
                          env={**os.environ, "GRANTSCOPE_RUN_DIR": str(run_dir)}, check=False)
    assert done.returncode == -signal.SIGKILL
    (entry,), problems = dead_journals()
    assert problems == ()
    assert entry.nodes == ("/local/domain/0/data/gs-kill/port",
                           "/local/domain/0/data/gs-kill/gref")
    with XenStore.open(xsd.socket_path) as store:
        snapshot = {n.path: n.value for n in store.walk("/")}
        obs = Observation(xenstore=snapshot, local_domid=0, leftovers=(
            XsLeftover(entry.file, entry.pid, entry.nodes + entry.dirs),))
        (found,) = [f for f in analyze(obs).findings if f.code == "xenstore-leftover"]
        assert found.subject["pid"] == entry.pid
        assert found.subject["nodes"] == ["/local/domain/0/data/gs-kill/port",
                                          "/local/domain/0/data/gs-kill/gref",
                                          "/local/domain/0/data/gs-kill"]
        assert "xenstore-rm" in found.action
        store.rm("/local/domain/0/data/gs-kill")  # removed by hand: nothing left to name
        snapshot = {n.path: n.value for n in store.walk("/")}
    obs = Observation(xenstore=snapshot, local_domid=0, leftovers=obs.leftovers)
    assert not [f for f in analyze(obs).findings if f.code == "xenstore-leftover"]


def test_a_running_process_and_a_reused_pid_are_told_apart(run_dir: Path,
                                                           tmp_path: Path) -> None:
    run_dir.mkdir()
    mine = {"pid": os.getpid(), "start": process_start(os.getpid()), "nodes": ["/a"],
            "dirs": []}
    reused = {**mine, "start": (process_start(os.getpid()) or 0) + 1, "nodes": ["/b"]}
    (run_dir / "xenstore-1-0.json").write_text(json.dumps(mine))
    (run_dir / "xenstore-2-0.json").write_text(json.dumps(reused))
    (run_dir / "xenstore-3-0.json").write_text("{not json")
    entries, problems = dead_journals()
    assert [e.nodes for e in entries] == [("/b",)]  # this process still runs: its /a is used
    assert len(problems) == 1 and "xenstore-3-0.json" in problems[0]


def test_a_created_directory_others_wrote_into_is_not_named() -> None:
    snapshot: dict[str, bytes | None] = {
        "/local/domain/0/data": None, "/local/domain/0/data/gs": None,
        "/local/domain/0/data/gs/port": b"5", "/local/domain/0/data/peer-answer": b"ok"}
    leftover = XsLeftover("/run/grantscope/xenstore-9-0.json", 9, (
        "/local/domain/0/data/gs/port", "/local/domain/0/data",
        "/local/domain/0/data/gs"))
    (found,) = [f for f in analyze(Observation(xenstore=snapshot, local_domid=0,
                                               leftovers=(leftover,))).findings
                if f.code == "xenstore-leftover"]
    # data/ was created by it, but a peer has written there since: not named for removal.
    assert found.subject["nodes"] == ["/local/domain/0/data/gs/port", "/local/domain/0/data/gs"]
