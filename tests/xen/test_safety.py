"""First, do no harm: grantscope's safety promises, proven INSIDE dom0 of the lab on real Xen.

    grantscope lab run -- .venv/bin/pytest -v tests/xen/test_safety.py

- ``--readonly``: every mutating command and every TUI action run under ``strace -f -y``; no
  ioctl on /dev/xen/gntalloc or /dev/xen/evtchn (so no grant, no bind, no notify), no
  writable mmap of /dev/xen/gntdev, no ``xl debug-keys``, and ``xenstore-ls -f /`` is the
  same before and after; each refusal exits 2 with one line naming ``--readonly``.
- A dump capture never empties the hypervisor console ring: what it held is still there.
- offer-page's cleanup (probe and CLI) removes only its own nodes: a sibling written by
  someone else in the same directory, before or during the run, stays.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from grantscope.sources.hvdump import new_ring_text
from grantscope.xen.xenstore import XenStore

pytestmark = pytest.mark.xen

GS = [sys.executable, "-m", "grantscope"]
HERE = Path(__file__).parent
BASE = "/local/domain/0/data/gs-safety"

# Each is run as 'grantscope --readonly ARGV' and must be refused with exit 2.
REFUSED: list[list[str]] = [
    ["offer", "--to", "0"],
    ["offer", "--to", "0", "--writable", "--publish", f"{BASE}/offer", "--wait", "1"],
    ["map", "--domid", "0", "--gref", "8", "--writable"],
    ["notify", "--domid", "0", "--port", "1"],
    ["pingpong", "--domid", "0", "--port", "1", "--count", "1"],
    ["xs", "write", f"{BASE}/x", "1", "--allow-write"],
    ["xs", "rm", "/local/domain/0/name", "--allow-write"],
    ["dump", "capture"],
    ["report", "--capture", "--interval", "0"],
    ["bundle", "export", "--capture", "-o", "/tmp/gs-safety-bundle.tar.gz"],
    ["probe", "run", "offer-page", "domid=0", f"publish={BASE}/probe"],
    ["probe", "run", "mailbox-loopback"],
    ["probe", "run", "map-grant", "domid=0", "gref=8", "writable=true"],
    ["probe", "run", "notify", "domid=0", "port=1"],
    ["probe", "run", "pingpong", "domid=0", "port=1"],
]
# Allowed under --readonly (they only read): exit 0, and still no effect in the trace.
ALLOWED: list[list[str]] = [
    ["report", "--interval", "0", "--json"],
    ["xs", "ls", "/local/domain/0"],
    ["doctor"],
]


def _xenstore_ls() -> str:
    return subprocess.run(["xenstore-ls", "-f", "/"], capture_output=True, text=True,
                          check=True, timeout=300).stdout


def _traced(argv: list[str], trace: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    assert shutil.which("strace"), "strace is missing: scripts/install-deps.sh installs it"
    return subprocess.run(
        # --seccomp-bpf: only the traced calls stop the process (full tracing under TCG is
        # too slow); -f follows every child (xl, lsevtchn ...), -y names each fd's file.
        ["strace", "-f", "--seccomp-bpf", "-y", "-qq", "-e", "trace=ioctl,mmap,execve",
         "-o", str(trace), *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def _effects(trace: Path) -> list[str]:
    """Trace lines that would change state: what --readonly must never let through."""
    bad = []
    for line in trace.read_text().splitlines():
        if "ioctl(" in line and ("</dev/xen/gntalloc>" in line or "</dev/xen/evtchn>" in line):
            bad.append(line)  # a grant, or an event-channel bind/notify/unbind
        elif "mmap(" in line and "</dev/xen/gntdev>" in line and "PROT_WRITE" in line:
            bad.append(line)  # a writable map of another domain's page
        elif "execve(" in line and '"debug-keys"' in line:
            bad.append(line)  # a debug key sent to Xen
    return bad


@pytest.mark.timeout(2400)  # 18 commands and the TUI under strace: minutes under TCG
def test_readonly_every_command_and_tui_action_under_strace(tmp_path: Path) -> None:
    before = _xenstore_ls()
    problems: list[str] = []
    for i, argv in enumerate(REFUSED + ALLOWED):
        trace = tmp_path / f"cmd{i}.strace"
        proc = _traced([*GS, "--readonly", *argv], trace)
        effects = _effects(trace)
        lines = proc.stderr.strip().splitlines()
        print(f"--readonly {' '.join(argv)}: rc={proc.returncode} effects={len(effects)} "
              f"stderr={lines[:1]}", flush=True)
        problems += [f"{argv}: {e}" for e in effects]
        if argv in REFUSED:
            ok = (proc.returncode == 2 and bool(lines) and lines[0].startswith("grantscope: ")
                  and "--readonly" in lines[0])
            if not ok:
                problems.append(f"{argv}: rc={proc.returncode} stderr={proc.stderr!r}")
        elif proc.returncode != 0:
            problems.append(f"{argv}: rc={proc.returncode} stderr={proc.stderr[-500:]!r}")
    trace = tmp_path / "tui.strace"
    tui = _traced([sys.executable, str(HERE / "readonly_tui.py")], trace, timeout=1800)
    assert tui.returncode == 0, tui.stderr[-2000:]
    shown = json.loads(tui.stdout.strip().splitlines()[-1])
    print(f"TUI: {shown}", flush=True)
    problems += [f"TUI: {e}" for e in _effects(trace)]
    notes = shown["notifications"]
    assert sum("--readonly" in n and "debug key" in n for n in notes) >= 2, notes  # h and e
    assert "no debug key sent" in (shown["findings_source"] or ""), shown
    assert shown["probes"] == [], shown  # every built-in probe mutates: all hidden
    after = _xenstore_ls()
    assert problems == []
    assert after == before


def _ring() -> str:
    return subprocess.run(["xl", "dmesg"], capture_output=True, text=True, check=True,
                          timeout=120).stdout


@pytest.mark.timeout(1800)
def test_a_capture_leaves_the_console_ring_as_it_was(tmp_path: Path) -> None:
    before = _ring()
    assert before.strip(), "the console ring is empty before the test: nothing to compare"
    trace = tmp_path / "capture.strace"
    proc = _traced([*GS, "dump", "capture", "--json"], trace)
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout)  # what the command reports of its capture
    assert said["ok"] is True and said["captured"] is True, said
    assert said["keys"] == ["g", "e"] and not said["unavailable"], said
    assert said["problems"] == [] and said["output"] is None, said
    assert said["steps"] and all(step["ok"] for step in said["steps"]), said["steps"]
    after = _ring()
    new, wrapped = new_ring_text(before, after)
    kept = len(after) - len(new)
    print(f"ring before {len(before)} chars, after {len(after)}; kept {kept} of the old text, "
          f"wrapped={wrapped}", flush=True)
    # The old text is still at the start of the ring (only what the dumps pushed past the
    # ring's size may have dropped off its front), and the dumps follow it.
    assert kept > 0 and before.endswith(after[:kept])
    if not wrapped:
        assert after.startswith(before)
    assert "gnttab_usage_print_all ] done" in new and "dumping event-channel info" in new
    execs = [ln for ln in trace.read_text().splitlines() if "execve(" in ln and '"dmesg"' in ln]
    assert execs and not [ln for ln in execs if '"-c"' in ln], execs


def _wait_node(xs: XenStore, path: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not xs.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("how", ["probe", "cli"])
def test_offer_page_cleanup_leaves_a_sibling_written_by_someone_else(how: str) -> None:
    base = f"{BASE}/{how}"
    argv = ([*GS, "probe", "run", "offer-page", "domid=0", f"publish={base}", "hold=20",
             "events=1"] if how == "probe" else
            [*GS, "offer", "--to", "0", "--publish", base, "--wait", "20"])
    with XenStore.open() as xs:
        try:
            xs.write(f"{base}/before", b"was here first")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            try:
                _wait_node(xs, f"{base}/port")
                xs.write(f"{base}/during", b"written while the offer held")
                port = int(xs.read(f"{base}/port"))
                # End the hold early: a notification from a second channel on this port.
                subprocess.run([*GS, "notify", "--domid", "0", "--port", str(port)],
                               capture_output=True, timeout=600, check=False)
                out, err = proc.communicate(timeout=900)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            assert proc.returncode == 0, (out, err)
            assert xs.read(f"{base}/before") == b"was here first"
            assert xs.read(f"{base}/during") == b"written while the offer held"
            assert not xs.exists(f"{base}/gref") and not xs.exists(f"{base}/port")
        finally:
            if xs.exists(BASE):
                xs.rm(BASE)


def test_report_names_the_nodes_a_killed_offer_left() -> None:
    """SIGKILL runs no cleanup: the nodes 'offer --publish' wrote stay. grantscope's journal of
    them lets 'report' name them, with the killed process and what to remove; once they are
    removed, the finding is gone."""
    path = f"/local/domain/0/data/gs-leftover-{os.getpid()}"
    offer = subprocess.Popen([*GS, "offer", "--to", "0", "--publish", path, "--wait", "600"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal, named = "", []
    try:
        with XenStore.open(timeout=30.0) as xs:
            deadline = time.monotonic() + 300
            while xs.read_or_none(f"{path}/port") is None:
                assert offer.poll() is None, offer.stderr.read() if offer.stderr else ""
                assert time.monotonic() < deadline, "offer never published"
                time.sleep(0.5)
        # Before the fault: the offer still runs and will remove its nodes, so they are not
        # left over.
        assert not [f for f in _report_json()["findings"]
                    if f["code"] == "xenstore-leftover" and f["subject"]["pid"] == offer.pid]
        assert offer.poll() is None  # (still holding: the report above saw it alive)
        offer.send_signal(signal.SIGKILL)
        assert offer.wait(timeout=60) == -signal.SIGKILL
        with XenStore.open(timeout=30.0) as xs:
            assert xs.exists(f"{path}/gref") and xs.exists(f"{path}/port")  # no cleanup ran
        doc = _report_json()
        mine = [f for f in doc["findings"]
                if f["code"] == "xenstore-leftover" and f["subject"]["pid"] == offer.pid]
        assert len(mine) == 1, doc["findings"]
        journal, named = mine[0]["subject"]["journal"], mine[0]["subject"]["nodes"]
        assert {f"{path}/gref", f"{path}/port", path} <= set(named)
        assert "xenstore-rm" in mine[0]["action"]
    finally:
        if offer.poll() is None:
            offer.kill()
            offer.wait(timeout=60)
        with XenStore.open(timeout=30.0) as xs:  # what the killed process would have removed
            for node in sorted(set(named) | {path}, key=len, reverse=True):  # deepest first
                if xs.exists(node) and not xs.list(node):
                    xs.rm(node)
    assert not [f for f in _report_json()["findings"]
                if f["code"] == "xenstore-leftover" and f["subject"]["pid"] == offer.pid]
    if journal:
        os.unlink(journal)


def _report_json() -> dict[str, Any]:
    proc = subprocess.run([*GS, "report", "--json", "--no-dumps", "--interval", "0"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc
