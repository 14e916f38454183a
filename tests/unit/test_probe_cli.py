"""`grantscope probe list|run`: parsing, output, exit codes, --step, --readonly, SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
from typing import Any

import pytest
from fake_devices import FakeDevices

import grantscope.probing.devices as devices_mod
from grantscope.cli import build_parser, main


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[FakeDevices]:
    """Make `probe run` use FakeDevices on a pretend Xen host; yields the devices made."""
    made: list[FakeDevices] = []

    def factory() -> FakeDevices:
        dev = FakeDevices(self_domid=0, store={"domid": b"0"})
        made.append(dev)
        return dev

    monkeypatch.setattr(devices_mod, "RealDevices", factory)
    monkeypatch.setattr(devices_mod, "require_devices", lambda needs: None)
    return made


def test_parser_accepts_the_documented_forms() -> None:
    parser = build_parser()
    args = parser.parse_args(["probe", "run", "map-grant", "domid=1", "gref=8", "--step", "--json"])
    assert (args.name, args.params, args.step, args.json) == ("map-grant", ["domid=1", "gref=8"],
                                                             True, True)
    args = parser.parse_args(["--readonly", "probe", "list", "--json"])
    assert args.readonly and args.json and args.run.__name__ == "run_list"


def test_list_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "list"]) == 0
    text = capsys.readouterr().out
    for name in ("map-grant", "offer-page", "notify", "pingpong", "explain-map",
                 "mailbox-loopback"):
        assert name in text
    assert "gref=GREF" in text and "refused" not in text
    assert main(["--readonly", "probe", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["readonly"]
    names = [p["name"] for p in data["probes"]]
    assert names[0] == "map-grant" and len(names) == 6
    first = data["probes"][0]
    assert first["refused_readonly"] is True
    assert first["params"][0] == {"name": "domid", "kind": "domid", "default": None,
                                  "help": first["params"][0]["help"]}


def test_readonly_list_marks_mutating_probes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--readonly", "probe", "list"]) == 0
    assert "refused with --readonly" in capsys.readouterr().out


def test_run_without_xen_exits_2_with_an_explanation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("grantscope.xen._host.is_xen_host", lambda root="/": False)
    assert main(["probe", "run", "map-grant", "domid=1", "gref=8"]) == 2
    err = capsys.readouterr().err
    assert "not running on Xen" in err and "Traceback" not in err
    assert "grantscope --demo probe run" in err
    assert main(["probe", "run", "pingpong", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "not running on Xen" in data["error"]["message"]


def test_missing_device_names_the_module(tmp_path: Any) -> None:
    (tmp_path / "dev/xen").mkdir(parents=True)
    (tmp_path / "dev/xen/evtchn").touch()
    with pytest.raises(devices_mod.NoXenError) as info:
        devices_mod.require_devices(("gntdev", "evtchn"), root=str(tmp_path))
    assert "/dev/xen/gntdev" in info.value.message and "xen-gntdev" in info.value.explanation
    assert "evtchn" not in info.value.message
    devices_mod.require_devices(("evtchn",), root=str(tmp_path))  # present: no error


@pytest.mark.parametrize(
    "argv",
    [["probe", "run", "nope"], ["probe", "run", "map-grant", "gref=8"],
     ["probe", "run", "map-grant", "domid=x", "gref=8"], ["probe", "run", "notify", "oops"]],
)
def test_bad_usage_exits_2(argv: list[str], fake: list[FakeDevices],
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert all(d.calls == [] for d in fake)


def test_readonly_run_of_a_mutating_probe_is_refused(
    fake: list[FakeDevices], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--readonly", "probe", "run", "mailbox-loopback"]) == 2
    assert "--readonly" in capsys.readouterr().err
    assert all(d.calls == [] for d in fake)


def test_run_prints_every_step_and_cleanup(
    fake: list[FakeDevices], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "run", "mailbox-loopback", "message=hey"]) == 0
    out = capsys.readouterr().out
    assert "[1/13] find this domain's id and the mailbox path: ok" in out
    assert "[13/13] remove the published keys: ok" in out
    assert "[cleanup] end the grant: ok" in out
    assert out.rstrip().endswith("probe mailbox-loopback: completed")
    assert fake[0].open_handles() == [] and fake[0].store.nodes == {"domid": b"0"}


def test_run_json_is_one_document(fake: list[FakeDevices],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "run", "map-grant", "domid=1", "gref=8", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["outcome"] == "failed"
    assert data["values"] == {"domid": 1, "gref": 8, "writable": False, "reply": "",
                              "force": False}
    assert [s["name"] for s in data["steps"]] == ["map the grant"]
    assert data["steps"][0]["errno_name"] == "EINVAL"
    assert data["not_run"] == ["read the mapped page"]


def test_step_mode_reads_a_line_per_step_and_q_stops(
    fake: list[FakeDevices], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n\nq\n"))
    assert main(["probe", "run", "mailbox-loopback", "--step"]) == 1
    out = capsys.readouterr().out
    assert out.count("Enter runs, q stops") == 4
    assert "[3/13] bind an unbound port: ok" in out and "[4/13]" not in out
    assert "stopped" in out and "not run: publish in XenStore" in out
    assert fake[0].open_handles() == []


def test_step_mode_end_of_input_stops_before_the_first_step(
    fake: list[FakeDevices], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["probe", "run", "pingpong", "--step", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == "stopped" and data["steps"] == [] and len(data["not_run"]) == 5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_during_a_step_runs_the_cleanup(
    sig: signal.Signals, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Killed(FakeDevices):
        def probe_grant_status(self, domid: int, gref: int) -> int:
            os.kill(os.getpid(), sig)  # the handler raises at the next bytecode
            return super().probe_grant_status(domid, gref)

    made: list[FakeDevices] = []

    def factory() -> FakeDevices:
        made.append(Killed(gntst={(1, 8): 0}, store={"domid": b"0"}))
        return made[-1]

    monkeypatch.setattr(devices_mod, "RealDevices", factory)
    monkeypatch.setattr(devices_mod, "require_devices", lambda needs: None)
    before = signal.getsignal(sig)
    rc = main(["probe", "run", "explain-map", "domid=1", "gref=8", "--json"])
    assert rc == 128 + sig.value
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == f"interrupted ({sig.name})"
    assert data["steps"][-1]["ok"] is False and sig.name in data["steps"][-1]["explanation"]
    assert [c["name"] for c in data["cleanup"]] == ["unmap the grant"]
    assert made[0].open_handles() == []
    assert signal.getsignal(sig) == before  # the handler is restored


def test_ctrl_c_runs_the_cleanup(fake: list[FakeDevices], monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(self: Any, port: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("fake_devices.FakeEventChannel.notify", interrupt)
    assert main(["probe", "run", "mailbox-loopback"]) == 130
    out = capsys.readouterr().out
    assert "[10/13] notify: FAILED" in out and "interrupted (Ctrl-C)" in out
    assert fake[0].open_handles() == [] and fake[0].store.nodes == {"domid": b"0"}


def test_explain_map_text_words_the_causes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devices_mod, "RealDevices",
                        lambda: FakeDevices(gntst={(1, 8): -2}, store={"domid": b"0"}))
    monkeypatch.setattr(devices_mod, "require_devices", lambda needs: None)
    assert main(["probe", "run", "explain-map", "domid=1", "gref=8"]) == 0
    out = capsys.readouterr().out
    assert "[2/4] map the grant: FAILED (EINVAL)" in out
    assert "Xen says status -2 (bad_domain)" in out
    assert "    - The domain id does not exist" in out
    assert "(more with --json)" in out and "causes=" not in out
