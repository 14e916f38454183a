"""The XenStore client against the wire-protocol double (tests/unit/xsd_double.py)."""

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from xsd_double import (
    DIRECTORY,
    DIRECTORY_PART,
    READ,
    TX_END,
    WATCH,
    XsdDouble,
    running_double,
)

from grantscope.errors import NoXenError
from grantscope.xen import xs_conn
from grantscope.xen.xenstore import Perms, XenStore, XenStoreError, escape_value, format_ls_line


@pytest.fixture
def xsd() -> Iterator[XsdDouble]:
    with running_double() as double:
        yield double


@pytest.fixture
def store(xsd: XsdDouble) -> Iterator[XenStore]:
    with XenStore.open(xsd.socket_path, timeout=2.0) as s:
        yield s


# -- basic requests and raw bytes ------------------------------------------------------------


def test_transport_is_socket(store: XenStore, xsd: XsdDouble) -> None:
    assert store.transport == "socket" and store.path == xsd.socket_path


@pytest.mark.parametrize(
    "value", [b"", b"plain", b"\x00", b"a\x00b", b"trailing\x00\x00", b"\xff\xfe\x80", b" sp "]
)
def test_raw_bytes_round_trip(store: XenStore, value: bytes) -> None:
    store.write("/t/v", value)
    assert store.read("/t/v") == value  # nothing stripped, nothing decoded


def test_write_sends_value_without_trailing_nul(store: XenStore, xsd: XsdDouble) -> None:
    store.write("/t/v", b"abc")
    assert xsd.nodes["/t/v"].value == b"abc"


def test_missing_node(store: XenStore) -> None:
    assert store.read_or_none("/nope") is None
    assert not store.exists("/nope")
    with pytest.raises(XenStoreError) as info:
        store.read("/nope")
    assert info.value.errno_name == "ENOENT" and info.value.op == "READ"
    assert info.value.path == "/nope" and "/nope" in info.value.message


def test_eacces_is_explained(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/secret", b"x")
    xsd.deny.add("/secret")
    with pytest.raises(XenStoreError) as info:
        store.read("/secret")
    assert info.value.errno_name == "EACCES"
    assert "permission" in info.value.explanation.lower()


def test_mkdir_list_rm(store: XenStore) -> None:
    store.mkdir("/d/e")
    store.write("/d/f", b"1")
    assert store.list("/d") == ["e", "f"]
    assert store.read("/d/e") == b""
    store.rm("/d")
    assert not store.exists("/d/f") and not store.exists("/d")


def test_perms_round_trip(store: XenStore) -> None:
    store.write("/p", b"")
    assert store.get_perms("/p") == Perms(0, "n", ())
    store.set_perms("/p", Perms.parse(["n0", "r1", "b2"]))
    assert str(store.get_perms("/p")) == "n0 r1 b2"


def test_domain_path(store: XenStore) -> None:
    assert store.get_domain_path(7) == "/local/domain/7"


def test_oversized_request_is_refused_before_sending(store: XenStore, xsd: XsdDouble) -> None:
    with pytest.raises(XenStoreError) as info:
        store.write("/big", b"x" * 5000)
    assert info.value.errno_name == "E2BIG"
    # The connection is still alive: xenstored never saw the oversized message.
    store.write("/ok", b"1")
    assert store.read("/ok") == b"1"


# -- DIRECTORY_PART ---------------------------------------------------------------------------


def _fill(xsd: XsdDouble, n: int) -> list[str]:
    names = [f"a-rather-long-child-name-number-{i:04d}" for i in range(n)]
    for name in names:
        xsd.put(f"/big/{name}", name.encode())
    return names


def test_list_falls_back_to_directory_part(store: XenStore, xsd: XsdDouble) -> None:
    names = _fill(xsd, 600)  # ~22 KB of names: DIRECTORY says E2BIG
    assert store.list("/big") == names
    ops = [op for op, path in xsd.requests if path == "/big"]
    assert ops[0] == DIRECTORY and ops.count(DIRECTORY_PART) >= 5


def test_a_daemon_without_directory_part_gives_e2big_saying_why(
        store: XenStore, xsd: XsdDouble) -> None:
    # oxenstored answers DIRECTORY_PART with ENOSYS (seen in the lab, over xenbus).
    _fill(xsd, 600)
    xsd.no_directory_part = True
    with pytest.raises(XenStoreError) as info:
        store.list("/big")
    assert info.value.errno_name == "E2BIG" and info.value.path == "/big"
    assert "DIRECTORY_PART" in info.value.explanation
    assert "oxenstored" in info.value.explanation


def test_a_walk_never_hides_a_directory_it_cannot_list(store: XenStore, xsd: XsdDouble) -> None:
    # Below the walk's root, a too-big directory without DIRECTORY_PART fails the walk (as
    # xenstore-ls does) instead of silently showing it without children.
    _fill(xsd, 300)
    xsd.put("/other", b"1")
    xsd.no_directory_part = True
    with pytest.raises(XenStoreError) as info:
        list(store.walk("/", window=50))
    assert info.value.errno_name == "E2BIG" and info.value.path == "/big"
    assert "DIRECTORY_PART" in info.value.explanation


def test_directory_part_restarts_when_generation_changes(store: XenStore, xsd: XsdDouble) -> None:
    names = _fill(xsd, 300)
    xsd.change_between_parts.add("/big")
    listed = store.list("/big")
    assert listed == [*names, "zz-added-meanwhile"]
    parts = [p for op, p in xsd.requests if op == DIRECTORY_PART]
    assert len(parts) > 3  # started over after the change


# -- timeouts and stray packets --------------------------------------------------------------


def test_request_timeout_names_op_and_path(xsd: XsdDouble) -> None:
    xsd.put("/slow", b"1")
    xsd.drop.add((READ, "/slow"))
    with XenStore.open(xsd.socket_path, timeout=0.3) as s:
        t0 = time.monotonic()
        with pytest.raises(XenStoreError) as info:
            s.read("/slow")
        assert time.monotonic() - t0 < 2.0
        assert info.value.errno_name == "ETIMEDOUT"
        assert "READ /slow" in info.value.message
        xsd.put("/fast", b"2")
        assert s.read("/fast") == b"2"  # the connection still works


def test_late_reply_is_never_mistaken(xsd: XsdDouble) -> None:
    xsd.put("/slow", b"late")
    xsd.put("/other", b"right")
    xsd.delay[(READ, "/slow")] = 0.5
    with XenStore.open(xsd.socket_path, timeout=0.2) as s:
        first = s._conn
        with pytest.raises(XenStoreError):
            s.read("/slow")
        assert first.closed  # the timed-out request ended its connection
        time.sleep(0.5)
        assert s.read("/other") == b"right"  # on a new connection: the late reply is not read
        assert s.reconnects == 1 and s._conn is not first and s._conn.unexpected == 0


def test_timeout_closes_the_connection_and_the_next_request_reconnects(
        xsd: XsdDouble) -> None:
    xsd.put("/slow", b"1")
    xsd.put("/fast", b"2")
    xsd.drop.add((READ, "/slow"))
    with XenStore.open(xsd.socket_path, timeout=0.3) as s:
        with pytest.raises(XenStoreError) as info:
            s.read("/slow")
        assert info.value.errno_name == "ETIMEDOUT" and "new one" in info.value.explanation
        assert s.read("/fast") == b"2" and s.transport == "socket" and s.reconnects == 1
        assert xsd.max_clients >= 1


def test_half_written_request_closes_the_connection() -> None:
    """xenstored stops reading: the pipelined batch is cut mid-message, the stream is dead."""
    ours, theirs = socket.socketpair()
    try:
        conn = xs_conn.XsConnection("socket", "/nowhere", ours.detach(), lambda: None)
        batch = [(READ, 0, b"/" + b"x" * 4000 + b"\0")] * 400  # 1.6 MB: more than the buffer
        with pytest.raises(TimeoutError):
            conn.submit(batch, time.monotonic() + 0.3)
        assert conn.closed and "half-written" in (conn.lost_reason or "")
    finally:
        theirs.close()


def test_watch_is_registered_again_after_a_reconnect(xsd: XsdDouble) -> None:
    xsd.put("/w/a", b"1")
    xsd.put("/slow", b"1")
    xsd.drop.add((READ, "/slow"))
    with XenStore.open(xsd.socket_path, timeout=0.3) as s, s.watch("/w") as watch:
        assert watch.get(1.0) == "/w"
        assert watch.take_notice() is None
        with pytest.raises(XenStoreError):
            s.read("/slow")  # times out: the connection (and its watch) is gone
        assert watch.get(1.0) == "/w"  # registered again: xenstored fires once at once
        notice = watch.take_notice()
        assert notice is not None and "reconnected" in notice and "/w" in notice
        xsd.put("/w/b", b"2")
        assert watch.get(1.0) == "/w/b"
        watches = [path for op, path in xsd.requests if op == WATCH]
        assert watches == ["/w", "/w"]


def test_watch_waits_out_a_xenstored_that_does_not_answer(xsd: XsdDouble) -> None:
    """Like a SIGSTOPped xenstored: the re-registration times out, get() returns None (no
    exception), and once it answers again the watch is back, with one notice."""
    xsd.put("/w", b"")
    xsd.put("/slow", b"1")
    xsd.drop.add((READ, "/slow"))
    with XenStore.open(xsd.socket_path, timeout=0.3) as s, s.watch("/w") as watch:
        assert watch.get(1.0) == "/w"
        xsd.drop.add((WATCH, "/w"))  # from now on the watch cannot be registered again
        with pytest.raises(XenStoreError):
            s.read("/slow")
        for _ in range(3):
            assert watch.get(0.2) is None
        xsd.drop.discard((WATCH, "/w"))
        got = [watch.get(1.0) for _ in range(3)]
        assert "/w" in got
        assert "reconnected" in (watch.take_notice() or "") and watch.take_notice() is None
        xsd.put("/w/after", b"1")
        assert watch.get(1.0) == "/w/after"


def test_a_waiting_get_returns_when_another_request_ends_the_connection(
        xsd: XsdDouble) -> None:
    """The TUI's watch thread waits in get(); the details read times out and ends the shared
    connection.  get() must return then, not after trying to register again (which takes the
    store's timeout while xenstored is paused), so the pane can say "disconnected" at once."""
    xsd.put("/w", b"")
    xsd.put("/slow", b"1")
    xsd.drop.add((READ, "/slow"))
    with XenStore.open(xsd.socket_path, timeout=0.5) as s, s.watch("/w") as watch:
        assert watch.get(1.0) == "/w"
        xsd.drop.add((WATCH, "/w"))  # paused, as far as registering again goes
        returned: list[float] = []

        def wait() -> None:
            watch.get(10.0)
            returned.append(time.monotonic())

        waiter = threading.Thread(target=wait)
        waiter.start()
        with pytest.raises(XenStoreError):
            s.read("/slow")
        lost = time.monotonic()
        waiter.join(5.0)
        assert returned, "get() still waiting after the connection was lost"
        assert returned[0] - lost < 0.3, returned[0] - lost  # not the 0.5 s re-registration
        assert not watch.connected and "timed out" in (watch.lost_reason or ""), watch.lost_reason
        assert [path for op, path in xsd.requests if op == WATCH] == ["/w"]
        assert watch.get(0.2) is None  # registering again times out: the reason stays the first
        assert not watch.connected and "timed out" in (watch.lost_reason or ""), watch.lost_reason
        xsd.drop.discard((WATCH, "/w"))
        got = [watch.get(1.0) for _ in range(3)]
        assert "/w" in got and watch.connected and watch.lost_reason is None
        assert "timed out" in (watch.take_notice() or "")


def test_watch_survives_xenstored_restarting(xsd: XsdDouble) -> None:
    xsd.put("/w", b"")
    directory = os.path.dirname(xsd.socket_path)
    with XenStore.open(xsd.socket_path, timeout=0.5) as s, s.watch("/w") as watch:
        assert watch.get(1.0) == "/w"
        xsd.close()
        os.unlink(xsd.socket_path)
        assert watch.get(0.3) is None  # down: nothing to connect to, no exception
        with XsdDouble(directory) as again:
            again.put("/w", b"")
            deadline = time.monotonic() + 5.0
            got = None
            while got is None and time.monotonic() < deadline:
                got = watch.get(0.5)
            assert got == "/w"
            assert "connection lost" in (watch.take_notice() or "")
            again.put("/w/new", b"1")
            assert watch.get(1.0) == "/w/new"
            assert s.read("/w/new") == b"1"


def test_unknown_req_id_is_ignored(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/k", b"v")
    xsd.unknown_reply_next = 3
    assert store.read("/k") == b"v"
    assert store._conn.unexpected == 3
    assert store.read("/k") == b"v"


def test_out_of_order_replies_are_matched_on_req_id(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/a", b"A")
    xsd.put("/b", b"B")
    xsd.delay[(READ, "/a")] = 0.3  # /a is answered after /b
    results: dict[str, bytes] = {}

    def reader(path: str) -> None:
        results[path] = store.read(path)

    threads = [threading.Thread(target=reader, args=(p,)) for p in ("/a", "/b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == {"/a": b"A", "/b": b"B"}


def test_many_threads_share_one_connection(store: XenStore, xsd: XsdDouble) -> None:
    for i in range(20):
        xsd.put(f"/m/{i}", str(i).encode())
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(30):
                assert store.read(f"/m/{i}") == str(i).encode()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []


def test_connection_loss_is_an_error_not_a_hang(xsd: XsdDouble) -> None:
    with XenStore.open(xsd.socket_path, timeout=5.0) as s:
        xsd.put("/x", b"1")
        assert s.read("/x") == b"1"
        xsd.close()
        t0 = time.monotonic()
        with pytest.raises(XenStoreError) as info:
            s.read("/x")
        assert time.monotonic() - t0 < 3.0
        assert info.value.errno_name == "ECONNRESET"


# -- watches ---------------------------------------------------------------------------------


def test_watch_fires_first_for_path_then_on_changes(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/w", b"")
    with store.watch("/w") as watch:
        assert watch.get(2.0) == "/w"  # the immediate first event
        assert watch.get(0.1) is None
        xsd.put("/w/child", b"1")  # another client changes it
        assert watch.get(2.0) == "/w/child"
        xsd.put("/elsewhere", b"1")
        assert watch.get(0.2) is None


def test_watch_events_interleave_with_replies(store: XenStore, xsd: XsdDouble) -> None:
    with store.watch("/i") as watch:
        for i in range(20):
            store.write(f"/i/{i}", b"x")  # each write's event arrives around its reply
            assert store.read(f"/i/{i}") == b"x"
        events = [watch.get(2.0) for _ in range(21)]
    assert events[0] == "/i"
    assert sorted(events[1:]) == sorted(f"/i/{i}" for i in range(20))


def test_watch_close_unwatches(store: XenStore, xsd: XsdDouble) -> None:
    watch = store.watch("/u")
    assert watch.get(2.0) == "/u"
    watch.close()
    assert xsd.clients[0].watches == []
    xsd.put("/u/x", b"1")
    assert watch.get(0.2) is None
    watch.close()  # idempotent


def test_two_watches_get_their_own_events(store: XenStore, xsd: XsdDouble) -> None:
    with store.watch("/one") as w1, store.watch("/two") as w2:
        assert w1.get(2.0) == "/one" and w2.get(2.0) == "/two"
        xsd.put("/two/x", b"1")
        assert w2.get(2.0) == "/two/x"
        assert w1.get(0.2) is None


# -- transactions ----------------------------------------------------------------------------


def test_transaction_commits(store: XenStore, xsd: XsdDouble) -> None:
    def body(tx: XenStore) -> bytes:
        tx.write("/tx/a", b"1")
        tx.write("/tx/b", b"2")
        assert not store.exists("/tx/a")  # not visible outside before commit
        return tx.read("/tx/a")

    assert store.transaction(body) == b"1"
    assert store.read("/tx/b") == b"2"


def test_transaction_retried_on_eagain(store: XenStore, xsd: XsdDouble) -> None:
    xsd.eagain_commits = 1
    calls = []

    def body(tx: XenStore) -> int:
        calls.append(1)
        tx.write("/tx/n", str(len(calls)).encode())
        return len(calls)

    assert store.transaction(body) == 2
    assert len(calls) == 2 and xsd.commits == 2
    assert store.read("/tx/n") == b"2"


def test_transaction_conflict_with_concurrent_writer(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/c", b"0")
    attempts = []

    def body(tx: XenStore) -> None:
        attempts.append(1)
        value = int(tx.read("/c"))
        if len(attempts) == 1:
            xsd.put("/c", b"10")  # someone else writes meanwhile: the commit must conflict
        tx.write("/c", str(value + 1).encode())

    store.transaction(body)
    assert len(attempts) == 2
    assert store.read("/c") == b"11"


def test_transaction_gives_up_after_retries(store: XenStore, xsd: XsdDouble) -> None:
    xsd.eagain_commits = 100
    with pytest.raises(XenStoreError) as info:
        store.transaction(lambda tx: tx.write("/g", b"1"), retries=2)
    assert info.value.errno_name == "EAGAIN" and xsd.commits == 3
    assert not store.exists("/g")


def test_transaction_aborts_on_exception(store: XenStore, xsd: XsdDouble) -> None:
    def body(tx: XenStore) -> None:
        tx.write("/ab", b"1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transaction(body)
    assert not store.exists("/ab")
    assert [a for op, a in xsd.requests if op == TX_END] == ["F"]


# -- the walk --------------------------------------------------------------------------------


def _expected_ls(xsd: XsdDouble, root: str) -> list[str]:
    return [f'{p} = "{escape_value(xsd.nodes[p].value)}"' for p in xsd.ls_f(root)]


def test_walk_equals_xenstore_ls_f(store: XenStore, xsd: XsdDouble) -> None:
    for d in range(12):
        for k in range(9):
            xsd.put(f"/bench/d{d:02d}/k{k:02d}", f"v{d}.{k}".encode())
    xsd.put("/bench/odd", b"\x00\xff\t\\ \"q\"")
    _fill(xsd, 300)  # /big needs DIRECTORY_PART inside the walk
    for root in ("/bench", "/"):
        lines = [format_ls_line(n) for n in store.walk(root, window=50)]
        assert lines == _expected_ls(xsd, root)
    assert "/" not in [n.path for n in store.walk("/")]  # the root is not listed


def test_walk_with_perms_and_unreadable_nodes(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/w/a", b"1", perms=["n0", "r3"])
    xsd.put("/w/hidden/x", b"2")
    xsd.deny.add("/w/hidden")
    nodes = {n.path: n for n in store.walk("/w", perms=True)}
    assert nodes["/w/a"].value == b"1" and str(nodes["/w/a"].perms) == "n0 r3"
    assert nodes["/w/hidden"].value is None  # xenstore-ls prints "/w/hidden:"
    assert "/w/hidden/x" not in nodes  # could not be listed
    assert format_ls_line(nodes["/w/hidden"]) == "/w/hidden:"


def test_walk_pipelines_requests(store: XenStore, xsd: XsdDouble) -> None:
    for d in range(10):
        for k in range(10):
            xsd.put(f"/p/d{d}/k{k}", b"v")
    xsd.delay[(READ, "/p/d0/k0")] = 0.3
    t0 = time.monotonic()
    nodes = store.walk("/p")
    # One delayed reply costs its delay once, not once per request after it.
    assert len(nodes) == 110 and time.monotonic() - t0 < 1.5


def test_walk_missing_root_raises(store: XenStore) -> None:
    with pytest.raises(XenStoreError) as info:
        store.walk("/absent")
    assert info.value.errno_name == "ENOENT" and info.value.path == "/absent"


def test_walk_timeout_names_the_stuck_request(xsd: XsdDouble) -> None:
    xsd.put("/s/a", b"1")
    xsd.drop.add((READ, "/s/a"))
    with XenStore.open(xsd.socket_path, timeout=0.3) as s:
        with pytest.raises(XenStoreError) as info:
            s.walk("/s")
        assert info.value.errno_name == "ETIMEDOUT"
        assert info.value.op == "READ" and info.value.path == "/s/a"


# -- discovery -------------------------------------------------------------------------------


def test_discovery_order_like_libxenstore() -> None:
    assert xs_conn.candidate_paths({"XENSTORED_PATH": "/x/y"}) == ["/x/y"]
    assert xs_conn.candidate_paths({"XENSTORED_RUNDIR": "/rd"}) == [
        "/rd/socket",
        "/run/xenstored/socket",
        "/dev/xen/xenbus",
        "/proc/xen/xenbus",
    ]
    assert xs_conn.candidate_paths({})[0] == "/var/run/xenstored/socket"


def test_xenstored_path_env_is_used(xsd: XsdDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENSTORED_PATH", xsd.socket_path)
    with XenStore.open() as s:
        assert s.transport == "socket" and s.path == xsd.socket_path


def test_no_xenstore_names_what_was_tried(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(dead))
    sock.close()  # a socket file nobody listens on: connection refused
    monkeypatch.setattr(
        xs_conn, "candidate_paths", lambda env=None: [str(tmp_path / "absent"), str(dead)]
    )
    with pytest.raises(NoXenError) as info:
        XenStore.open()
    assert info.value.exit_code == 2
    assert str(tmp_path / "absent") + " (absent)" in info.value.message
    assert str(dead) in info.value.message


def test_non_socket_path_is_treated_as_xenbus_device(tmp_path) -> None:
    # A character device / regular file goes the xenbus way (S_ISSOCK decides, like xs.c).
    fake = tmp_path / "xenbus"
    fake.write_bytes(b"")
    with XenStore.open(str(fake), timeout=0.3) as s:
        assert s.transport == "xenbus"
        with pytest.raises(XenStoreError) as info:
            s.read("/x")  # a regular file answers nothing sensible: EOF
        assert info.value.errno_name in ("ECONNRESET", "ETIMEDOUT")


def _xenbus_like(xsd: XsdDouble) -> xs_conn.XsConnection:
    """A connection to the double that behaves as the xenbus device transport."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(xsd.socket_path)
    return xs_conn.XsConnection("xenbus", xsd.socket_path, sock.detach(), lambda: None)


def test_xenbus_one_request_in_flight_one_message_per_write(
    xsd: XsdDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _xenbus_like(xsd)
    writes: list[int] = []
    real_write = os.write

    def spy(fd: int, data) -> int:  # type: ignore[no-untyped-def]
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    xsd.put("/a", b"1")
    xsd.delay[(READ, "/a")] = 0.2  # a slow first reply must hold back the second request
    ids = conn.submit([(READ, 0, b"/a\0"), (READ, 0, b"/bb\0")], time.monotonic() + 5)
    pending = set(ids)
    got: dict = {}
    while pending:
        got.update(conn.collect(pending, time.monotonic() + 5))
    assert writes == [16 + 3, 16 + 4]  # one message per write()
    first, second = xsd.request_times[-2:]
    assert second - first >= 0.18  # the second waited for the (delayed) first reply
    assert got[ids[0]].payload == b"1" and got[ids[1]].op == 16  # /bb: ERROR ENOENT
    conn.close()


def test_socket_walk_really_pipelines(store: XenStore, xsd: XsdDouble) -> None:
    for d in range(10):
        for k in range(10):
            xsd.put(f"/pp/d{d}/k{k}", b"v")
    xsd.max_batch = 0
    store.walk("/pp")
    assert xsd.max_batch > 10


def test_walk_over_xenbus_uses_a_pool_of_connections(
    xsd: XsdDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in range(10):
        for k in range(10):
            xsd.put(f"/xb/d{d}/k{k}", f"{d}.{k}".encode())
    monkeypatch.setattr(
        xs_conn.XsConnection, "open", classmethod(lambda cls, path=None: _xenbus_like(xsd))
    )
    with XenStore.open(timeout=5.0) as s:
        assert s.transport == "xenbus"
        xsd.max_batch = 0
        lines = [format_ls_line(n) for n in s.walk("/xb")]
        assert lines == _expected_ls(xsd, "/xb")
        assert xsd.max_batch == 1  # never two requests in flight on one xenbus fd
        assert xsd.max_clients >= 1 + 16
        # Inside a transaction the walk stays on the transaction's own connection.
        nodes = s.transaction(lambda tx: tx.walk("/xb"))
        assert [format_ls_line(n) for n in nodes] == lines


def test_xenbus_timeout_closes_the_connection(
        xsd: XsdDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    xsd.put("/slow", b"1")
    xsd.put("/fast", b"2")
    xsd.drop.add((READ, "/slow"))
    monkeypatch.setattr(
        xs_conn.XsConnection, "open", classmethod(lambda cls, path=None: _xenbus_like(xsd))
    )
    with XenStore(_xenbus_like(xsd), timeout=0.3) as s:
        first = s._conn
        with pytest.raises(XenStoreError) as info:
            s.read("/slow")
        assert info.value.errno_name == "ETIMEDOUT"
        assert first.closed and first.lost_reason is not None
        assert s.read("/fast") == b"2"  # a new connection, the same kind as at start
        assert s.transport == "xenbus" and s._conn is not first
