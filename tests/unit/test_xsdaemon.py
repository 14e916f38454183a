"""Which XenStore daemon answers (issue 15): found by process name, reported by doctor."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from grantscope.sources import doctor, xsdaemon


def _procs(root: Path, procs: dict[int, str]) -> str:
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/self").mkdir()          # not a pid: ignored
    for pid, comm in procs.items():
        d = root / "proc" / str(pid)
        d.mkdir()
        (d / "comm").write_text(comm + "\n")
    return str(root)


@pytest.mark.parametrize("name", ["xenstored", "oxenstored"])
def test_the_daemon_is_found_by_its_process_name(tmp_path: Path, name: str) -> None:
    root = _procs(tmp_path, {1: "busybox", 57: "xenconsoled", 312: name, 400: "bash"})
    found = xsdaemon.detect(root)
    assert (found.flavour, found.pid) == (name, 312)
    assert "/proc/312/comm" in found.how


def test_names_that_only_contain_the_daemons_name_do_not_count(tmp_path: Path) -> None:
    root = _procs(tmp_path, {10: "xenstore-watch", 11: "xenstored-helper", 12: "oxenstored2"})
    found = xsdaemon.detect(root)
    assert found.flavour is None and found.pid is None
    assert "no xenstored or oxenstored process" in found.how


def test_a_vanished_process_is_skipped(tmp_path: Path) -> None:
    root = _procs(tmp_path, {5: "oxenstored"})
    (tmp_path / "proc/4").mkdir()          # exited between listdir and reading comm
    assert xsdaemon.detect(root).pid == 5


def test_no_proc_is_unknown_not_an_error(tmp_path: Path) -> None:
    found = xsdaemon.detect(str(tmp_path))
    assert found.flavour is None and "unreadable" in found.how


def test_only_oxenstored_lists_differences() -> None:
    assert xsdaemon.XsDaemon("xenstored", 1).differences == ()
    diffs = xsdaemon.XsDaemon("oxenstored", 1).differences
    assert any("xenstore-control quota" in d for d in diffs)


class _Store:
    transport = "socket"
    path = "/run/xenstored/socket"

    def read_or_none(self, path: str) -> bytes | None:
        return b"0" if path == "domid" else None

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("comm", "summary", "flavour"), [
    ("oxenstored", "oxenstored (OCaml)", "oxenstored"),
    ("xenstored", "C xenstored", "xenstored"),
])
def test_doctor_reports_the_daemon_and_its_differences(
        tmp_path: Path, comm: str, summary: str, flavour: str) -> None:
    root = tmp_path / "root"
    (root / "sys/hypervisor").mkdir(parents=True)
    (root / "sys/hypervisor/type").write_text("xen\n")
    _procs(root, {200: comm})
    report = doctor.run_doctor(str(root), dev_dir=str(tmp_path / "dev"), open_store=_Store)
    (check,) = [c for c in report.checks if c.name == "xenstore daemon"]
    assert check.summary == summary
    assert report.xenstored == flavour and report.to_json()["xenstored"] == flavour
    assert ("xenstore-control quota" in check.detail) == (flavour == "oxenstored")


def test_doctor_names_the_kernel_and_the_python_it_runs_on(tmp_path: Path) -> None:
    # What differs across the lab's releases (docs/COMPATIBILITY.md): Linux 6.1 vs 6.12,
    # Python 3.11 vs 3.13.
    root = tmp_path / "root"
    (root / "sys/hypervisor").mkdir(parents=True)
    (root / "sys/hypervisor/type").write_text("xen\n")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.12.117+deb13-amd64\n")
    report = doctor.run_doctor(str(root), dev_dir=str(tmp_path / "dev"), open_store=_Store)
    checks = {c.name: c for c in report.checks}
    assert checks["kernel"].summary == "Linux 6.12.117+deb13-amd64"
    assert checks["python"].summary == f"Python {platform.python_version()}"
    assert checks["python"].detail == sys.executable
    (root / "proc/sys/kernel/osrelease").unlink()
    report = doctor.run_doctor(str(root), dev_dir=str(tmp_path / "dev"), open_store=_Store)
    (kernel,) = [c for c in report.checks if c.name == "kernel"]
    assert kernel.status == doctor.WARN and "unknown" in kernel.summary
