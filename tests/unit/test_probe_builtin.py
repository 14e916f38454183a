"""Every built-in probe's step list and behaviour against fake devices."""

from __future__ import annotations

from typing import Any

import pytest
from fake_devices import FakeDevices

from grantscope.errors import UsageError
from grantscope.probing.engine import ProbeRun, builtin_probes
from grantscope.probing.registry import find_probe
from grantscope.xen.gntstatus import GNTST

NAMES = ["map-grant", "offer-page", "notify", "pingpong", "explain-map", "mailbox-loopback"]


def _run(name: str, values: dict[str, str], devices: FakeDevices) -> ProbeRun:
    run = ProbeRun(find_probe(name), values, devices)
    with run:
        run.run_all()
    return run


def _steps(run: ProbeRun) -> list[Any]:
    return [r for r in run.records if r.phase == "step"]


def _cleanup(run: ProbeRun) -> list[Any]:
    return [r for r in run.records if r.phase == "cleanup"]


def test_builtin_probes_are_the_six_named_ones() -> None:
    probes = builtin_probes()
    assert [p.name for p in probes] == NAMES
    for probe in probes:
        assert probe.summary and probe.params and probe.needs
        assert len({p.name for p in probe.params}) == len(probe.params)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("map-grant", {"domid": "1", "gref": "8"}),
        ("offer-page", {"domid": "1", "publish": "/x", "hold": "0.01"}),
        ("notify", {"domid": "1", "port": "5"}),
        ("pingpong", {}),
        ("pingpong", {"domid": "1", "port": "5"}),
        ("explain-map", {"domid": "1", "gref": "8"}),
        ("mailbox-loopback", {}),
    ],
)
def test_declared_mutating_matches_the_steps(name: str, values: dict[str, str]) -> None:
    probe = find_probe(name)
    run = ProbeRun(probe, values, FakeDevices())
    assert probe.mutating == any(step.mutating for step in run.steps)


def test_map_grant_maps_reads_and_unmaps() -> None:
    devices = FakeDevices(gntst={(1, 8): 0})
    run = _run("map-grant", {"domid": "1", "gref": "8"}, devices)
    assert run.ok
    assert [r.name for r in _steps(run)] == ["map the grant", "read the mapped page"]
    assert _steps(run)[0].arguments == {"domid": 1, "grefs": [8], "writable": False}
    assert _steps(run)[1].result["bytes"] == 4096
    assert [r.name for r in _cleanup(run)] == ["unmap the grant"]
    assert devices.open_handles() == []


def test_map_grant_failure_points_at_explain_map_and_leaves_nothing() -> None:
    devices = FakeDevices(gntst={(1, 8): -1})
    run = _run("map-grant", {"domid": "1", "gref": "8"}, devices)
    (failed,) = _steps(run)
    assert not failed.ok and failed.errno_name == "EINVAL"
    assert "explain-map" in failed.explanation
    assert not run.ok and _cleanup(run) == [] and devices.open_handles() == []


def test_map_grant_with_xs_gref() -> None:
    devices = FakeDevices(gntst={(1, 8): 0}, store={"/local/domain/1/data/gref": b"8"})
    run = _run("map-grant", {"domid": "1", "gref": "xs:/local/domain/1/data/gref"}, devices)
    assert run.ok
    assert _steps(run)[0].name == "read gref from XenStore"
    assert ("map_grants", 1, (8,), False) in devices.calls


def test_offer_page_publishes_holds_reads_and_cleans_up() -> None:
    devices = FakeDevices(self_domid=0)
    run = _run("offer-page", {"domid": "2", "publish": "/local/domain/0/data/mbox",
                              "hold": "0.01", "message": "hi"}, devices)
    assert run.ok, [r.explanation for r in run.records]
    names = [r.name for r in _steps(run)]
    assert names == ["grant a page", "write the message into the offered page",
                     "bind an unbound port", "publish in XenStore",
                     "hold the offer for the peer", "read the offered page"]
    gref = _steps(run)[0].result["gref"]
    port = _steps(run)[2].result["port"]
    assert ("xs write", "/local/domain/0/data/mbox/gref", str(gref).encode()) in devices.calls
    assert ("xs write", "/local/domain/0/data/mbox/port", str(port).encode()) in devices.calls
    assert _steps(run)[-1].result["text"] == "hi"
    assert devices.store.nodes == {}  # the published keys are gone
    assert devices.open_handles() == []
    assert [r.name for r in _cleanup(run)] == [
        "remove the nodes written under /local/domain/0/data/mbox", "close event channel evtchn",
        "end the grant"]


def test_offer_page_cleanup_removes_only_its_own_nodes() -> None:
    """A sibling that was there before, or that a peer wrote meanwhile, stays."""
    devices = FakeDevices(self_domid=0, store={"/local/domain/0/data/mbox/keep": b"old"})
    run = ProbeRun(find_probe("offer-page"),
                   {"domid": "0", "publish": "/local/domain/0/data/mbox"}, devices)
    with run:
        run.run_next()
        run.run_next()
        run.run_next()
        run.run_next()  # publish
        devices.store.nodes["/local/domain/0/data/mbox/peer"] = b"answer"
        run.run_all()
    assert devices.store.nodes == {"/local/domain/0/data/mbox/keep": b"old",
                                   "/local/domain/0/data/mbox/peer": b"answer"}
    assert ("xs rm", "/local/domain/0/data/mbox") not in devices.calls


def test_offer_page_removes_the_directories_it_created_when_left_empty() -> None:
    devices = FakeDevices(self_domid=0, store={"/local/domain/0/name": b"Domain-0"})
    _run("offer-page", {"domid": "0", "publish": "/local/domain/0/data/new/dir"}, devices)
    assert devices.store.nodes == {"/local/domain/0/name": b"Domain-0"}


def test_offer_page_without_publish_or_hold_has_fewer_steps() -> None:
    run = ProbeRun(find_probe("offer-page"), {"domid": "2"}, FakeDevices())
    assert run.step_names == ["grant a page", "write the message into the offered page",
                              "bind an unbound port", "read the offered page"]


def test_notify_binds_drains_and_notifies_count_times() -> None:
    devices = FakeDevices(echo_domid=4)
    run = _run("notify", {"domid": "4", "port": "7", "count": "3"}, devices)
    assert run.ok
    assert [r.name for r in _steps(run)] == [
        "bind to the remote port", "drain the bind event", "notify"]
    local = _steps(run)[0].result["local_port"]
    assert [c for c in devices.calls if c[0] == "notify"] == [("notify", local)] * 3
    assert devices.open_handles() == []


def test_notify_rejects_count_zero() -> None:
    with pytest.raises(UsageError):
        ProbeRun(find_probe("notify"), {"domid": "4", "port": "7", "count": "0"}, FakeDevices())


def test_pingpong_loopback_times_round_trips() -> None:
    devices = FakeDevices(self_domid=0, store={"domid": b"0"})
    run = _run("pingpong", {"count": "5"}, devices)
    assert run.ok, [r.explanation for r in run.records]
    assert [r.name for r in _steps(run)] == [
        "find this domain's id (domid=self)", "bind an unbound port",
        "bind to the remote port", "drain the bind event", "ping-pong"]
    stats = _steps(run)[-1].result
    assert stats["round_trips"] == 5 and stats["min_us"] <= stats["median_us"] <= stats["max_us"]
    assert devices.open_handles() == []


def test_pingpong_against_a_silent_peer_fails_with_a_timeout() -> None:
    devices = FakeDevices(echo_domid=4)
    devices.echo_domid = 4
    run = ProbeRun(find_probe("pingpong"), {"domid": "4", "port": "7", "timeout": "0"}, devices)
    with run:
        run.run_next()
        run.run_next()
        devices.echo_domid = None  # the peer stops answering
        record = run.run_next()
    assert not record.ok and "no answer" in record.explanation
    assert devices.open_handles() == []


def test_pingpong_loopback_needs_domid_self() -> None:
    with pytest.raises(UsageError):
        ProbeRun(find_probe("pingpong"), {"domid": "3"}, FakeDevices())


@pytest.mark.parametrize("status", [-1, -2, -3, -8, -13])
def test_explain_map_explains_each_status(status: int) -> None:
    devices = FakeDevices(self_domid=0, gntst={(1, 8): status}, store={"domid": b"0"})
    run = _run("explain-map", {"domid": "1", "gref": "8"}, devices)
    assert run.ok  # the map attempt may fail: that is what the probe explains
    steps = _steps(run)
    assert [r.name for r in steps] == [
        "find this domain's id", "map the grant", "copy one byte with GRANT_COPY", "explain"]
    assert not steps[1].ok and steps[1].errno_name == "EINVAL"
    assert steps[2].result["status"] == status
    result = steps[3].result
    assert result["status_name"] == GNTST[status][0] and result["mapped"] is False
    assert result["causes"] and str(status) in result["diagnosis"]
    assert GNTST[status][0] in steps[3].explanation


def test_explain_map_general_error_names_the_mapping_domain() -> None:
    devices = FakeDevices(self_domid=0, gntst={(0, 8): -1}, store={"domid": b"0"})
    run = _run("explain-map", {"domid": "0", "gref": "8", "writable": "true"}, devices)
    causes = _steps(run)[-1].result["causes"]
    assert "d0" in causes[0]
    assert any("XSA-380" in c for c in causes)  # mapping one's own grant is legal
    assert not any("read-only grant" in c for c in causes)  # the read copy failed too


def test_explain_map_read_only_grant_mapped_writable() -> None:
    class ReadOnly(FakeDevices):
        def map_grants(self, domid: int, grefs: Any, *, writable: bool) -> Any:
            if writable:
                raise OSError(22, "Invalid argument")
            return super().map_grants(domid, grefs, writable=writable)

    devices = ReadOnly(gntst={(1, 8): 0}, store={"domid": b"0"})
    run = _run("explain-map", {"domid": "1", "gref": "8", "writable": "yes"}, devices)
    result = _steps(run)[-1].result
    assert result["status"] == 0 and not result["mapped"]
    assert "read-only" in result["causes"][0]


def test_explain_map_of_a_good_grant_has_nothing_to_explain() -> None:
    devices = FakeDevices(gntst={(1, 8): 0}, store={"domid": b"0"})
    run = _run("explain-map", {"domid": "1", "gref": "8"}, devices)
    result = _steps(run)[-1].result
    assert result["mapped"] and result["causes"] == []
    assert [r.name for r in _cleanup(run)] == ["unmap the grant"]


def test_explain_map_goes_on_without_xenstore() -> None:
    devices = FakeDevices(gntst={(1, 8): -3})
    devices.fail["xs read"] = OSError(2, "No such file or directory")
    run = _run("explain-map", {"domid": "1", "gref": "8"}, devices)
    assert run.ok and _steps(run)[-1].result["status"] == -3


def test_mailbox_loopback_runs_end_to_end_and_removes_its_keys() -> None:
    devices = FakeDevices(self_domid=3, store={"domid": b"3"})
    run = _run("mailbox-loopback", {"message": "ping"}, devices)
    assert run.ok, [r.explanation for r in run.records if not r.ok]
    steps = _steps(run)
    assert [r.name for r in steps] == [
        "find this domain's id and the mailbox path", "grant a page", "bind an unbound port",
        "publish in XenStore", "read gref and port from XenStore", "map the grant",
        "bind to the remote port", "drain the bind event",
        "write the message into the mapping", "notify", "wait for the event on the offer side",
        "read the message through the offered page", "remove the published keys"]
    assert steps[0].result["path"] == "/local/domain/3/data/grantscope-mailbox"
    assert steps[1].arguments["domid"] == 3 and steps[1].arguments["writable"] is True
    assert steps[4].result == {"gref": steps[1].result["gref"], "port": steps[2].result["port"]}
    assert steps[11].result["text"] == "ping"
    assert devices.store.nodes == {"domid": b"3"}
    assert devices.open_handles() == []
    # Releases run newest first: the map side before the offer side.
    assert [r.name for r in _cleanup(run)] == [
        "close event channel map_evtchn", "unmap the grant",
        "close event channel offer_evtchn", "end the grant"]


def test_mailbox_loopback_failure_mid_way_releases_everything() -> None:
    devices = FakeDevices(self_domid=0)
    devices.fail["notify"] = OSError(107, "Transport endpoint is not connected")
    run = _run("mailbox-loopback", {"path": "/tmp/mbox"}, devices)
    failed = [r for r in _steps(run) if not r.ok]
    assert [r.name for r in failed] == ["notify"] and failed[0].errno_name == "ENOTCONN"
    assert devices.store.nodes == {} and devices.open_handles() == []
    assert "remove the nodes written under /tmp/mbox" in [r.name for r in _cleanup(run)]


def test_mailbox_loopback_bad_published_value_names_path_and_bytes() -> None:
    class Garbling(FakeDevices):
        pass

    devices = Garbling(self_domid=0)
    original = devices.store.write

    def garble(path: str, value: bytes) -> None:
        original(path, b"0x" + value if path.endswith("/gref") else value)

    devices.store.write = garble  # type: ignore[method-assign]
    run = _run("mailbox-loopback", {"path": "/m"}, devices)
    failed = next(r for r in _steps(run) if not r.ok)
    assert failed.name == "read gref and port from XenStore"
    assert "/m/gref" in failed.explanation and '"0x' in failed.explanation
    assert devices.store.nodes == {} and devices.open_handles() == []


def test_offer_page_hold_ends_once_enough_events_arrived() -> None:
    devices = FakeDevices()
    run = ProbeRun(find_probe("offer-page"), {"domid": "2", "hold": "60", "events": "2"}, devices)
    with run:
        while run.steps[run.next_index].name != "hold the offer for the peer":
            assert run.run_next().ok
        port = int(run.records[-1].result["port"])
        channel = next(h for h in devices.handles if hasattr(h, "pending"))
        channel.pending += [port, port]
        record = run.run_next()
    assert record.ok and record.result["events"] == 2 and record.result["held_s"] < 5
    assert record.arguments == {"seconds": 60.0, "port": port, "events": 2, "echo": False}
    assert "notify" not in devices.call_names()


def test_offer_page_echo_answers_every_event_while_holding() -> None:
    devices = FakeDevices()
    run = ProbeRun(find_probe("offer-page"),
                   {"domid": "2", "hold": "60", "events": "3", "echo": "true"}, devices)
    with run:
        while run.steps[run.next_index].name != "hold the offer for the peer":
            assert run.run_next().ok
        port = int(run.records[-1].result["port"])
        channel = next(h for h in devices.handles if hasattr(h, "pending"))
        channel.pending += [port, port, port]
        record = run.run_next()
    assert record.ok and record.result["events"] == 3
    assert [c for c in devices.calls if c[0] == "notify"] == [("notify", port)] * 3
    assert "each answered" in record.explanation


def test_map_grant_writes_the_reply_into_the_mapped_page() -> None:
    devices = FakeDevices()
    devices.gntst[(5, 9)] = 0
    run = _run("map-grant", {"domid": "5", "gref": "9", "writable": "true",
                             "reply": "pong"}, devices)
    records = _steps(run)
    assert [r.ok for r in records] == [True] * len(records)
    written = next(r for r in records if r.name == "write the message into the mapped page")
    assert written.arguments["text"] == "pong"
    assert next(h for h in devices.handles if h.kind == "mapping").read(0, 5) == b"pong\0"


def test_map_grant_reply_needs_a_writable_mapping() -> None:
    with pytest.raises(UsageError, match="writable=true"):
        ProbeRun(find_probe("map-grant"), {"domid": "5", "gref": "9", "reply": "x"},
                 FakeDevices())


def test_offer_page_rejects_negative_events() -> None:
    with pytest.raises(UsageError):
        ProbeRun(find_probe("offer-page"), {"domid": "2", "events": "-1"}, FakeDevices())


@pytest.mark.parametrize("kind", ["PVH", "HVM"])
def test_mailbox_loopback_refuses_in_auto_translated_guests_unless_forced(kind: str) -> None:
    devices = FakeDevices(guest_type=kind)
    with pytest.raises(UsageError, match=f"this is a {kind} guest") as err:
        ProbeRun(find_probe("mailbox-loopback"), {}, devices)
    assert "force=true" in err.value.explanation and "p2m_add_page" in err.value.explanation
    assert "hole" in err.value.explanation
    assert devices.call_names() == ["guest_type"]  # asked the devices, touched nothing else
    run = _run("mailbox-loopback", {"force": "true"}, FakeDevices(guest_type=kind))
    assert run.ok


@pytest.mark.parametrize("kind", ["PV", ""])
def test_mailbox_loopback_runs_in_pv_guests_and_where_the_type_is_unknown(kind: str) -> None:
    assert _run("mailbox-loopback", {}, FakeDevices(guest_type=kind)).ok


def test_mailbox_loopback_on_the_simulated_host_never_reads_the_machine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo host answers the guest type itself: /sys/hypervisor is never read."""
    from grantscope.host.sim import SimHost
    from grantscope.xen import _host

    def no_sysfs(path: str, root: str = "/") -> str | None:
        raise AssertionError(f"read {path} of the real machine")

    monkeypatch.setattr(_host, "read_text", no_sysfs)
    run = ProbeRun(find_probe("mailbox-loopback"), {}, SimHost(frozen_at=100.0).devices())
    assert run.devices.guest_type() == "PV"


@pytest.mark.parametrize("kind", ["PVH", "HVM"])
def test_map_grant_refuses_this_domains_own_grant_in_auto_translated_guests(kind: str) -> None:
    devices = FakeDevices(self_domid=5, store={"domid": b"5"}, guest_type=kind)
    offer = devices.offer(5, 1, writable=False)  # a grant of its own, offered to itself
    run = _run("map-grant", {"domid": "5", "gref": str(offer.grefs[0])}, devices)
    assert not run.ok
    step = _steps(run)[0]
    assert step.name == "map the grant" and not step.ok
    assert f"this is a {kind} guest" in step.explanation and "d5" in step.explanation
    assert "hole" in step.explanation and "force=true" in step.explanation
    assert "map_grants" not in devices.call_names()  # refused before the map
    forced = _run("map-grant", {"domid": "5", "gref": str(offer.grefs[0]), "force": "true"},
                  devices)
    assert forced.ok and "map_grants" in devices.call_names()


@pytest.mark.parametrize("kind", ["PV", ""])
def test_map_grant_maps_its_own_grant_where_that_harms_nothing(kind: str) -> None:
    devices = FakeDevices(self_domid=5, store={"domid": b"5"}, guest_type=kind)
    offer = devices.offer(5, 1, writable=False)
    assert _run("map-grant", {"domid": "5", "gref": str(offer.grefs[0])}, devices).ok


def test_map_grant_maps_other_domains_grants_in_a_pvh_guest() -> None:
    devices = FakeDevices(self_domid=5, store={"domid": b"5"}, guest_type="PVH",
                          gntst={(0, 8): 0})
    run = _run("map-grant", {"domid": "0", "gref": "8"}, devices)
    assert run.ok and "map_grants" in devices.call_names()


def test_explain_map_of_its_own_grant_in_a_pvh_guest_explains_without_mapping() -> None:
    devices = FakeDevices(self_domid=5, store={"domid": b"5"}, guest_type="PVH")
    offer = devices.offer(5, 1, writable=False)
    run = _run("explain-map", {"domid": "5", "gref": str(offer.grefs[0])}, devices)
    steps = _steps(run)
    refused = next(s for s in steps if s.name == "map the grant")
    assert not refused.ok and "this is a PVH guest" in refused.explanation
    assert "map_grants" not in devices.call_names()
    assert steps[-1].ok  # the copy and the explanation still ran (a copy is harmless)
