"""XenStore.quota (the two read-only CONTROL requests, allowed under --readonly) and
XenStore.is_introduced, over the wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from xsd_double import CONTROL, XsdDouble, running_double

from grantscope.errors import GrantscopeError
from grantscope.xen.readonly import readonly_session
from grantscope.xen.xenstore import XenStore, XenStoreError
from grantscope.xen.xs_wire import Op, join_args


@pytest.fixture
def xsd() -> Iterator[XsdDouble]:
    with running_double() as double:
        double.control[("quota",)] = b"Quota settings:\nnodes : 1000 Nodes per domain\n"
        double.control[("quota", "5")] = b"Domain 5:\nnodes : 7\n"
        yield double


def test_quota_settings_and_a_domains_usage(xsd: XsdDouble) -> None:
    with XenStore.open(xsd.socket_path) as store:
        assert store.quota().startswith("Quota settings:\nnodes : 1000")
        assert store.quota(5) == "Domain 5:\nnodes : 7\n"
    assert [r for r in xsd.requests if r[0] == CONTROL] == [(CONTROL, "quota")] * 2


def test_quota_reads_under_readonly_but_no_other_control_request(xsd: XsdDouble) -> None:
    with XenStore.open(xsd.socket_path) as store, readonly_session(True):
        assert store.quota(5).startswith("Domain 5:")
        with pytest.raises(GrantscopeError, match="--readonly"):
            store._call(Op.CONTROL, join_args(b"quota", b"set", b"nodes", b"5"), None)
    assert len([r for r in xsd.requests if r[0] == CONTROL]) == 1  # the refused one never left


def test_a_request_xenstored_does_not_know_is_its_error(xsd: XsdDouble) -> None:
    with XenStore.open(xsd.socket_path) as store, pytest.raises(XenStoreError) as err:
        store.quota(9)
    assert err.value.errno_name == "EINVAL"


def test_is_introduced_and_the_homes_left_behind(xsd: XsdDouble) -> None:
    from grantscope.sources.observation import gone_domains

    snapshot: dict[str, bytes | None] = {
        "/local/domain/0": None, "/local/domain/3": None, "/local/domain/9": None,
        "/local/domain/9/name": b"x"}
    xsd.introduced = {0, 3}
    with XenStore.open(xsd.socket_path) as store:
        assert store.is_introduced(3) and not store.is_introduced(9)
        assert gone_domains(store, snapshot, 0) == frozenset({9})
        assert gone_domains(store, snapshot, 3) is None  # a domU may not ask
        xsd.introduced = None  # a xenstored that does not answer: unknown, not "all gone"
        assert gone_domains(store, snapshot, 0) is None


def test_every_domains_quota_is_asked_in_one_pipeline(
        xsd: XsdDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    from grantscope.sources.quota import read_quota

    for d in range(10, 70):
        xsd.control[("quota", str(d))] = f"Domain {d}:\nnodes : {d}\n".encode()
    monkeypatch.setenv("XENSTORED_PATH", xsd.socket_path)
    with readonly_session(True):  # only reads: allowed under --readonly
        snap = read_quota([5, 9, *range(10, 70)], daemon="xenstored")
    expected = {5: 7, **{d: d for d in range(10, 70)}}
    assert {u.domid: u.usage["nodes"] for u in snap.usage} == expected
    assert [p for p in snap.unavailable if "d9" in p] and len(snap.unavailable) == 1
    assert xsd.max_batch >= 60, xsd.max_batch  # not one round trip per domain
    # Each domain was asked once: the pipeline's answers are used, not asked again.
    assert len([r for r in xsd.requests if r[0] == CONTROL]) == 1 + 62
