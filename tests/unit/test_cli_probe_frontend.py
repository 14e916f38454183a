"""map / offer / notify / pingpong as front-ends of the probe engine, and their --demo.

The commands run the probes map-grant, offer-page, notify and pingpong (one action, one
cleanup, one signal exception); with the global ``--demo`` they run them on the simulated
host's devices and say SIMULATED.  The no-Xen exit 2 without ``--demo`` is checked in
test_cli_devices.py.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from fake_devices import FakeDevices

import grantscope.host.sim as sim_mod
from grantscope.cli import grants as grants_cli
from grantscope.cli import main
from grantscope.host.sim import SimHost
from grantscope.host.sim_devices import SimEventChannel
from grantscope.model.histogram import summarize
from grantscope.probing import runner
from grantscope.probing.engine import ProbeInterrupted, ProbeRun
from grantscope.probing.registry import find_probe


@pytest.fixture()
def hosts(monkeypatch: pytest.MonkeyPatch) -> list[SimHost]:
    """Every simulated host a command makes, to look at it after the command."""
    made: list[SimHost] = []

    def factory(**kw: Any) -> SimHost:
        host = SimHost(**kw)
        made.append(host)
        return host

    monkeypatch.setattr(sim_mod, "SimHost", factory)
    return made


def _our_ports(host: SimHost) -> list[tuple[int, int]]:
    return [key for key, st in host.port_table.ports.items() if st.channel is not None]


# -- --demo: the simulated host, labelled --------------------------------------------------
def test_demo_map_reads_the_guests_page_and_says_simulated(
        hosts: list[SimHost], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "map", "--domid", "1", "--gref", "xs:/local/domain/1/data/gref"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIMULATED:")
    assert out[1].startswith("mapped domain 1 gref 20 (1 page, read-only)")
    assert "hello from d1 (s" in out[2]
    assert hosts[0].grant_table.entries[(1, 20)].mapped_by == set()  # unmapped again
    assert main(["--demo", "map", "--domid", "1", "--gref", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated"] is True and data["grefs"] == [20]
    assert bytes.fromhex(data["head"]).startswith(b"hello from d1")


def test_demo_map_failure_is_the_devices_failure(capsys: pytest.CaptureFixture[str]) -> None:
    # gref 30 of dom1 is granted to dom2: the simulated mmap fails with EINVAL, as Xen's does.
    assert main(["--demo", "map", "--domid", "1", "--gref", "30"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("SIMULATED:")
    assert "EINVAL" in captured.err and "Traceback" not in captured.err


def test_demo_offer_publishes_then_removes_exactly_its_nodes(
        hosts: list[SimHost], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "offer", "--to", "1", "--pages", "2", "--text", "hi", "--publish",
                 "/local/domain/0/data/x", "--wait", "0.05", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated"] is True and data["notified"] is False
    assert len(data["grefs"]) == 2 and bytes.fromhex(data["page_head"]).startswith(b"hi")
    host = hosts[0]
    assert not host.store.exists("/local/domain/0/data/x")
    assert host.store.exists("/local/domain/0/name")
    assert all((0, g) not in host.grant_table.entries for g in data["grefs"])  # ended
    assert _our_ports(host) == []


def test_demo_offer_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "offer", "--to", "1", "--wait", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIMULATED:")
    assert out[1].startswith("offered 1 page(s) to domain 1: gref ")
    assert out[2] == "no notification; first 64 bytes of the page now:"


def test_demo_notify_gets_the_guests_answer(hosts: list[SimHost],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "notify", "--domid", "1", "--port", "xs:/local/domain/1/data/port",
                 "--wait", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIMULATED:")
    assert out[1].startswith("notified domain 1 port 1 (local port ")
    assert out[2].startswith("notified back after ")
    assert main(["--demo", "notify", "--domid", "1", "--port", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated"] is True and data["notified_back"] is None
    assert all(_our_ports(h) == [] for h in hosts)


def test_demo_pingpong_times_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "1", "--count", "7",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated"] is True and data["count"] == 7
    assert data["min_us"] <= data["p50_us"] <= data["p99_us"] <= data["max_us"]
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "1", "--count", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SIMULATED:") and out[1].startswith("7 round trips with domain 1")


def test_demo_wrong_port_fails_like_a_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "9", "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert "bind interdomain to d1 port 9 failed" in err["message"]


@pytest.mark.parametrize("argv", [
    ["offer", "--to", "1"],
    ["map", "--domid", "1", "--gref", "20", "--writable"],
    ["notify", "--domid", "1", "--port", "1"],
    ["pingpong", "--domid", "1", "--port", "1"],
])
def test_demo_readonly_refuses_what_changes_state(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--readonly", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grantscope: refused:") and "--readonly" in err


def test_demo_readonly_map_read_only_is_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--readonly", "map", "--domid", "1", "--gref", "20"]) == 0


# -- one signal semantics ------------------------------------------------------------------
@pytest.mark.parametrize("exc,code,name", [
    (KeyboardInterrupt(), 130, "SIGINT"),
    (ProbeInterrupted(signal.SIGTERM), 143, "SIGTERM"),
    (ProbeInterrupted("SIGHUP"), 129, "SIGHUP"),
])
def test_pingpong_interrupted_unbinds_and_exits_128_plus_n(
        exc: BaseException, code: int, name: str, hosts: list[SimHost],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(self: SimEventChannel, timeout: float) -> list[int]:
        raise exc

    monkeypatch.setattr(SimEventChannel, "wait", interrupted)
    assert main(["--demo", "pingpong", "--domid", "1", "--port", "1"]) == code
    assert f"pingpong interrupted by {name}" in capsys.readouterr().err
    assert _our_ports(hosts[0]) == []


def test_one_interrupt_and_one_exit_status_for_every_front_end() -> None:
    stop = ProbeInterrupted(15)
    assert (stop.signum, str(stop)) == (15, "SIGTERM")
    assert runner.interrupt_code(ProbeInterrupted("SIGHUP")) == 129
    assert runner.interrupt_code(KeyboardInterrupt()) == 130
    assert runner.interrupt_name(stop) == "SIGTERM"
    assert not hasattr(grants_cli, "Stop") and not hasattr(grants_cli, "sigterm_as_stop")


# -- the probes carry what the commands need -----------------------------------------------
def test_offer_page_publishes_every_gref_space_separated() -> None:
    devices = SimHost().devices()
    assert devices is not None
    run = ProbeRun(find_probe("offer-page"), {"domid": "1", "pages": "3", "publish": "/p",
                                              "hold": "0"}, devices)
    with run:
        run.run_all()
    assert run.ok
    published = next(r for r in run.records if r.name == "publish in XenStore")
    grefs = " ".join(str(g) for g in run.state["grefs"])
    assert published.arguments["/p/gref"] == grefs and len(grefs.split()) == 3
    assert not devices.xenstore().exists("/p")


def test_offer_page_hold_zero_counts_what_is_pending() -> None:
    devices = FakeDevices(self_domid=0)
    run = ProbeRun(find_probe("offer-page"), {"domid": "2", "hold": "0"}, devices)
    with run:
        run.run_all()
    assert run.ok and run.state["events"] == 0
    assert "hold the offer for the peer" in run.step_names


def test_notify_probe_waits_for_the_answer_when_asked() -> None:
    devices = FakeDevices(echo_domid=4)
    run = ProbeRun(find_probe("notify"), {"domid": "4", "port": "7", "wait": "1"}, devices)
    with run:
        run.run_all()
    assert run.ok, [r.explanation for r in run.records]
    assert run.records[-2].name == "wait for the event on this domain back"  # then cleanup
    silent = FakeDevices(echo_domid=4)
    run = ProbeRun(find_probe("notify"), {"domid": "4", "port": "7", "wait": "0.05"}, silent)
    with run:
        run.run_next()
        silent.echo_domid = None  # the peer stops answering
        run.run_all()
    assert run.failed and "no event on port" in run.records[3].explanation


def test_pingpong_probe_warmup_is_untimed_and_stats_are_the_one_summary() -> None:
    devices = FakeDevices(self_domid=0, store={"domid": b"0"})
    run = ProbeRun(find_probe("pingpong"), {"count": "4", "warmup": "3"}, devices)
    with run:
        run.run_all()
    assert run.ok
    assert len(run.state["samples_us"]) == 4
    assert devices.call_names().count("notify") == 2 * 7  # ping and loopback echo, 3+4 times
    stats = next(r for r in run.records if r.name == "ping-pong").result
    summary = summarize(run.state["samples_us"])
    assert stats["median_us"] == summary["p50_us"] and stats["p99_us"] == summary["p99_us"]
    assert stats["round_trips"] == 4


def test_typed_values_from_a_front_end_are_taken_as_given() -> None:
    run = ProbeRun(find_probe("map-grant"), {"domid": 1, "gref": [8, 9], "writable": False,
                                             "reply": ""}, FakeDevices(gntst={(1, 8): 0}))
    assert run.values["gref"] == [8, 9]
    with run:
        run.run_all()
    assert run.records[0].arguments["grefs"] == [8, 9]
