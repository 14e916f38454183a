"""One scrape of a host: the grant sizes, the partial XenStore read and sources down.

The host is made of doubles: the XenStore wire-protocol double (tests/unit/xsd_double.py),
a privcmd stand-in answering GNTTABOP_query_size, a fake ``xenstore-control`` on PATH
(printing output recorded in the lab), and the procfs readers pointed at fixture text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from xsd_double import CONTROL, XsdDouble, running_double

from grantscope.errors import GrantscopeError
from grantscope.metrics import collect as collect_mod
from grantscope.metrics.collect import collect_reading, read_domains_xenstore
from grantscope.model.gnttab_size import GrantFrames
from grantscope.sources import gnttab_size, procfs
from grantscope.sources.gnttab_size import read_grant_frames
from grantscope.xen.privcmd import Privcmd
from grantscope.xen.xenstore import XenStore

LAB = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17"

class FakePrivcmd:
    """GNTTABOP_query_size as dom0 would answer it for d0 and d7 (no d9: it has gone)."""

    SIZES: ClassVar[dict[int, tuple[int, int]]] = {0: (4, 64), 7: (30, 32)}

    def __init__(self, asked: list[int]) -> None:
        self.asked = asked

    def query_size(self, domid: int) -> tuple[int, int]:
        self.asked.append(domid)
        if domid not in self.SIZES:
            raise GrantscopeError(f"GNTTABOP_query_size(domid={domid}) failed: "
                                  "GNTST_bad_domain")
        return self.SIZES[domid]

    def __enter__(self) -> FakePrivcmd:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


LOGGING_TOOL = """#!{python}
import os, sys
with open(os.path.join(os.path.dirname(__file__), "argv.log"), "a") as log:
    log.write("{name} " + " ".join(sys.argv[1:]) + "\\n")
sys.exit(1)
"""


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The privcmd stand-in, and on PATH only Xen tools that log being run: a scrape must
    start no process at all (argv.log stays empty)."""
    asked: list[int] = []
    monkeypatch.setattr(gnttab_size, "_open_privcmd", lambda: FakePrivcmd(asked))
    (tmp_path / "argv.log").write_text("")
    for name in ("xl", "xen-diag", "xenstore-control"):
        _script(tmp_path / name, LOGGING_TOOL.format(python=sys.executable, name=name))
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_grant_frames_per_domain_through_privcmd(tools: Path) -> None:
    asked: list[int] = []
    sizes, problems = read_grant_frames([0, 7, 9], open_privcmd=lambda: FakePrivcmd(asked))
    assert sizes == (GrantFrames(0, 4, 64), GrantFrames(7, 30, 32))
    assert len(problems) == 1 and problems[0].startswith("grant frames of d9: ")
    assert "GNTST_bad_domain" in problems[0]
    assert asked == [0, 7, 9]  # one hypercall each, in this process


def test_grant_frames_without_privcmd_say_so_once(tmp_path: Path) -> None:
    sizes, problems = read_grant_frames(
        [0, 1, 2], open_privcmd=lambda: Privcmd(str(tmp_path / "privcmd")))
    assert sizes == () and len(problems) == 1
    assert problems[0].startswith("grant frames: not running on Xen")


@pytest.fixture
def xsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[XsdDouble]:
    with running_double() as double:
        be = "/local/domain/0/backend/vif/7/0"
        double.put("/local/domain/0/name", b"Domain-0")
        double.put(f"{be}/frontend", b"/local/domain/7/device/vif/0")
        double.put(f"{be}/state", b"4")
        double.put("/local/domain/7/name", b"guest7")
        double.put("/local/domain/7/device/vif/0/backend", be.encode())
        double.put("/local/domain/7/device/vif/0/backend-id", b"0")
        double.put("/local/domain/7/device/vif/0/state", b"4")
        for i in range(50):  # what a scrape must not read: data the guest keeps
            double.put(f"/local/domain/7/data/k{i}", b"x" * 100)
        double.put("/vm/uuid/name", b"guest7")
        # C xenstored 4.17's answers to CONTROL quota, as recorded in the lab.
        double.control[("quota",)] = (LAB / "xenstore-control-quota.txt").read_bytes()
        usage = (LAB / "xenstore-control-quota-0.txt").read_text()
        for domid in ("0", "7"):
            double.control[("quota", domid)] = usage.replace(
                "Domain 0:", f"Domain {domid}:").encode()
        monkeypatch.setenv("XENSTORED_PATH", double.socket_path)
        yield double


def test_xenstore_read_is_per_domain_and_never_the_whole_tree(xsd: XsdDouble) -> None:
    with XenStore.open() as store:
        domains, snap = read_domains_xenstore(store)
    assert domains == {0: "Domain-0", 7: "guest7"}
    asked = [path for _op, path in xsd.requests]
    assert not any("/data" in p or p.startswith("/vm") for p in asked)  # never read
    roots = {f"/local/domain/{d}/{sub}" for d in (0, 7) for sub in ("device", "backend")}
    assert roots <= set(asked)  # each home's two subtrees, and below them only
    assert all(any(p == r or p.startswith(r + "/") for r in roots)
               for p in asked if p.count("/") > 3 and not p.endswith("/name"))
    assert not any("/data/" in p or p.startswith("/vm") for p in snap)
    assert snap["/local/domain/7/device/vif/0/state"] == b"4"
    assert snap["/local/domain/0/backend/vif/7/0/state"] == b"4"


def test_only_the_keys_the_join_uses_are_read_and_the_devices_join_as_from_a_full_walk(
        xsd: XsdDouble) -> None:
    from grantscope.model.devices_join import join_devices

    for k in ("mac", "bridge", "script", "hotplug-status"):  # keys a scrape has no use for
        xsd.put(f"/local/domain/0/backend/vif/7/0/{k}", b"x")
    xsd.put("/local/domain/7/device/vbd/768/state", b"3")   # a frontend with no backend dir
    xsd.put("/local/domain/7/device/vbd/768/backend", b"/local/domain/0/backend/vbd/7/768")
    xsd.put("/local/domain/0/backend/qdisk/9/51712/state", b"5")  # a backend with no frontend
    xsd.put("/local/domain/0/backend/qdisk/9/51712/frontend",
            b"/local/domain/9/device/vbd/51712")
    with XenStore.open() as store:
        _domains, snap = read_domains_xenstore(store)
        asked = {path for _op, path in xsd.requests}
        full = {n.path: n.value for n in store.walk("/local/domain")}  # to compare with
    assert not any(p.endswith(("/mac", "/bridge", "/script", "/hotplug-status")) for p in asked)
    # Both ends there: neither end's pointer to the other is read.
    assert "/local/domain/7/device/vif/0/backend" not in asked
    assert "/local/domain/0/backend/vif/7/0/frontend" not in asked
    # One end only: its pointer is read, as the join needs it.
    assert "/local/domain/7/device/vbd/768/backend" in asked
    assert "/local/domain/0/backend/qdisk/9/51712/frontend" in asked
    rows = join_devices(snap, None, None)
    full_rows = join_devices(full, None, None)
    assert [(r.kind, r.frontend_domid, r.devid, r.backend_domid, r.frontend_path,
             r.backend_path, r.frontend_state, r.backend_state) for r in rows] == [
        (r.kind, r.frontend_domid, r.devid, r.backend_domid, r.frontend_path, r.backend_path,
         r.frontend_state, r.backend_state) for r in full_rows]
    assert len(rows) == 3


def test_the_domains_are_read_in_one_pipeline_not_one_round_trip_each(
        xsd: XsdDouble) -> None:
    for d in range(100, 160):  # 60 more homes, each with a device
        xsd.put(f"/local/domain/{d}/name", f"g{d}".encode())
        xsd.put(f"/local/domain/{d}/device/vbd/51712/state", b"4")
    with XenStore.open() as store:
        domains, _snap = read_domains_xenstore(store)
    assert len(domains) == 62
    # Requests went out in batches: the deepest pipeline held far more than one per domain.
    assert xsd.max_batch >= 60, xsd.max_batch


def _fixture_procfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    dev = sysfs / "vif-7-0"
    (dev / "xenbus").mkdir(parents=True)
    (dev / "nodename").write_text("backend/vif/7/0\n")
    for name, v in (("events", 900), ("spurious_events", 12), ("jiffies_eoi_delayed", 0),
                    ("event_channels", 2), ("spurious_threshold", 1)):
        (dev / "xenbus" / name).write_text(f"{v}\n")
    monkeypatch.setattr(procfs, "read_xenbus_counters", lambda: _orig_counters((str(sysfs),)))
    monkeypatch.setattr(procfs, "read_interrupts",
                        lambda: _orig_interrupts(str(LAB / "interrupts-1.txt")))
    monkeypatch.setattr(procfs, "xen_device_holders", lambda: ())


_orig_counters = procfs.read_xenbus_counters
_orig_interrupts = procfs.read_interrupts


def test_a_scrape_of_a_dom0_reads_every_source(xsd: XsdDouble, tools: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fixture_procfs(monkeypatch, tmp_path)
    monkeypatch.setattr("grantscope.sources.observation.local_domid", lambda _store: 0)
    r = collect_reading()
    assert {s.name: s.up for s in r.sources} == dict.fromkeys(
        ("xenstore", "grant_frames", "xenstore_quota", "xenbus_counters", "interrupts",
         "device_holders"), True)
    assert r.domains == {0: "Domain-0", 7: "guest7"}
    assert r.grant_sizes == (GrantFrames(0, 4, 64), GrantFrames(7, 30, 32))
    assert r.quota is not None and [u.domid for u in r.quota.usage] == [0, 7]
    assert r.quota.limits["nodes"] == 1000 and r.quota.limits_source == "xenstored"
    assert r.devices is not None and [(d.kind, d.frontend_domid) for d in r.devices] == \
        [("vif", 7)]
    assert r.devices[0].counters and r.devices[0].counters[0].spurious_events == 12
    assert r.interrupts is not None and r.interrupts.rows
    assert [(f.code, f.subject) for f in r.findings] == [("grant-frames", {"domid": 7})]
    # No process ran: nothing that sends a debug key or reads the console, no tool per domain.
    assert (tools / "argv.log").read_text() == ""
    assert (CONTROL, "quota") in xsd.requests


def test_sources_that_fail_are_down_with_the_reason(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no xenstore-control
    monkeypatch.setattr(gnttab_size, "_open_privcmd",
                        lambda: Privcmd(str(tmp_path / "no-privcmd")))
    monkeypatch.setenv("XENSTORED_PATH", str(tmp_path / "no-xenstored"))
    monkeypatch.setattr("grantscope.sources.observation.local_domid", lambda _store: 0)
    monkeypatch.setattr(procfs, "read_interrupts", lambda: "/proc/interrupts could not be read")
    r = collect_reading()
    status = {s.name: s for s in r.sources}
    assert not status["xenstore"].up and status["xenstore"].why
    assert not status["grant_frames"].up and "not running on Xen" in status["grant_frames"].why
    assert not status["xenstore_quota"].up
    assert "cannot connect to XenStore" in status["xenstore_quota"].why
    assert not status["interrupts"].up and "could not be read" in status["interrupts"].why
    assert r.grant_sizes is None and r.quota is None and r.devices is None
    assert r.interrupts is None and r.findings == ()


def test_no_domain_known_is_down_not_an_empty_up(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XENSTORED_PATH", str(tmp_path / "no-xenstored"))
    monkeypatch.setattr("grantscope.sources.observation.local_domid", lambda _store: None)
    status = {s.name: s for s in collect_mod.collect_reading().sources}
    assert not status["grant_frames"].up and status["grant_frames"].why == \
        "no domain to ask about"


def test_a_source_that_raises_unexpectedly_is_down_and_the_rest_still_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XENSTORED_PATH", str(tmp_path / "no-xenstored"))
    monkeypatch.setattr("grantscope.sources.observation.local_domid", lambda _store: 0)

    def broken() -> object:
        raise ValueError("unexpected sysfs content")

    monkeypatch.setattr(procfs, "read_xenbus_counters", broken)
    monkeypatch.setattr(procfs, "read_interrupts",
                        lambda: _orig_interrupts(str(LAB / "interrupts-1.txt")))
    r = collect_reading()
    status = {s.name: s for s in r.sources}
    assert not status["xenbus_counters"].up
    assert status["xenbus_counters"].why == "ValueError: unexpected sysfs content"
    assert status["interrupts"].up and r.interrupts is not None and r.counters is None
