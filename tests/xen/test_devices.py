"""The device bindings against real Xen: run INSIDE dom0 of the lab, as root.

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_devices.py

Facts these tests rely on are in shared/xenlab/NOTES.md: dom0 may map its own
gntalloc grants, failing maps pass the MAP ioctl and fail at mmap with EINVAL,
and GRANT_COPY reports the real GNTST status.
"""

from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import sys

import pytest

from grantscope.errors import UsageError
from grantscope.xen.errors import XenError
from grantscope.xen.evtchn import EventChannel
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import (
    CopySegment,
    ForeignRef,
    Gntdev,
    GrantMapping,
    grant_copy,
    probe_grant_status,
)

pytestmark = pytest.mark.xen

DOMID_SELF = 0x7FF0


# -- grants: the happy paths ------------------------------------------------------------
def test_own_grant_bytes_written_through_one_side_are_seen_through_the_other() -> None:
    with GrantOffer(0, 1, writable=True) as offer, GrantMapping(0, offer.grefs) as mapping:
        assert len(offer.grefs) == 1 and len(mapping.page) == 4096
        offer.write(0, b"from-gntalloc")
        assert mapping.read(0, 13) == b"from-gntalloc"
        mapping.write(100, b"from-gntdev")
        assert offer.read(100, 11) == b"from-gntdev"
        assert bytes(offer.page[100:111]) == b"from-gntdev"


def test_multi_page_offer_and_map_keep_page_order() -> None:
    with GrantOffer(0, 3, writable=True) as offer:
        for i in range(3):
            offer.write(i * 4096, f"page{i}".encode())
        with GrantMapping(0, offer.grefs) as mapping:
            assert len(mapping.page) == 3 * 4096
            for i in range(3):
                assert mapping.read(i * 4096, 5) == f"page{i}".encode()
        # Map the pages in reverse order: the mapping follows the grefs given.
        with GrantMapping(0, tuple(reversed(offer.grefs))) as mapping:
            assert mapping.read(0, 5) == b"page2"


def test_read_only_map_reads_and_refuses_writes() -> None:
    with GrantOffer(0, 1, writable=False) as offer:
        offer.write(0, b"ro-data")
        with GrantMapping(0, offer.grefs, writable=False) as mapping:
            assert mapping.page.readonly
            assert mapping.read(0, 7) == b"ro-data"
            with pytest.raises(UsageError):
                mapping.write(0, b"x")


def test_close_is_idempotent_and_releases() -> None:
    offer = GrantOffer(0, 1, writable=True)
    mapping = GrantMapping(0, offer.grefs)
    mapping.close()
    mapping.close()
    assert mapping.closed
    with pytest.raises(UsageError):
        mapping.read()
    offer.close()
    offer.close()
    assert offer.closed


def test_shared_gntdev_maps_many_times_on_one_fd() -> None:
    with GrantOffer(0, 1, writable=True) as offer, Gntdev() as dev:
        offer.write(0, b"\x42")
        fd = dev.fileno()
        for _ in range(20):
            with dev.map(0, offer.grefs) as mapping:
                assert mapping.read(0, 1) == b"\x42"
                offset, count = dev.offset_for_vaddr(mapping._pages.address)  # type: ignore[union-attr]
                assert (offset, count) == (mapping.index, 1)
        assert dev.fileno() == fd


def test_grant_copy_both_directions_and_probe() -> None:
    with GrantOffer(0, 1, writable=True) as offer:
        offer.write(0, b"copy-me")
        (gref,) = offer.grefs
        assert probe_grant_status(0, gref) == 0
        sink = bytearray(7)
        statuses = grant_copy([
            CopySegment(ForeignRef(0, gref, 0), sink, 7),
            CopySegment(b"written", ForeignRef(0, gref, 200), 7),
        ])
        assert statuses == [0, 0]
        assert bytes(sink) == b"copy-me"
        assert offer.read(200, 7) == b"written"


# -- grants: failures explained by GRANT_COPY ---------------------------------------------
def _map_error(domid: int, gref: int, *, writable: bool = True) -> XenError:
    with pytest.raises(XenError) as info:
        GrantMapping(domid, [gref], writable=writable)
    return info.value


def test_grant_for_another_domain_is_general_error() -> None:
    with GrantOffer(7, 1) as offer:
        err = _map_error(0, offer.grefs[0])
        assert err.errno == errno.EINVAL and err.call == "mmap"
        assert err.gnttab_status == -1
        assert err.to_json()["gnttab_status_name"] == "general_error"
        assert "-1 general error: the grant is not for this domain" in err.explanation
        assert probe_grant_status(0, offer.grefs[0]) == -1


def test_unknown_gref_is_bad_gntref() -> None:
    err = _map_error(0, 4000)
    assert err.errno == errno.EINVAL
    assert err.gnttab_status == -3


def test_unknown_domain_is_bad_domain() -> None:
    with GrantOffer(0, 1) as offer:
        err = _map_error(999, offer.grefs[0])
    assert err.gnttab_status == -2
    assert "no such domain" in err.explanation


def test_domid_self_map_fails_and_is_named() -> None:
    # Xen 4.17 in the lab: GRANT_COPY accepts DOMID_SELF for an own grant (status 0),
    # the map does not (mmap EINVAL).  The error must say DOMID_SELF, not "read-only".
    with GrantOffer(0, 1) as offer:
        err = _map_error(DOMID_SELF, offer.grefs[0])
        assert probe_grant_status(DOMID_SELF, offer.grefs[0]) == 0
    assert err.errno == errno.EINVAL
    assert err.gnttab_status == 0
    assert "DOMID_SELF" in err.causes[0]


def test_domid_self_with_ungranted_gref_copy_is_general_error() -> None:
    # NOTES.md: DOMID_SELF with gref 8 (not granted) -> -1.
    assert probe_grant_status(DOMID_SELF, 8) == -1


def test_read_only_grant_mapped_writable_is_explained() -> None:
    with GrantOffer(0, 1, writable=False) as offer:
        err = _map_error(0, offer.grefs[0], writable=True)
        assert err.errno == errno.EINVAL
        assert err.gnttab_status == 0  # the copy (a read) works: only writing is refused
        assert "read-only" in err.causes[0]
        with GrantMapping(0, offer.grefs, writable=False) as mapping:
            assert mapping.read(0, 1) == b"\0"


def test_failed_map_leaves_nothing_mapped_on_a_shared_fd() -> None:
    with Gntdev() as dev, GrantOffer(0, 1, writable=True) as offer:
        with pytest.raises(XenError):
            dev.map(0, [4000])
        with dev.map(0, offer.grefs) as mapping:  # the fd is still fine
            assert mapping.read(0, 1) == b"\0"


# -- unmap notify --------------------------------------------------------------------------
def test_gntdev_unmap_notify_clears_byte_and_sends_event() -> None:
    with GrantOffer(0, 1, writable=True) as offer, EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        offer.write(10, b"\xff")
        mapping = GrantMapping(0, offer.grefs)
        mapping.set_unmap_notify(10, clear_byte=True, port=port_a)
        assert offer.read(10, 1) == b"\xff"
        mapping.close()
        assert offer.read(10, 1) == b"\0"
        assert b.wait(5.0) == [port_b]


def test_gntalloc_unmap_notify_clears_byte_seen_by_the_mapper() -> None:
    offer = GrantOffer(0, 1, writable=True)
    try:
        offer.write(5, b"\x77")
        with GrantMapping(0, offer.grefs) as mapping:
            offer.set_unmap_notify(5, clear_byte=True)
            assert mapping.read(5, 1) == b"\x77"
            offer.close()
            assert mapping.read(5, 1) == b"\0"
    finally:
        offer.close()


def test_gntalloc_unmap_notify_sends_its_event_when_the_offer_goes() -> None:
    """The granting side's notify with a port: closing the offer clears the byte and the
    peer's end of the channel fires (what a frontend that dies tells its backend)."""
    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        assert b.wait(0.3) == []  # the bind's own event, consumed
        offer = GrantOffer(0, 1, writable=True)
        try:
            offer.write(7, b"\x55")
            with GrantMapping(0, offer.grefs) as mapping:
                offer.set_unmap_notify(7, clear_byte=True, port=port_a)
                assert b.wait(0.3) == []  # nothing sent yet
                offer.close()
                assert mapping.read(7, 1) == b"\0"
                assert b.wait(5.0) == [port_b]
        finally:
            offer.close()


def test_unmap_notify_on_unbound_port_is_explained() -> None:
    with (GrantOffer(0, 1, writable=True) as offer, GrantMapping(0, offer.grefs) as mapping,
          pytest.raises(XenError) as info):
        mapping.set_unmap_notify(0, port=4000)
    assert info.value.errno == errno.EINVAL
    assert any("not bound in this kernel" in c for c in info.value.causes)


# -- event channels ------------------------------------------------------------------------
def test_evtchn_loopback_both_ways_and_no_spurious_reply() -> None:
    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        assert a.ports == {port_a} and b.ports == {port_b}
        # The event Xen raises on the binder's new port was consumed by the bind.
        assert b.wait(0.3) == []
        assert a.wait(0.1) == []
        b.notify(port_b)
        assert a.wait(5.0) == [port_a]
        a.notify(port_a)
        assert b.wait(5.0) == [port_b]
        # Unmasked: a second round works too.
        b.notify(port_b)
        assert a.wait(5.0) == [port_a]


def test_wait_without_a_timeout_blocks_until_the_port_fires() -> None:
    """``wait(None)`` (the offer's hold without a deadline) sleeps in poll() until an event."""
    import threading

    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        assert b.wait(0.3) == []  # the bind's own event, consumed
        got: list[list[int]] = []
        waiter = threading.Thread(target=lambda: got.append(b.wait(None)), daemon=True)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and got == []  # nothing fired: still waiting, no timeout
        a.notify(port_a)
        waiter.join(10.0)
        assert not waiter.is_alive() and got == [[port_b]]


def test_evtchn_fd_is_pollable_and_drain_is_non_blocking() -> None:
    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        assert a.drain() == []
        b.notify(port_b)
        ready, _, _ = select.select([a], [], [], 5.0)
        assert ready == [a]
        assert a.drain() == [port_a]
        assert a.drain() == []


def test_many_round_trips_lose_nothing() -> None:
    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(0)
        port_b = b.bind_interdomain(0, port_a)
        for _ in range(200):
            b.notify(port_b)
            assert a.wait(5.0) == [port_a]
            a.notify(port_a)
            assert b.wait(5.0) == [port_b]


def test_notify_on_a_port_not_bound_here_is_enotconn() -> None:
    with EventChannel() as a, EventChannel() as other:
        port = other.bind_unbound(0)
        with pytest.raises(XenError) as info:
            a.notify(port)
    err = info.value
    assert err.errno == errno.ENOTCONN
    assert f"port {port} is not bound through this event-channel fd" in err.causes[0]
    assert err.to_json()["errno_name"] == "ENOTCONN"


def test_unbind_then_unbind_again_is_enotconn() -> None:
    with EventChannel() as a:
        port = a.bind_unbound(0)
        a.unbind(port)
        assert a.ports == frozenset()
        with pytest.raises(XenError) as info:
            a.unbind(port)
        assert info.value.errno == errno.ENOTCONN


def test_bind_interdomain_to_a_port_not_offered_is_explained() -> None:
    with EventChannel() as a, EventChannel() as b:
        port_a = a.bind_unbound(7)  # offered to domain 7, not to us
        with pytest.raises(XenError) as info:
            b.bind_interdomain(0, port_a)
    assert info.value.errno == errno.EINVAL
    assert "not an unbound port offered to this domain" in info.value.causes[0]


def test_bind_interdomain_to_missing_domain() -> None:
    with EventChannel() as a, pytest.raises(XenError) as info:
        a.bind_interdomain(999, 1)
    assert info.value.errno in (errno.ESRCH, errno.EINVAL)
    assert info.value.call == "IOCTL_EVTCHN_BIND_INTERDOMAIN"


def test_restricted_fd_refuses_unbound_with_explanation() -> None:
    with EventChannel() as a:
        a.restrict_domid(5)
        with pytest.raises(XenError) as info:
            a.bind_unbound(0)
    assert info.value.errno == errno.EACCES
    assert any("RESTRICT_DOMID" in c for c in info.value.causes)


def test_bind_virq_and_reset() -> None:
    with EventChannel() as a:
        port = a.bind_virq(12)  # VIRQ_ENOMEM: global, normally unbound in dom0
        assert port in a.ports
        a.reset()
        a.unbind(port)


def test_close_unbinds_everything() -> None:
    a = EventChannel()
    a.bind_unbound(0)
    a.bind_unbound(0)
    a.close()
    a.close()
    assert a.ports == frozenset()
    with pytest.raises(ValueError):
        a.fileno()


# -- permissions ---------------------------------------------------------------------------
_AS_NOBODY = r"""
import json, os, sys
os.setgid(65534); os.setuid(65534)
from grantscope.xen.errors import XenError
from grantscope.xen.gntdev import Gntdev
from grantscope.xen.evtchn import EventChannel
out = []
for make in (Gntdev, EventChannel):
    try:
        make().close()
        out.append(None)
    except XenError as err:
        out.append(err.to_json())
print(json.dumps(out))
"""


def test_unprivileged_user_gets_a_clear_permission_error() -> None:
    proc = subprocess.run([sys.executable, "-c", _AS_NOBODY], capture_output=True, text=True,
                          timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for err in results:
        assert err is not None, "nobody could open a /dev/xen node"
        assert err["errno_name"] in ("EACCES", "EPERM")
        assert err["call"] == "open"
        assert "not running as root (euid 65534)" in err["causes"]
        assert "run as root" in err["explanation"]


def test_device_nodes_exist_here() -> None:
    for node in ("gntdev", "gntalloc", "evtchn"):
        assert os.path.exists(f"/dev/xen/{node}")
