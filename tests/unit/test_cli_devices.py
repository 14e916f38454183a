"""doctor / map / offer / notify / pingpong without Xen: parsing, exit codes, JSON shapes.

The device objects are replaced by small fakes where a JSON shape or the cleanup
order is under test; real behaviour is proven by tests/xen/test_cli_devices.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from grantscope.cli import events as events_cli
from grantscope.cli import grants as grants_cli
from grantscope.cli import main
from grantscope.probing.records import ProbeInterrupted
from grantscope.sources import doctor
from grantscope.xen import errors as xen_errors

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
ON_XEN = os.path.exists("/sys/hypervisor/type") or os.path.exists("/proc/xen/capabilities")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, timeout=60)


# -- the real processes on this (non-Xen) machine ------------------------------------------
@pytest.mark.skipif(ON_XEN, reason="checks the no-Xen path; this machine runs on Xen")
@pytest.mark.parametrize("argv", [
    ["map", "--domid", "0", "--gref", "8"],
    ["map", "--domid", "xs:/local/domain/0/x", "--gref", "8", "--count", "2", "--ro"],
    ["offer", "--to", "0", "--pages", "2", "--writable", "--text", "hi", "--wait", "1"],
    ["notify", "--domid", "0", "--port", "5", "--wait", "1"],
    ["pingpong", "--domid", "0", "--port", "5", "--count", "3"],
])
def test_no_xen_exits_2_with_explanation(argv: list[str]) -> None:
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "not running on Xen" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(*argv, "--json")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    assert set(data["error"]) >= {"errno", "call", "explanation", "gnttab_status"}
    assert data["error"]["gnttab_status"] is None


@pytest.mark.skipif(ON_XEN, reason="checks the no-Xen path; this machine runs on Xen")
def test_doctor_here_reports_not_a_xen_host() -> None:
    proc = run_cli("doctor")
    assert proc.returncode == 2  # no Xen: a refusal, as for every device command
    assert "not a Xen host" in proc.stdout
    data = json.loads(run_cli("doctor", "--json").stdout)
    assert data["ok"] is False and data["xen"] is False
    assert data["checks"][0]["summary"] == "not a Xen host"


@pytest.mark.parametrize("argv,needle", [
    (["map", "--domid", "zero", "--gref", "8"], "--domid: 'zero' is not a number"),
    (["map", "--domid", "0", "--gref", "xs:"], "'xs:' needs a XenStore path"),
    (["offer", "--to", "1", "--publish", " "], "--publish needs a XenStore path"),
    (["offer", "--to", "1", "--text", "x" * 5000], "more than 1 page(s) hold"),
    (["notify", "--domid", "0", "--port", "-3"], "'-3' is not a number"),
])
def test_bad_values_exit_2_before_touching_xen(argv: list[str], needle: str) -> None:
    proc = run_cli(*argv)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [
    ["map", "--domid", "0"],
    ["map", "--domid", "0", "--gref", "8", "--count", "0"],
    ["offer"],
    ["offer", "--to", "0", "--wait", "-1"],
    ["offer", "--to", "0", "--pages", "x"],
    ["pingpong", "--domid", "0", "--port", "1", "--warmup", "-1"],
    ["notify", "--domid", "0", "--port", "1", "--wait", "soon"],
])
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "grantscope: error:" in capsys.readouterr().err


def test_commands_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("doctor", "map", "offer", "notify", "pingpong"):
        assert name in out


# -- helpers -----------------------------------------------------------------------------
def test_hexdump_shape() -> None:
    text = grants_cli.hexdump(b"hello\x00\x01" + bytes(range(0x41, 0x41 + 20)))
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("  0000  68 65 6c 6c 6f 00 01 41")
    assert lines[0].endswith("hello..ABCDEFGHI")
    assert lines[1].startswith("  0010  ")


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert events_cli.percentile(values, 50) == 50
    assert events_cli.percentile(values, 99) == 99
    assert events_cli.percentile([7.0], 99) == 7
    stats = events_cli.summarize([30.0, 10.0, 20.0])
    assert stats == {"count": 3, "min_us": 10.0, "p50_us": 20.0, "p99_us": 30.0,
                     "max_us": 30.0}
    with pytest.raises(ValueError):
        events_cli.percentile([], 50)


# -- fakes for the JSON shapes -----------------------------------------------------------
class FakeStore:
    def __init__(self, nodes: dict[str, bytes] | None = None) -> None:
        self.nodes = dict(nodes or {})
        self.log: list[tuple[str, str]] = []
        self.closed = False

    def read_or_none(self, path: str) -> bytes | None:
        return self.nodes.get(path)

    def exists(self, path: str) -> bool:
        return any(p == path or p.startswith(path + "/") for p in self.nodes)

    def write(self, path: str, value: bytes) -> None:
        self.log.append(("write", path))
        self.nodes[path] = value

    def list(self, path: str) -> list[str]:
        return sorted({p[len(path) + 1:].split("/")[0] for p in self.nodes
                       if p.startswith(path + "/")})

    def rm(self, path: str) -> None:
        self.log.append(("rm", path))
        for p in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[p]

    def close(self) -> None:
        self.closed = True


class FakeMapping:
    made: ClassVar[list[tuple[int, tuple[int, ...], bool]]] = []

    def __init__(self, domid: int, grefs: Any, *, writable: bool = True) -> None:
        FakeMapping.made.append((domid, tuple(grefs), writable))

    def __enter__(self) -> FakeMapping:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        return b"\xab" * (length or 0)


class FakeOffer:
    instances: ClassVar[list[FakeOffer]] = []

    def __init__(self, domid: int, pages: int = 1, *, writable: bool = False) -> None:
        self.domid, self.writable = domid, writable
        self.grefs = tuple(range(100, 100 + pages))
        self.data = bytearray(4096 * pages)
        self.closed = False
        FakeOffer.instances.append(self)

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset:offset + len(data)] = data

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        return bytes(self.data[offset:offset + (length or 0)])

    def close(self) -> None:
        self.closed = True


class FakeChannel:
    instances: ClassVar[list[FakeChannel]] = []
    script: ClassVar[list[list[int]]] = []

    def __init__(self) -> None:
        self.notified: list[int] = []
        self.closed = False
        FakeChannel.instances.append(self)

    def bind_unbound(self, domid: int) -> int:
        return 33

    def bind_interdomain(self, domid: int, port: int) -> int:
        return 44

    def notify(self, port: int) -> None:
        self.notified.append(port)

    def wait(self, timeout: float) -> list[int]:
        return FakeChannel.script.pop(0) if FakeChannel.script else []

    def drain(self) -> list[int]:
        return []

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture()
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    import grantscope.xen.evtchn as evtchn_mod
    import grantscope.xen.gntalloc as gntalloc_mod
    import grantscope.xen.gntdev as gntdev_mod

    store = FakeStore({"/peer/gref": b"8 9 10\n", "/peer/domid": b"3", "/peer/port": b"17"})
    monkeypatch.setattr(xen_errors, "require_xen", lambda root="/", **_kw: None)
    monkeypatch.setattr(gntdev_mod, "GrantMapping", FakeMapping)
    monkeypatch.setattr(gntalloc_mod, "GrantOffer", FakeOffer)
    monkeypatch.setattr(evtchn_mod, "EventChannel", FakeChannel)
    monkeypatch.setattr(grants_cli.Specs, "store", lambda self: store)
    FakeMapping.made.clear()
    FakeOffer.instances.clear()
    FakeChannel.instances.clear()
    FakeChannel.script = []
    return store


def test_map_json_shape_and_xs_grefs(fakes: FakeStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--domid", "xs:/peer/domid", "--gref", "xs:/peer/gref", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"ok": True, "domid": 3, "grefs": [8, 9, 10], "writable": False,
                    "head": "ab" * 64}
    assert FakeMapping.made == [(3, (8, 9, 10), False)]  # read-only unless --writable


def test_map_writable_on_request(fakes: FakeStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--domid", "1", "--gref", "5", "--writable"]) == 0
    assert FakeMapping.made == [(1, (5,), True)] and "writable" in capsys.readouterr().out


def test_map_old_readonly_spelling_is_refused_with_a_hint(
        fakes: FakeStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--domid", "1", "--gref", "5", "--readonly"]) == 2
    err = capsys.readouterr().err
    assert "renamed 'map --ro'" in err and "grantscope --readonly map" in err
    assert FakeMapping.made == []


def test_offer_then_map_defaults_agree(fakes: FakeStore,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """offer grants read-only by default and map maps read-only by default."""
    assert main(["offer", "--to", "1"]) == 0
    assert main(["map", "--domid", "0", "--gref", "100"]) == 0
    assert FakeOffer.instances[0].writable is False and FakeMapping.made[0][2] is False


def test_map_count_maps_consecutive_refs(fakes: FakeStore,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--domid", "1", "--gref", "20", "--count", "3", "--ro"]) == 0
    assert FakeMapping.made == [(1, (20, 21, 22), False)]
    out = capsys.readouterr().out
    assert "gref 20 21 22" in out and "read-only" in out and "0000  ab ab" in out


def test_map_xs_value_not_decimal_is_usage_error(fakes: FakeStore,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fakes.nodes["/peer/bad"] = b"0x10"
    assert main(["map", "--domid", "0", "--gref", "xs:/peer/bad"]) == 2
    assert "not a decimal number" in capsys.readouterr().err


def test_map_reserved_domid_reaches_the_map(fakes: FakeStore,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # DOMID_SELF is not refused as "above the largest domid": the map's failure explains it
    # (test_map_reserved_domid_failure_names_domid_self covers that explanation).
    assert main(["map", "--domid", "32752", "--gref", "1"]) == 0
    assert FakeMapping.made == [(32752, (1,), False)]
    assert main(["map", "--domid", "65536", "--gref", "1"]) == 2
    assert "above the largest domid (65535)" in capsys.readouterr().err


def test_map_reserved_domid_failure_names_domid_self(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The real GrantMapping's failure path, with the device calls answering as Xen 4.17 does."""
    import errno

    import grantscope.xen.gntdev as gntdev_mod

    monkeypatch.setattr(xen_errors, "require_xen", lambda root="/", **_kw: None)
    monkeypatch.setattr(gntdev_mod, "open_device", lambda path, **kw: os.open("/dev/null", 0))
    monkeypatch.setattr(gntdev_mod.GrantMapping, "_unmap_ioctl", lambda self: None)
    # the Python path, whose syscalls are patched here (test_gntdev_map.py holds both alike)
    monkeypatch.setattr(gntdev_mod, "_c_map", None)
    monkeypatch.setattr(gntdev_mod, "_c_unmap", None)

    def ioctl(fd: int, request: int, arg: Any, *rest: Any) -> int:
        return 0  # MAP_GRANT_REF records the refs; GRANT_COPY leaves status 0

    def mapped(*args: Any, **kw: Any) -> Any:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(gntdev_mod.fcntl, "ioctl", ioctl)
    monkeypatch.setattr(gntdev_mod, "MappedPages", mapped)
    assert main(["map", "--domid", "32752", "--gref", "1"]) == 1
    err = capsys.readouterr().err
    assert "DOMID_SELF" in err and "real id" in err


def test_offer_publishes_waits_reports_and_removes(fakes: FakeStore,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    FakeChannel.script = [[33]]
    rc = main(["offer", "--to", "xs:/peer/domid", "--pages", "2", "--writable", "--text", "hi",
               "--publish", "/local/domain/0/data/x", "--wait", "5", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["notified"] is True
    assert data["grefs"] == [100, 101] and data["port"] == 33 and data["domid"] == 3
    assert bytes.fromhex(data["page_head"]).startswith(b"hi")
    assert len(data["page_head"]) == 128
    assert ("write", "/local/domain/0/data/x/gref") in fakes.log
    assert ("write", "/local/domain/0/data/x/port") in fakes.log
    # Exactly the two nodes written are removed, newest first.
    assert fakes.log[-2:] == [("rm", "/local/domain/0/data/x/port"),
                              ("rm", "/local/domain/0/data/x/gref")]
    assert not any(p.startswith("/local/domain/0/data/x") for p in fakes.nodes)
    assert FakeOffer.instances[0].closed and FakeChannel.instances[0].closed
    assert FakeOffer.instances[0].writable is True


def test_offer_keeps_a_base_that_existed(fakes: FakeStore,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fakes.nodes["/base/other"] = b"keep"
    assert main(["offer", "--to", "1", "--publish", "/base", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["notified"] is False
    assert fakes.nodes == {"/peer/gref": b"8 9 10\n", "/peer/domid": b"3",
                           "/peer/port": b"17", "/base/other": b"keep"}


def test_offer_cleanup_leaves_a_sibling_written_meanwhile(
        fakes: FakeStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Someone else writes into the directory the offer created, while the offer waits.
    def wait(self: FakeChannel, timeout: float) -> list[int]:
        fakes.nodes["/new/dir/peer-answer"] = b"42"
        return []

    monkeypatch.setattr(FakeChannel, "wait", wait)
    assert main(["offer", "--to", "1", "--publish", "/new/dir", "--wait", "1", "--json"]) == 0
    assert fakes.nodes["/new/dir/peer-answer"] == b"42"
    assert "/new/dir/gref" not in fakes.nodes and "/new/dir/port" not in fakes.nodes
    assert ("rm", "/new/dir") not in fakes.log and ("rm", "/new") not in fakes.log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_offer_signal_runs_the_same_cleanup(
        sig: signal.Signals, fakes: FakeStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def killed(self: FakeChannel, timeout: float) -> list[int]:
        os.kill(os.getpid(), sig)  # the handler raises at the next bytecode
        return []

    monkeypatch.setattr(FakeChannel, "wait", killed)
    rc = main(["offer", "--to", "1", "--publish", "/pub", "--wait", "5", "--json"])
    assert rc == 128 + sig.value
    assert json.loads(capsys.readouterr().out)["interrupted"] == sig.name
    assert not any(p.startswith("/pub") for p in fakes.nodes)
    assert FakeOffer.instances[0].closed and FakeChannel.instances[0].closed


def test_offer_echo_answers_each_notification(fakes: FakeStore,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    FakeChannel.script = [[33], [33], [33]]
    assert main(["offer", "--to", "1", "--echo", "--wait", "0.3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["echoed"] == 3
    assert FakeChannel.instances[0].notified == [33, 33, 33]


def test_offer_interrupted_still_cleans_up(fakes: FakeStore, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(self: FakeChannel, timeout: float) -> list[int]:
        raise ProbeInterrupted(15)

    monkeypatch.setattr(FakeChannel, "wait", interrupted)
    rc = main(["offer", "--to", "1", "--publish", "/pub", "--wait", "5", "--json"])
    assert rc == 143
    data = json.loads(capsys.readouterr().out)
    assert data["interrupted"] == "SIGTERM"
    assert ("write", "/pub/gref") in fakes.log
    assert not any(p.startswith("/pub") for p in fakes.nodes)
    assert FakeOffer.instances[0].closed and FakeChannel.instances[0].closed


def test_notify_json_shape(fakes: FakeStore, capsys: pytest.CaptureFixture[str]) -> None:
    FakeChannel.script = [[44]]
    assert main(["notify", "--domid", "3", "--port", "xs:/peer/port", "--wait", "2",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["notified_back"] is True
    assert data["remote_port"] == 17 and data["local_port"] == 44
    assert data["roundtrip_us"] >= 0
    assert FakeChannel.instances[0].notified == [44]


def test_notify_without_wait_and_without_answer(fakes: FakeStore,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "--domid", "3", "--port", "17", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["notified_back"] is None and data["roundtrip_us"] is None
    assert main(["notify", "--domid", "3", "--port", "17", "--wait", "0.05", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["notified_back"] is False


def test_pingpong_json_shape(fakes: FakeStore, capsys: pytest.CaptureFixture[str]) -> None:
    FakeChannel.script = [[44]] * 12
    assert main(["pingpong", "--domid", "3", "--port", "17", "--count", "10", "--warmup", "2",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"ok", "domid", "remote_port", "local_port", "count", "min_us",
                         "p50_us", "p99_us", "max_us", "loop", "loop_note"}
    assert data["loop"] == "python"  # the fakes have no fd for the C loop
    assert data["count"] == 10
    assert data["min_us"] <= data["p50_us"] <= data["p99_us"] <= data["max_us"]
    assert len(FakeChannel.instances[0].notified) == 12


def test_pingpong_without_echo_fails_clearly(fakes: FakeStore,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pingpong", "--domid", "3", "--port", "17", "--timeout", "0.05",
                 "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert "no echo from domain 3 port 17" in err["message"]
    assert "--echo" in err["explanation"]


# -- doctor on a fake machine --------------------------------------------------------------
def _fake_xen(tmp_path: Path, *, dom0: bool = True) -> tuple[str, str]:
    root = tmp_path / "root"
    for rel, value in {
        "sys/hypervisor/type": "xen",
        "sys/hypervisor/guest_type": "PV",
        "sys/hypervisor/version/major": "4",
        "sys/hypervisor/version/minor": "17",
        "sys/hypervisor/version/extra": ".7",
        "proc/xen/capabilities": "control_d" if dom0 else "",
        "sys/module/xen_gntalloc/parameters/limit": "1024",
    }.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    (root / "sys/module/xen_gntdev").mkdir(parents=True)
    (root / "sys/module/xen_evtchn").mkdir(parents=True)
    dev = tmp_path / "dev"
    dev.mkdir()
    return str(root), str(dev)


def test_doctor_fake_xen_regular_files_are_not_devices(tmp_path: Path) -> None:
    root, dev = _fake_xen(tmp_path)
    for node in ("gntdev", "gntalloc", "evtchn"):
        (Path(dev) / node).write_text("")
    report = doctor.run_doctor(root, dev_dir=dev, open_store=lambda: FakeStore({"domid": b"0"}))
    by_name = {c.name: c for c in report.checks}
    assert report.xen and report.role == "dom0" and report.domid == 0
    assert report.xen_version == "4.17.7" and report.guest_type == "PV"
    assert by_name["device gntdev"].status == "fail"
    assert "not a character device" in by_name["device gntdev"].summary
    assert by_name["module xen-gntalloc"].detail == "limit=1024"
    assert by_name["xenstore"].status == "ok"
    assert not report.usable
    json.dumps(report.to_json())


def test_doctor_knows_dom0_from_start_flags_without_xenfs(tmp_path: Path) -> None:
    root, dev = _fake_xen(tmp_path)
    os.remove(os.path.join(root, "proc/xen/capabilities"))
    os.makedirs(os.path.join(root, "sys/hypervisor/start_flags"))
    Path(root, "sys/hypervisor/start_flags/initdomain").write_text("1\n")
    report = doctor.run_doctor(root, dev_dir=dev, open_store=lambda: FakeStore({}))
    assert report.role == "dom0" and report.domid == 0


def test_doctor_domu_reads_domid_from_xenstore(tmp_path: Path) -> None:
    root, dev = _fake_xen(tmp_path, dom0=False)
    shutil.rmtree(os.path.join(root, "sys/module/xen_gntalloc"))
    os.symlink("/dev/null", os.path.join(dev, "gntdev"))  # a real character device
    report = doctor.run_doctor(root, dev_dir=dev, open_store=lambda: FakeStore({"domid": b"5"}))
    by_name = {c.name: c for c in report.checks}
    assert report.role == "domU" and report.domid == 5
    assert by_name["device gntdev"].status == "ok"
    assert by_name["device gntalloc"].status == "fail"
    assert "modprobe xen-gntalloc" in by_name["device gntalloc"].detail
    assert by_name["module xen-gntalloc"].status == "fail"
    assert by_name["device xenbus"].status == "warn"  # optional node


def test_doctor_tolerates_xenstore_failures(tmp_path: Path) -> None:
    root, dev = _fake_xen(tmp_path)

    def missing() -> Any:
        raise ImportError("no module")

    def broken() -> Any:
        raise OSError("connection refused")

    r1 = doctor.run_doctor(root, dev_dir=dev, open_store=missing)
    r2 = doctor.run_doctor(root, dev_dir=dev, open_store=broken)
    assert {c.name: c for c in r1.checks}["xenstore"].summary.startswith("XenStore client not")
    c2 = {c.name: c for c in r2.checks}["xenstore"]
    assert c2.status == "fail" and "connection refused" in c2.detail
    assert r2.domid == 0  # dom0 by capabilities even without XenStore


def test_doctor_not_xen(tmp_path: Path) -> None:
    report = doctor.run_doctor(str(tmp_path), dev_dir=str(tmp_path / "dev"))
    assert not report.xen and not report.usable
    assert report.to_json()["checks"][0]["summary"] == "not a Xen host"


@pytest.mark.parametrize(("dom0", "guest_type"), [(True, "PV"), (False, "PV"), (False, "PVH"),
                                                  (False, "HVM")])
def test_doctor_says_what_the_domain_can_and_cannot_do(tmp_path: Path, dom0: bool,
                                                       guest_type: str) -> None:
    root, dev = _fake_xen(tmp_path, dom0=dom0)
    (Path(root) / "sys/hypervisor/guest_type").write_text(guest_type + "\n")
    report = doctor.run_doctor(root, dev_dir=dev,
                               open_store=lambda: FakeStore({"domid": b"0" if dom0 else b"4"}))
    can = {c.summary: c.detail for c in report.checks if c.name == "can"}
    cannot = {c.summary: c.detail for c in report.checks if c.name == "cannot"}
    tables = "read the hypervisor's grant and event tables"
    if dom0:
        assert tables in can and "xl debug-keys" in can[tables] and not cannot
    else:
        assert tables in cannot and "xl debug-keys" in cannot[tables]
        assert "read other domains' XenStore nodes" in cannot
    mapping = can["map other domains' grants (gntdev)"]
    assert ("ballooned" in mapping) == (guest_type != "PV")
    assert ("page-table" in mapping) == (guest_type == "PV")
    assert report.guest_type == guest_type


def test_map_of_its_own_grant_in_a_pvh_guest_is_refused_unless_forced(
        fakes: FakeStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from grantscope.xen import _host

    real_read = _host.read_text
    monkeypatch.setattr(_host, "read_text", lambda path, root="/": "PVH\n"
                        if path == "/sys/hypervisor/guest_type" else real_read(path, root))
    fakes.nodes["domid"] = b"4"
    assert main(["map", "--domid", "4", "--gref", "9"]) == 2
    err = capsys.readouterr().err
    assert "the grant is d4's, this domain's own, and this is a PVH guest" in err
    assert "hole" in err and "--force" in err
    assert FakeMapping.made == []
    assert main(["map", "--domid", "4", "--gref", "9", "--force"]) == 0
    assert main(["map", "--domid", "3", "--gref", "9"]) == 0  # another domain's grant
    assert FakeMapping.made == [(4, (9,), False), (3, (9,), False)]
