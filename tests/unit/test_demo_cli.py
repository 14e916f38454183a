"""``grantscope --demo COMMAND``: every read-only command, report, bundle export and probe run
work on the simulated host and say so (SIMULATED in text, ``"simulated": true`` in JSON);
without ``--demo`` on a machine that is not Xen the same commands refuse with exit 2, naming
``grantscope --demo COMMAND``.  Commands --demo cannot simulate refuse it (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from grantscope.cli import main
from grantscope.cli import xs as xs_cli
from grantscope.host.replay import ReplayHost

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))

# (argv after --demo, the command name the refusal names)
COMMANDS = [
    (["doctor"], "doctor"),
    (["xs", "ls", "/local/domain/1"], "xs ls"),
    (["xs", "ls", "-r", "/local/domain/1/device"], "xs ls"),
    (["xs", "read", "/local/domain/1/name"], "xs read"),
    (["xs", "watch", "/local/domain/1/data", "--count", "1"], "xs watch"),
    (["report", "--interval", "0"], "report"),
    (["probe", "run", "map-grant", "domid=1", "gref=20"], "probe run"),
    (["probe", "run", "explain-map", "domid=1", "gref=xs:/local/domain/1/data/peer-gref"],
     "probe run"),
    (["metrics"], "metrics"),
]


@pytest.fixture
def no_xen(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as a machine without Xen, whatever it really is."""
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    monkeypatch.delenv("XENSTORED_PATH", raising=False)


@pytest.mark.parametrize(("argv", "_name"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_demo_text_is_labelled_simulated(argv: list[str], _name: str, no_xen: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", *argv]) == 0
    out = capsys.readouterr().out
    if argv[0] == "metrics":  # Prometheus text: every series carries the label
        series = [line for line in out.splitlines() if line and not line.startswith("#")]
        assert series and all('simulated="1"' in line for line in series)
    else:
        assert out.splitlines()[0].startswith("SIMULATED: 'grantscope ")


@pytest.mark.parametrize(("argv", "_name"), [c for c in COMMANDS if c[0][0] != "metrics"],
                         ids=[" ".join(a) for a, _ in COMMANDS if a[0] != "metrics"])
def test_demo_json_says_simulated(argv: list[str], _name: str, no_xen: None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    if argv[:2] == ["xs", "watch"]:  # JSON Lines: every line says it
        docs = [json.loads(line) for line in out.splitlines()]
        assert docs and all(d["simulated"] is True for d in docs)
    else:
        doc = json.loads(out)
        assert doc["simulated"] is True and doc["ok"] is True


@pytest.mark.parametrize(("argv", "name"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_without_demo_off_xen_exits_2_naming_demo(argv: list[str], name: str, no_xen: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.err + captured.out  # doctor prints its checks on stdout
    assert "--demo" in text and "Traceback" not in text
    if argv[0] != "doctor":
        assert f"grantscope --demo {name}" in text


def test_demo_doctor_reports_a_usable_simulated_dom0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["xen"] and doc["role"] == "dom0" and doc["domid"] == 0
    assert "simulated" in doc["xen_version"]


def test_demo_xs_ls_lists_the_simulated_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "xs", "ls", "/local/domain/1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert '/local/domain/1/name = "web-frontend"' in lines[1:]


def test_demo_xs_read_raw_keeps_the_bytes(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["--demo", "xs", "read", "--raw", "/local/domain/2/name"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == b"storage-01" and b"SIMULATED" in err


def test_demo_xs_watch_sees_the_heartbeats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "xs", "watch", "/local/domain/1/data", "--count", "2",
                 "--max-wait", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["/local/domain/1/data", "/local/domain/1/data/heartbeat"]


def test_demo_xs_watch_ends_by_itself(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(xs_cli, "DEMO_WATCH_S", 0.3)
    assert main(["--demo", "xs", "watch", "/local/domain/1/data"]) == 0
    captured = capsys.readouterr()
    assert "SIMULATED" in captured.err and "0.3 s" in captured.err
    assert "/local/domain/1/data" in captured.out.splitlines()


def test_demo_report_finds_the_simulated_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "report", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    codes = {f["code"] for f in doc["findings"]}
    assert {"grant-unowned", "stale-backend", "device-state"} <= codes
    assert doc["grant_tables"] and doc["event_domains"]


def test_demo_report_refuses_save_console(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "console.txt"
    assert main(["--demo", "report", "--save-console", str(target)]) == 2
    assert "demo host has no console" in capsys.readouterr().err and not target.exists()


def test_demo_probe_run_maps_the_simulated_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "probe", "run", "map-grant", "domid=1", "gref=20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["devices"] == "sim" and doc["outcome"] == "completed"
    assert "hello from d1 (simulated)" in json.dumps(doc["steps"])


def test_demo_probe_run_still_refuses_mutating_probes_under_readonly(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--readonly", "probe", "run", "offer-page", "domid=1"]) == 2
    assert "--readonly" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["lab", "info"], ["dump", "capture"]])
def test_commands_that_cannot_be_simulated_refuse_demo(argv: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", *argv]) == 2
    err = capsys.readouterr().err
    assert "--demo" in err and "Traceback" not in err


def test_demo_bundle_opens_as_a_simulated_replay(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.tar.gz"
    assert main(["--demo", "bundle", "export", "-o", str(path), "--include-pages"]) == 0
    assert capsys.readouterr().out.startswith("SIMULATED")
    host = ReplayHost.open(str(path))
    assert host.simulated and "SIMULATED" in host.info().label
    assert host.bundle.manifest["simulated"] is True
    assert host.bundle.host["hostname"] == "grantscope-demo"  # not this machine's name
    assert sorted(host.list("/local/domain")) == ["0", "1", "2"]
    findings = host.findings()
    assert findings is not None and {f.code for f in findings.findings} >= {"grant-unowned"}
    assert host.grants().hypervisor and host.events().interrupts and host.pages()
    # nothing read from this machine: no sysfs, console or xl members
    with tarfile.open(path) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert not names & {"sysfs.json", "xl-dmesg.txt", "hvdump.txt", "domains.json"}
    assert main(["bundle", "inspect", str(path)]) == 0
    assert "SIMULATED" in capsys.readouterr().out
    assert main(["bundle", "inspect", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["simulated"] is True


def test_demo_bundle_export_json_says_simulated(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.tar.gz"
    assert main(["--demo", "bundle", "export", "-o", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["simulated"] is True and doc["role"] == "dom0"


def test_a_real_export_is_not_marked_simulated(tmp_path: Path, no_xen: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "real.tar.gz"
    main(["bundle", "export", "-o", str(path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["simulated"] is False
    assert not ReplayHost.open(str(path)).simulated


def test_the_installed_command_under_demo() -> None:
    done = subprocess.run([GRANTSCOPE, "--demo", "xs", "ls", "/local/domain/0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SIMULATED") and '/local/domain/0/name = "Domain-0"' in \
        done.stdout


def test_demo_probe_list_gives_a_command_that_runs_for_every_probe(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "probe", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SIMULATED")
    commands = [line.split("grantscope ", 1)[1].split() for line in out.splitlines()
                if "on the demo host: grantscope --demo probe run" in line]
    assert len(commands) == 6
    for argv in commands:
        assert main([*argv, "--json"]) == 0, argv
        doc = json.loads(capsys.readouterr().out)
        assert doc["simulated"] is True and doc["devices"] == "sim", argv
    assert main(["--demo", "probe", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["simulated"] is True
    assert {p["name"]: p["demo_values"] for p in doc["probes"]}["map-grant"]["domid"] == "1"


@pytest.mark.parametrize("argv", [["xs", "write", "--allow-write", "/local/domain/0/x", "y"],
                                  ["xs", "rm", "--allow-write", "/local/domain/0/name"]])
def test_demo_never_writes_to_this_machines_xenstore(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from xsd_double import running_double

    with running_double() as real:  # stands for this machine's XenStore
        real.put("/local/domain/0/name", b"Domain-0")
        monkeypatch.setenv("XENSTORED_PATH", real.socket_path)
        before = len(real.requests)
        assert main(["--demo", *argv]) == 2
        assert real.requests[before:] == []  # refused before anything connected
    assert "cannot run under --demo" in capsys.readouterr().err


def test_xs_ls_defaults_to_the_root_as_xenstore_ls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "xs", "ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIMULATED") and any(line.startswith("/local = ") for line in out)
    with pytest.raises(SystemExit):
        main(["xs", "ls", "--help"])
    assert "PATH defaults to /" in " ".join(capsys.readouterr().out.split())  # any wrapping
