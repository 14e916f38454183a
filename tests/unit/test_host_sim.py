"""The simulated host and its devices (grantscope.host.sim, grantscope.host.sim_devices)."""

import pytest

from grantscope.errors import GrantscopeError
from grantscope.host.sim import SimHost
from grantscope.model.ring import decode_ring_header


def test_info_is_labelled_simulated() -> None:
    info = SimHost().info()
    assert info.backend == "sim" and info.label == "SIMULATED" and info.is_dom0


def test_xenstore_has_two_guests_with_pv_devices() -> None:
    h = SimHost(frozen_at=100.0)
    assert {"1", "2"} <= set(h.list("/local/domain"))
    fe = "/local/domain/1/device/vbd/51712"
    assert h.read(f"{fe}/state") == b"4"
    backend = h.read(f"{fe}/backend")
    assert backend is not None and h.read(backend.decode() + "/frontend") == fe.encode()
    assert str(h.perms(fe + "/ring-ref")) == "n1 r0"
    assert h.read("/nope") is None and h.perms("/nope") is None
    paths = [n.path for n in h.xenstore_snapshot()]
    assert paths.index("/local") < paths.index("/local/domain/1")


def test_frozen_clock_gives_identical_snapshots() -> None:
    a, b = SimHost(frozen_at=50.0), SimHost(frozen_at=50.0)
    assert a.events() == b.events()
    assert a.read_page("grant:1:8") == b.read_page("grant:1:8")


def test_ring_indices_and_counters_move_with_the_clock() -> None:
    h = SimHost(frozen_at=100.0)
    before = decode_ring_header(h.read_page("grant:1:8"))
    c0 = h.events().interrupts[0].total
    h.freeze(110.0)
    after = decode_ring_header(h.read_page("grant:1:8"))
    assert after.req_prod > before.req_prod
    assert after.plausible()
    assert h.events().interrupts[0].total > c0


def test_big_directory() -> None:
    h = SimHost(big_dir=10_000)
    assert len(h.list("/local/domain/2/data/sessions")) == 10_000


def test_offer_map_roundtrip_shows_in_grants() -> None:
    h = SimHost(frozen_at=1.0)
    dev = h.devices()
    assert dev is not None
    offer = dev.offer(0, 1, writable=True)
    with dev.map_grants(0, offer.grefs, writable=True) as m:
        m.write(0, b"ping")
        assert offer.read(0, 4) == b"ping"
        kinds = {(g.kind, g.owner) for g in h.grants().own}
        assert ("offer", "probe") in kinds and ("map", "probe") in kinds
        assert any(p.device == "/dev/xen/gntdev" and p.name == "grantscope"
                   for p in h.grants().processes)
    offer.close()
    assert not any(g.owner == "probe" for g in h.grants().own)


def test_map_failures_follow_xen_rules() -> None:
    h = SimHost()
    dev = h.devices()
    assert dev is not None
    with pytest.raises(GrantscopeError, match="EINVAL") as info:
        dev.map_grants(1, [30], writable=False)  # granted to dom2, not us
    assert getattr(info.value, "errno", None) == 22
    assert dev.probe_grant_status(1, 30) == -1
    assert dev.probe_grant_status(1, 20) == 0
    assert dev.probe_grant_status(9, 20) == -2
    assert dev.probe_grant_status(1, 100000) == -3


def test_event_channel_peer_answers_and_unbind() -> None:
    h = SimHost()
    dev = h.devices()
    assert dev is not None
    ch = dev.event_channel()
    port = ch.bind_interdomain(1, 1)
    ch.notify(port)
    assert ch.wait(0.5) == [port]
    assert any(p.port == port and p.kind == "interdomain" for p in h.events().ports)
    with pytest.raises(GrantscopeError):
        ch.notify(port + 100)
    ch.close()
    assert h.events().ports == ()
    # the guest's port is unbound again and can be bound anew
    ch2 = dev.event_channel()
    assert ch2.bind_interdomain(1, 1) > 0
    ch2.close()


def test_loopback_in_dom0() -> None:
    dev = SimHost().devices()
    assert dev is not None
    a, b = dev.event_channel(), dev.event_channel()
    pa = a.bind_unbound(0)
    pb = b.bind_interdomain(0, pa)
    b.notify(pb)
    assert a.wait(0.5) == [pa]
    assert b.drain() == []


def test_watch_fires_first_for_itself_then_for_changes() -> None:
    h = SimHost(frozen_at=10.0)
    w = h.watch("/local/domain/1")
    assert w.get(0.1) == "/local/domain/1"
    h.store.write("/local/domain/1/data/x", b"1")
    h.store.write("/local/domain/2/data/x", b"1")
    assert w.get(0.1) == "/local/domain/1/data/x"
    assert w.get(0.05) is None
    w.close()


def test_readonly_has_no_devices_and_store_errors_explain() -> None:
    assert SimHost(readonly=True).devices() is None
    h = SimHost()
    with pytest.raises(GrantscopeError, match="ENOENT"):
        h.store.read("/missing")
    with pytest.raises(GrantscopeError):
        h.read_page("grant:9:9")


def test_sim_has_no_hypervisor_capture_but_carries_its_table() -> None:
    h = SimHost(frozen_at=1.0)
    # nothing to capture and nothing to warn about: the table is always current (issue 16:
    # 'h' in the demo said there was no table while one was on screen)
    assert h.capture_hypervisor_grants() == ""
    table = h.grants().hypervisor
    assert table is not None and any(r.granter == 1 and r.ref == 30 and r.mapper is None
                                     for r in table)
