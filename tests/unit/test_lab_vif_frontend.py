"""The user-space vif frontend's xenbus handshake, against a XenStore whose backend answers as
netback does (the real thing runs in tests/xen/test_report_pv_device.py)."""

from __future__ import annotations

import struct

import pytest

from grantscope.lab import vif_frontend
from grantscope.lab.vif_frontend import FrontendError, VifFrontend

FRONT = "/local/domain/3/device/vif/0"
BACK = "/local/domain/0/backend/vif/3/0"
# netback's answer to each frontend state (Initialising -> InitWait, Connected -> Connected,
# Closing -> Closing, Closed -> Closed).
NETBACK = {b"1": b"2", b"4": b"4", b"5": b"5", b"6": b"6"}


class Store:
    """A dict XenStore; writing the frontend's state moves the backend's like netback."""

    def __init__(self, backend_state: bytes = b"2", answer: bool = True) -> None:
        self.nodes = {"/local/domain/3/domid": b"3", FRONT: b"", f"{FRONT}/backend": BACK.encode(),
                      f"{FRONT}/backend-id": b"0", f"{BACK}/state": backend_state}
        self.answer = answer
        self.writes: list[tuple[str, bytes]] = []

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else f"/local/domain/3/{path}"

    def read(self, path: str) -> bytes:
        return self.nodes[self._abs(path)]

    def read_or_none(self, path: str) -> bytes | None:
        return self.nodes.get(self._abs(path))

    def exists(self, path: str) -> bool:
        return self._abs(path) in self.nodes

    def write(self, path: str, value: bytes) -> None:
        self.writes.append((path, value))
        self.nodes[path] = value
        if path == f"{FRONT}/state" and self.answer:
            self.nodes[f"{BACK}/state"] = NETBACK[value]


class Offer:
    def __init__(self, domid: int, pages: int, *, writable: bool) -> None:
        assert (domid, pages, writable) == (0, 2, True)
        self.grefs = (8, 9)
        self.page = bytearray(4096 * pages)
        self.closed = False

    def write(self, offset: int, data: bytes) -> None:
        self.page[offset:offset + len(data)] = data

    def close(self) -> None:
        self.closed = True


class Channel:
    def __init__(self) -> None:
        self.closed = False
        self.notified: list[int] = []

    def bind_unbound(self, domid: int) -> int:
        assert domid == 0
        return 17

    def notify(self, port: int) -> None:
        self.notified.append(port)

    def drain(self) -> list[int]:
        return []

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fake_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vif_frontend, "GrantOffer", Offer)
    monkeypatch.setattr(vif_frontend, "EventChannel", Channel)


def test_connect_publishes_rings_and_port_then_closes_both_ways() -> None:
    store = Store(backend_state=b"6")  # closed by an earlier run: reconnect from Initialising
    vif = VifFrontend.connect(store, timeout=2)  # type: ignore[arg-type]
    assert store.writes == [
        (f"{FRONT}/state", b"1"),
        (f"{FRONT}/tx-ring-ref", b"8"), (f"{FRONT}/rx-ring-ref", b"9"),
        (f"{FRONT}/event-channel", b"17"), (f"{FRONT}/request-rx-copy", b"1"),
        (f"{FRONT}/state", b"4"),
    ]
    assert isinstance(vif.offer, Offer)
    # Both rings start as SHARED_RING_INIT leaves them: req_event = rsp_event = 1.
    for ring in (0, 1):
        assert struct.unpack_from("<4I", vif.offer.page, ring * 4096) == (0, 1, 0, 1)
    vif.storm(0.05, lambda sent, seconds: None)
    assert vif.sent > 0 and isinstance(vif.channel, Channel)
    assert set(vif.channel.notified) == {17}
    vif.close()
    vif.close()  # idempotent
    assert store.writes[-2:] == [(f"{FRONT}/state", b"5"), (f"{FRONT}/state", b"6")]
    assert vif.channel.closed and vif.offer.closed


def test_a_guest_without_the_vif_is_told_how_to_get_one() -> None:
    store = Store()
    del store.nodes[FRONT]
    with pytest.raises(FrontendError, match=r"vif = \[\.\.\.\]"):
        VifFrontend.connect(store, timeout=1)  # type: ignore[arg-type]


def test_a_backend_that_never_connects_leaves_nothing_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Channel] = []
    monkeypatch.setattr(vif_frontend, "EventChannel", lambda: made.append(Channel()) or made[-1])
    store = Store()
    store.answer = False  # the backend stays in InitWait
    with pytest.raises(FrontendError, match="waited"):
        VifFrontend.connect(store, timeout=0.3)  # type: ignore[arg-type]
    assert made and made[0].closed  # the port is given back on the way out


def test_main_explains_a_failure_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from grantscope.xen.xs_types import XenStoreError

    class NoStore:
        def __enter__(self) -> NoStore:
            raise XenStoreError.from_reply("EACCES", "READ", f"{FRONT}/backend-id")

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(vif_frontend.XenStore, "open", staticmethod(lambda timeout: NoStore()))
    assert vif_frontend.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vif_frontend: XenStore READ {FRONT}/backend-id: EACCES")
    assert "Traceback" not in err
