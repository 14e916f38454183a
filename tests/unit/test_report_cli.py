"""``grantscope dump analyze`` and ``grantscope report`` argument handling and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grantscope.cli import main
from grantscope.sources import observation as observation_mod
from grantscope.xen.xs_types import XsNode

FIX = Path(__file__).parent / "fixtures" / "dumps"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_analyze_lab_dump_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = "".join((FIX / "lab-xen-4.17" / n).read_text()
                   for n in ("xl-dmesg-before.txt", "xl-dmesg-g.txt", "xl-dmesg-e.txt"))
    f = tmp_path / "dmesg.txt"
    f.write_text(text)
    rc, out, _ = run(["dump", "analyze", str(f), "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["unparsed"] == [] and doc["dump_problems"] == []
    assert doc["other_lines"] == 159
    (t,) = doc["grant_tables"]
    assert [e["ref"] for e in t["entries"]] == [8, 9]
    assert t["entries"][0]["pins"]["host_write"] == 2
    (d0,) = doc["event_domains"]
    assert len(d0["ports"]) == 28
    assert doc["findings"] == []
    assert any(c.startswith("XenStore quota") for c in doc["not_checked"])


def test_analyze_text_shows_unparsed_and_conring(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["dump", "analyze", str(FIX / "handwritten-4.19-date-timestamps-ring-wrapped"
                                                   ".txt")], capsys)
    assert rc == 0
    assert "Could not parse (2 lines):" in out and "line 1: (XEN) [2026-11-25" in out
    assert "conring_size=" in out and "INCOMPLETE" in out


def test_analyze_findings_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["dump", "analyze",
                      str(FIX / "handwritten-4.17-multi-domain-boot-timestamps.txt")], capsys)
    assert rc == 0
    assert "[WARNING] grant-frames: d1 uses 60 of 64 (94 %) of its grant frames" in out
    assert "[WARNING] maptrack-frames: d2 uses 900 of 1024 (88 %)" in out


def test_analyze_text_folds_runs_of_like_entries(capsys: pytest.CaptureFixture[str]) -> None:
    # Recorded in the lab: a guest held 200 of dom0's pages mapped (refs 8-207).
    vif = FIX / "lab-xen-4.17" / "domu-vif" / "xl-dmesg-g.txt"
    rc, out, _ = run(["dump", "analyze", str(vif)], capsys)
    assert rc == 0
    assert "      refs 8-207 (0x8-0xcf, 200) mapped by d1 pin 0x00000200 flags 0x0d\n" in out
    assert "ref 100 " not in out
    assert "      refs 8-9 (0x8-0x9, 2) mapped by d0 pin 0x00000001 flags 0x19\n" in out
    rc, out, _ = run(["dump", "analyze", "--json", str(vif)], capsys)
    (d0,) = [t for t in json.loads(out)["grant_tables"] if t["domid"] == 0]
    assert len(d0["entries"]) == 200  # JSON keeps every entry


def test_analyze_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = (FIX / "from-xen-facts-qubes-7971-e.txt").read_bytes()

    class In:
        buffer = __import__("io").BytesIO(data)

    monkeypatch.setattr(sys, "stdin", In)
    rc, out, _ = run(["dump", "analyze", "-", "--json"], capsys)
    assert rc == 0 and json.loads(out)["event_domains"][0]["domid"] == 0


def test_analyze_no_dump_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.txt"
    f.write_text("just a boot log\n(XEN) Xen version 4.17\n")
    rc, out, _ = run(["dump", "analyze", str(f)], capsys)
    assert rc == 1 and "No 'g' or 'e' dump found" in out
    rc, out, _ = run(["dump", "analyze", str(f), "--json"], capsys)
    assert rc == 1 and json.loads(out)["ok"] is False


def test_analyze_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["dump", "analyze", str(tmp_path / "nope.txt")], capsys)
    assert rc == 2 and "no such file" in err and "Traceback" not in err
    rc, out, _ = run(["dump", "analyze", str(tmp_path), "--json"], capsys)
    assert rc == 2 and json.loads(out)["error"]["message"].endswith("is a directory")


def test_analyze_binary_garbage_does_not_crash(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bin"
    f.write_bytes(bytes(range(256)) * 50)
    rc, _, err = run(["dump", "analyze", str(f)], capsys)
    assert rc == 1 and "Traceback" not in err


def test_report_without_xen_exits_2(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    rc, _, err = run(["report"], capsys)
    assert rc == 2 and "not running on Xen" in err and "dump analyze" in err
    rc, out, _ = run(["report", "--json"], capsys)
    assert rc == 2 and json.loads(out)["ok"] is False


def test_report_bad_interval(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["report", "--interval", "-1"], capsys)
    assert rc == 2 and "--interval" in err


def test_dump_capture_refuses_other_keys(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["dump", "capture", "--keys", "R"], capsys)
    assert rc == 2 and "refusing to send debug key 'R'" in err


@pytest.mark.skipif(Path("/sys/hypervisor/type").exists() or Path("/dev/xen").exists(),
                    reason="this machine runs on Xen; the no-Xen exit is covered above")
def test_report_process_on_this_non_xen_machine() -> None:
    proc = subprocess.run([sys.executable, "-m", "grantscope", "report"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


class _DomUStore:
    """What a domU's XenStore connection allows: its home and its backends' directories."""

    def __init__(self) -> None:
        self.nodes = {
            "/local/domain/1": b"",
            "/local/domain/1/domid": b"1",
            "/local/domain/1/device/vif/0": b"",
            "/local/domain/1/device/vif/0/backend": b"/local/domain/0/backend/vif/1/0",
            "/local/domain/1/device/vif/0/state": b"4",
            "/local/domain/1/device/vbd/51712": b"",
            "/local/domain/1/device/vbd/51712/backend": b"/local/domain/0/backend/vbd/1/51712",
            "/local/domain/0/backend/vif/1/0": b"",
            "/local/domain/0/backend/vif/1/0/state": b"2",
        }

    def read_or_none(self, path: str) -> bytes | None:
        return self.nodes.get("/local/domain/1/" + path if not path.startswith("/") else path)

    def walk(self, root: str) -> list[XsNode]:
        from grantscope.errors import GrantscopeError

        if root in ("/", "/local/domain") or root.endswith("vbd/1/51712"):
            raise GrantscopeError("EACCES (Permission denied)")
        return [XsNode(p, v, None) for p, v in self.nodes.items()
                if p == root or p.startswith(root + "/")]


def test_a_domu_report_reads_its_backends_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    from grantscope.xen import xenstore

    monkeypatch.setattr(xenstore.XenStore, "open", staticmethod(lambda: _DomUStore()))
    unavailable: dict[str, str] = {}
    _store, snap = observation_mod._read_xenstore(unavailable)
    assert snap is not None
    # The vif's backend state (InitWait) came from dom0's tree, which the domU cannot list.
    assert snap["/local/domain/0/backend/vif/1/0/state"] == b"2"
    assert "/local/domain/1/device/vif/0/state" in snap
    # A backend it may not read is said, not guessed.
    assert "EACCES" in unavailable["xenstore /local/domain/0/backend/vbd/1/51712"]
    assert "xenstore" not in unavailable
