"""report and dump capture: debug keys only on request, files written new and private.

A fake ``xl`` on PATH models the console ring (see test_dumps_capture.py) and logs its argv.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_dumps_capture import FIX, fake_xl  # noqa: F401  (fake_xl: the shared fixture)

from grantscope.cli import main
from grantscope.safefile import write_new_file


@pytest.fixture
def host(fake_xl: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """A "Xen host" whose only working source is the fake xl (XenStore absent)."""
    tmp_path = fake_xl
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XENSTORED_PATH", str(tmp_path / "no-xenstored"))
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": True)
    return tmp_path


def xl_calls(d: Path) -> list[str]:
    log = d / "argv.log"
    return [c for c in log.read_text().splitlines() if c.startswith(("dmesg", "debug-keys"))] \
        if log.exists() else []


def test_report_sends_no_key_without_capture(host: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--interval", "0", "--json"]) == 0
    assert xl_calls(host) == ["dmesg"]
    data = json.loads(capsys.readouterr().out)
    why = data["unavailable"]["grant dump"]
    assert "holds no 'g' dump" in why and "--capture" in why
    assert any(c.startswith("grant-table and maptrack headroom") for c in data["not_checked"])
    assert data["capture"]["captured"] is False


def test_report_uses_a_dump_the_ring_already_holds(host: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (host / "ring.txt").write_text((FIX / "xl-dmesg-g.txt").read_text())
    assert main(["report", "--interval", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "grant dump" not in data["unavailable"] and "event dump" in data["unavailable"]
    assert data["grant_tables"]
    assert xl_calls(host) == ["dmesg"]


def test_report_capture_sends_g_and_e(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--interval", "0", "--capture", "--json"]) == 0
    assert xl_calls(host) == ["dmesg", "debug-keys g", "dmesg", "debug-keys e", "dmesg"]
    data = json.loads(capsys.readouterr().out)
    assert data["grant_tables"] and data["event_domains"]
    assert "earlier boot log line" in (host / "ring.txt").read_text()  # never emptied


def test_report_capture_is_refused_under_readonly(host: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--readonly", "report", "--interval", "0", "--capture"]) == 2
    assert "--readonly" in capsys.readouterr().err
    assert not any(c.startswith("debug-keys") for c in xl_calls(host))


def test_report_save_console_is_new_and_private(host: Path) -> None:
    target = host / "console.txt"
    assert main(["report", "--interval", "0", "--capture", "--save-console", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert text.startswith("(XEN) earlier boot log line") and "gnttab_usage_print_all ]" in text


def test_report_save_console_refuses_a_symlink_before_any_work(
        host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = host / "victim"
    victim.write_text("precious")
    link = host / "link.txt"
    link.symlink_to(victim)
    assert main(["report", "--interval", "0", "--save-console", str(link)]) == 2
    assert "symlink" in capsys.readouterr().err
    assert victim.read_text() == "precious" and xl_calls(host) == []


def test_dump_capture_output_file(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = host / "dumps.txt"
    assert main(["dump", "capture", "-o", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "event-channel info" in out.read_text()
    assert main(["dump", "capture", "-o", str(out)]) == 2  # exists: refused, not replaced
    assert "already exists" in capsys.readouterr().err


def test_dump_capture_refuses_a_symlink(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = host / "victim"
    victim.write_text("precious")
    link = host / "dumps-link.txt"
    link.symlink_to(victim)
    assert main(["dump", "capture", "-o", str(link)]) == 2
    assert "symlink" in capsys.readouterr().err
    assert victim.read_text() == "precious" and link.is_symlink()


def test_write_new_file_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    os.umask(0o022)
    target = tmp_path / "f.bin"
    write_new_file(str(target), b"data")
    assert target.read_bytes() == b"data" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(Exception, match="symlink"):
        write_new_file(str(dangling), b"x")
    assert not (tmp_path / "nowhere").exists()


def test_bundle_hvdump_reads_the_ring_unless_asked_to_capture(host: Path) -> None:
    from grantscope.bundle.collectors import collect_hvdump

    shared: dict[str, object] = {}
    unavailable: dict[str, str] = {}
    got = collect_hvdump(5.0, shared, unavailable=unavailable)
    assert xl_calls(host) == ["dmesg"]
    assert "holds no 'g' dump" in unavailable["grant dump"]
    assert got["xl-dmesg.txt"] == b"(XEN) earlier boot log line\n"
    got = collect_hvdump(5.0, shared, capture=True, unavailable=unavailable)
    assert xl_calls(host)[1:] == ["dmesg", "debug-keys g", "dmesg", "debug-keys e", "dmesg"]
    assert b"gnttab_usage_print_all ] done" in got["hvdump.txt"]  # type: ignore[operator]


def test_bundle_export_capture_is_refused_under_readonly(
        host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--readonly", "bundle", "export", "--capture", "-o",
                 str(host / "b.tar.gz")]) == 2
    assert "--readonly" in capsys.readouterr().err
    assert xl_calls(host) == [] and not (host / "b.tar.gz").exists()


def test_report_capture_names_its_steps_in_the_progress_on_a_terminal_only(
        host: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # issue 16 item 4: 'report --capture' waits on xl; on a terminal the progress display
    # (grantscope.cli.progress, drawn by Rich: see test_progress.py) names each step
    from grantscope.cli import report as report_cli
    from grantscope.cli.progress import Progress

    shown: list[tuple[bool, str]] = []

    class Watched(Progress):
        def update(self, step: str = "", *, completed: int | None = None) -> None:
            shown.append((self.enabled, step))
            super().update(step, completed=completed)

    monkeypatch.setattr(report_cli, "Progress", Watched)
    monkeypatch.setattr(report_cli, "on_terminal", lambda: True)
    assert main(["report", "--interval", "0", "--capture"]) == 0
    assert (True, "capturing the g and e dumps") in shown and all(on for on, _ in shown)
    shown.clear()
    assert main(["report", "--interval", "0", "--capture", "--json"]) == 0
    assert shown and not any(on for on, _ in shown)  # --json: nothing drawn
    monkeypatch.setattr(report_cli, "on_terminal", lambda: False)
    shown.clear()
    assert main(["report", "--interval", "0", "--capture"]) == 0
    assert shown and not any(on for on, _ in shown)  # piped: nothing drawn
    capsys.readouterr()
