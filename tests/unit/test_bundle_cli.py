"""The ``bundle`` CLI on this machine, and the standard collectors over a Host (the sim backend)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from grantscope.bundle.collectors import ExportSources, standard_collectors
from grantscope.bundle.export import export_bundle
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.replay import ReplayHost
from grantscope.host.sim import SimHost
from grantscope.model.toolout import parse_xl_list


def test_export_works_on_any_machine_and_records_every_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "here.tar.gz"
    assert main(["bundle", "export", "-o", str(target), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["path"] == str(target)
    statuses = {c["name"]: c["status"] for c in doc["collectors"]}
    assert statuses["host"] == "ok"
    assert set(statuses.values()) <= {"ok", "unavailable", "error", "timeout"}
    for entry in doc["collectors"]:
        assert entry["status"] == "ok" or entry["error"], entry  # a failure always says why
    bundle = read_bundle(str(target))  # valid, whatever was unavailable
    assert bundle.json("host.json")["hostname"]
    assert main(["bundle", "inspect", str(target)]) == 0
    assert "integrity ok" in capsys.readouterr().out


def test_export_default_name_and_text_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bundle", "export"]) == 0
    out = capsys.readouterr().out
    (name,) = os.listdir(tmp_path)
    assert name.startswith("grantscope-bundle-") and name.endswith(".tar.gz")
    assert f"wrote {name}" in out and "redaction on" in out


def test_export_into_a_missing_directory_fails_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bundle", "export", "-o", str(tmp_path / "no" / "b.tar.gz")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_bundle_without_subcommand_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle"]) == 2
    assert "export" in capsys.readouterr().err


def test_open_runs_the_tui_on_a_read_only_replay_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "b.tar.gz"
    export_bundle(str(target), standard_collectors(ExportSources(host=SimHost(frozen_at=5.0))))
    seen: dict[str, Any] = {}

    def run_tui(args: Any, host: Any = None) -> int:
        seen["host"], seen["readonly"] = host, args.readonly
        return 0

    fake_tui = types.ModuleType("grantscope.cli.tui")
    fake_tui.run_tui = run_tui  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "grantscope.cli.tui", fake_tui)
    assert main(["bundle", "open", str(target)]) == 0
    assert isinstance(seen["host"], ReplayHost) and seen["readonly"] is True
    assert seen["host"].info().backend == "replay"


def test_sim_host_round_trip_through_the_standard_collectors(tmp_path: Path) -> None:
    sim = SimHost(frozen_at=42.0)
    target = tmp_path / "sim.tar.gz"
    result = export_bundle(
        str(target), standard_collectors(ExportSources(host=sim, include_pages=True))
    )
    statuses = {c["name"]: c["status"] for c in result.manifest["collectors"]}
    for name in ("host", "xenstore", "grants", "events", "pages"):
        assert statuses[name] == "ok", result.manifest["collectors"]
    replay = ReplayHost.open(str(target))
    assert replay.grants() == sim.grants()
    assert replay.events() == sim.events()
    assert replay.xenstore_snapshot() == sim.xenstore_snapshot()
    assert list(replay.list("/local/domain")) == list(sim.list("/local/domain"))
    assert replay.pages() == sim.pages()
    for ref in sim.pages():
        assert replay.read_page(ref.key) == sim.read_page(ref.key)
    info = replay.info()
    assert info.readonly and info.backend == "replay" and info.domid == 0


def test_parse_xl_list() -> None:
    text = (
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
        "Domain-0                                     0  1024     2     r-----      12.3\n"
        "guest one                                    3   128     1     -b----       0.9\n"
    )
    assert parse_xl_list(text) == [
        {
            "name": "Domain-0",
            "domid": 0,
            "mem_mib": 1024,
            "vcpus": 2,
            "state": "r-----",
            "cpu_time_s": 12.3,
        },
        {
            "name": "guest one",
            "domid": 3,
            "mem_mib": 128,
            "vcpus": 1,
            "state": "-b----",
            "cpu_time_s": 0.9,
        },
    ]


def test_progress_lines_name_each_collector_and_its_outcome(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from grantscope.bundle.collect import CollectorResult
    from grantscope.cli.bundle import _progress_printer

    show = _progress_printer(True)
    show("start", "xenstore", 1, 3, None)
    show("done", "xenstore", 1, 3, CollectorResult("xenstore", "timeout", 2.5, 2.0, "too slow"))
    assert capsys.readouterr().err == "[2/3] xenstore ... timeout 2.50s (too slow)\n"
    quiet = _progress_printer(False)
    quiet("start", "x", 0, 1, None)
    assert capsys.readouterr().err == ""
