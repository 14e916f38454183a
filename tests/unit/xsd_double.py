"""A small in-process xenstored for unit tests: the real wire protocol on a Unix socket.

It keeps a tree in memory and answers DIRECTORY (E2BIG above 4096 bytes), DIRECTORY_PART,
READ, WRITE, MKDIR, RM, GET_PERMS, SET_PERMS, WATCH/UNWATCH (the first event fires at once),
TRANSACTION_START/END (snapshot per transaction, EAGAIN on conflict) and GET_DOMAIN_PATH, the
way C xenstored 4.17 does.  Fault knobs let a test delay or drop a reply, send a reply with an
unknown req_id, force EAGAIN on commits, change a directory between DIRECTORY_PART calls and
deny access to paths.  One thread accepts, one thread serves each client.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

HEADER = struct.Struct("=IIII")
DIRECTORY, READ, GET_PERMS, WATCH, UNWATCH = 1, 2, 3, 4, 5
TX_START, TX_END, GET_DOMAIN_PATH, WRITE, MKDIR, RM, SET_PERMS = 6, 7, 10, 11, 12, 13, 14
WATCH_EVENT, ERROR, DIRECTORY_PART, CONTROL, IS_DOMAIN_INTRODUCED = 15, 16, 22, 0, 17
PAYLOAD_MAX = 4096
_VALID = re.compile(r"^[A-Za-z0-9\-/_@]+$")


@dataclass
class Node:
    value: bytes = b""
    perms: list[str] = field(default_factory=lambda: ["n0"])
    children: list[str] = field(default_factory=list)
    gen: int = 0

    def copy(self) -> Node:
        return Node(self.value, list(self.perms), list(self.children), self.gen)


class XsError(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass
class _Tx:
    nodes: dict[str, Node]
    start_gen: int
    changed: list[str] = field(default_factory=list)


class _Client:
    def __init__(self, server: XsdDouble, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.wlock = threading.Lock()
        self.watches: list[tuple[str, bytes]] = []

    def send(self, op: int, req_id: int, tx_id: int, payload: bytes) -> None:
        with self.wlock, contextlib.suppress(OSError):
            self.sock.sendall(HEADER.pack(op, req_id, tx_id, len(payload)) + payload)

    def serve(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                handled = 0
                while len(buf) >= HEADER.size:
                    op, req_id, tx_id, length = HEADER.unpack_from(buf)
                    if length > PAYLOAD_MAX:  # like xenstored: drop the connection
                        self.sock.close()
                        return
                    if len(buf) < HEADER.size + length:
                        break
                    payload = buf[HEADER.size : HEADER.size + length]
                    buf = buf[HEADER.size + length :]
                    self.server._handle(self, op, req_id, tx_id, payload)
                    handled += 1
                # More than one request per read means the client had several in flight.
                self.server.max_batch = max(self.server.max_batch, handled)
        except OSError:
            pass
        finally:
            self.server._drop_client(self)


class XsdDouble:
    """The fake xenstored.  Use as a context manager; ``socket_path`` is what to connect to."""

    def __init__(self, directory: str):
        self.socket_path = os.path.join(directory, "socket")
        self.lock = threading.RLock()
        self.nodes: dict[str, Node] = {"/": Node()}
        self.gen = 0  # bumped by every change, inside transactions too (node generations)
        self.commit_gen = 0  # bumped by every change visible outside transactions
        self.txs: dict[int, _Tx] = {}
        self.next_tx = 1
        self.clients: list[_Client] = []
        # Fault knobs (tests set these directly).
        self.delay: dict[tuple[int, str], float] = {}  # (op, path) -> seconds before replying
        self.drop: set[tuple[int, str]] = set()  # (op, path) -> never reply
        self.unknown_reply_next = 0  # send this many bogus replies before the next answer
        self.eagain_commits = 0  # commits that answer EAGAIN regardless
        self.change_between_parts: set[str] = set()  # add a child after the first part
        self.deny: set[str] = set()  # READ/DIRECTORY of these paths say EACCES
        self.no_directory_part = False  # answer DIRECTORY_PART with ENOSYS, like oxenstored
        # CONTROL requests it answers: (arg, arg, ...) -> text (others: EINVAL, as xenstored)
        self.control: dict[tuple[str, ...], bytes] = {}
        # Domains IS_DOMAIN_INTRODUCED says are live (None: the request is not answered)
        self.introduced: set[int] | None = None
        self.requests: list[tuple[int, str]] = []  # (op, first argument) of every request
        self.request_times: list[float] = []  # when each of them arrived
        self.commits = 0
        self.max_batch = 0  # most requests that arrived together (pipelining depth seen)
        self.max_clients = 0  # most clients connected at once
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    # -- lifecycle -----------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            client = _Client(self, sock)
            with self.lock:
                self.clients.append(client)
                self.max_clients = max(self.max_clients, len(self.clients))
            threading.Thread(target=client.serve, daemon=True).start()

    def _drop_client(self, client: _Client) -> None:
        with self.lock:
            if client in self.clients:
                self.clients.remove(client)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self.lock:
            clients = list(self.clients)
        for c in clients:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
            c.sock.close()

    def __enter__(self) -> XsdDouble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- direct access for tests ---------------------------------------------------------

    def put(self, path: str, value: bytes, perms: list[str] | None = None) -> None:
        """Write a node without going through the protocol (fires watches)."""
        with self.lock:
            self._write(self.nodes, path, value, [])
            self.commit_gen += 1
            if perms is not None:
                self.nodes[path].perms = list(perms)
            self._fire(path)

    def ls_f(self, root: str) -> list[str]:
        """What ``xenstore-ls -f root`` would print (escaping done by the caller's function)."""
        out: list[str] = []
        with self.lock:
            def rec(path: str) -> None:
                for name in self.nodes[path].children:
                    child = path.rstrip("/") + "/" + name
                    out.append(child)
                    rec(child)
            rec(root)
        return out

    # -- tree operations -----------------------------------------------------------------

    @staticmethod
    def _norm(raw: bytes) -> str:
        path = raw.decode("ascii", "replace")
        if not path.startswith("/") and not path.startswith("@"):
            path = "/local/domain/0/" + path
        if len(path) > 1:
            path = path.rstrip("/")
        if not _VALID.match(path) or "//" in path:
            raise XsError("EINVAL")
        return path

    def _parent(self, path: str) -> str:
        return path.rsplit("/", 1)[0] or "/"

    def _write(self, nodes: dict[str, Node], path: str, value: bytes, changed: list[str]) -> None:
        self._ensure(nodes, path, changed)
        self.gen += 1
        nodes[path].value = value
        nodes[path].gen = self.gen
        changed.append(path)

    def _ensure(self, nodes: dict[str, Node], path: str, changed: list[str]) -> None:
        if path in nodes:
            return
        parent = self._parent(path)
        self._ensure(nodes, parent, changed)
        self.gen += 1
        nodes[path] = Node(perms=list(nodes[parent].perms), gen=self.gen)
        nodes[parent].children.append(path.rsplit("/", 1)[1])
        nodes[parent].gen = self.gen
        # Like xenstored, only the requested path fires, not implicitly created parents.

    def _rm(self, nodes: dict[str, Node], path: str, changed: list[str]) -> None:
        if path not in nodes:
            if self._parent(path) not in nodes:
                raise XsError("ENOENT")
            return
        if path == "/":
            raise XsError("EINVAL")
        for name in list(nodes[path].children):
            self._rm(nodes, path.rstrip("/") + "/" + name, changed)
        del nodes[path]
        parent = self._parent(path)
        nodes[parent].children.remove(path.rsplit("/", 1)[1])
        self.gen += 1
        nodes[parent].gen = self.gen
        changed.append(path)

    def _fire(self, path: str) -> None:
        for client in list(self.clients):
            for wpath, token in list(client.watches):
                if (
                    path == wpath
                    or path.startswith(wpath.rstrip("/") + "/")
                    or wpath.startswith(path.rstrip("/") + "/")
                ):
                    client.send(WATCH_EVENT, 0, 0, path.encode() + b"\0" + token + b"\0")

    # -- protocol ------------------------------------------------------------------------

    def _handle(self, client: _Client, op: int, req_id: int, tx_id: int, payload: bytes) -> None:
        args = payload.split(b"\0")
        first = args[0].decode("ascii", "replace") if args else ""
        with self.lock:
            self.requests.append((op, first))
            self.request_times.append(time.monotonic())
            key = (op, first)
            for _ in range(self.unknown_reply_next):
                client.send(READ, 0xDEAD0000 + req_id, 0, b"bogus")
            self.unknown_reply_next = 0
            if key in self.drop:
                return
            try:
                rop, body, fire = self._answer(client, op, tx_id, payload, args)
            except XsError as err:
                rop, body, fire = ERROR, err.name.encode() + b"\0", []
            delay = self.delay.get(key)
        if delay:
            timer = threading.Timer(delay, client.send, (rop, req_id, tx_id, body))
            timer.daemon = True
            timer.start()
        else:
            client.send(rop, req_id, tx_id, body)
        if op == WATCH and rop == WATCH:  # xenstored fires once at once, for the path itself
            client.send(WATCH_EVENT, 0, 0, args[0] + b"\0" + args[1] + b"\0")
        with self.lock:
            for path in fire:
                self._fire(path)

    def _answer(
        self, client: _Client, op: int, tx_id: int, payload: bytes, args: list[bytes]
    ) -> tuple[int, bytes, list[str]]:
        if tx_id and tx_id not in self.txs:
            raise XsError("ENOENT")
        tx = self.txs.get(tx_id) if tx_id else None
        nodes = tx.nodes if tx else self.nodes
        changed: list[str] = []
        ok = b"OK\0"
        if op == READ:
            path = self._norm(args[0])
            if path in self.deny:
                raise XsError("EACCES")
            if path not in nodes:
                raise XsError("ENOENT")
            return READ, nodes[path].value, []
        if op == DIRECTORY:
            path = self._norm(args[0])
            if path in self.deny:
                raise XsError("EACCES")
            if path not in nodes:
                raise XsError("ENOENT")
            body = b"".join(c.encode() + b"\0" for c in nodes[path].children)
            if len(body) > PAYLOAD_MAX:
                raise XsError("E2BIG")
            return DIRECTORY, body, []
        if op == DIRECTORY_PART:
            if self.no_directory_part:
                raise XsError("ENOSYS")
            path = self._norm(args[0])
            if path not in nodes:
                raise XsError("ENOENT")
            off = int(args[1] or b"0")
            node = nodes[path]
            if off > 0 and path in self.change_between_parts:
                self.change_between_parts.discard(path)
                self._ensure(nodes, path.rstrip("/") + "/zz-added-meanwhile", changed)
            children = b"".join(c.encode() + b"\0" for c in node.children)
            gen = str(node.gen).encode() + b"\0"
            if off >= len(children):
                return DIRECTORY_PART, gen + b"\0", changed
            maxlen = PAYLOAD_MAX - len(gen) - 1
            length = 0
            while True:
                end = children.index(b"\0", off + length)
                name_len = end - (off + length)
                if length + name_len >= maxlen:
                    break
                length += name_len + 1
                if off + length == len(children):
                    break
            body = gen + children[off : off + length]
            if off + length == len(children):
                body += b"\0"
            return DIRECTORY_PART, body, changed
        if op == WRITE:
            path = self._norm(args[0])
            value = payload[len(args[0]) + 1 :]
            self._write(nodes, path, value, changed)
        elif op == MKDIR:
            path = self._norm(args[0])
            self._ensure(nodes, path, changed)
            changed.append(path)
        elif op == RM:
            self._rm(nodes, self._norm(args[0]), changed)
        elif op == GET_PERMS:
            path = self._norm(args[0])
            if path not in nodes:
                raise XsError("ENOENT")
            return GET_PERMS, b"".join(p.encode() + b"\0" for p in nodes[path].perms), []
        elif op == SET_PERMS:
            path = self._norm(args[0])
            perms = [a.decode() for a in args[1:] if a]
            if not perms or any(not re.match(r"^[rwbn][0-9]+$", p) for p in perms):
                raise XsError("EINVAL")
            if path not in nodes:
                raise XsError("ENOENT")
            nodes[path].perms = perms
            changed.append(path)
        elif op == WATCH:
            path = args[0].decode()
            token = args[1]
            client.watches.append((path, token))
            return WATCH, ok, []
        elif op == UNWATCH:
            item = (args[0].decode(), args[1])
            if item not in client.watches:
                raise XsError("ENOENT")
            client.watches.remove(item)
            return UNWATCH, ok, []
        elif op == TX_START:
            tid = self.next_tx
            self.next_tx += 1
            self.txs[tid] = _Tx({k: v.copy() for k, v in self.nodes.items()}, self.commit_gen)
            return TX_START, str(tid).encode() + b"\0", []
        elif op == TX_END:
            if tx is None:
                raise XsError("EINVAL")
            del self.txs[tx_id]
            if args[0] != b"T":
                return TX_END, ok, []
            self.commits += 1
            if self.eagain_commits > 0:
                self.eagain_commits -= 1
                raise XsError("EAGAIN")
            if self.commit_gen != tx.start_gen and tx.changed:
                raise XsError("EAGAIN")
            self.nodes = tx.nodes
            self.commit_gen += 1
            return TX_END, ok, tx.changed
        elif op == GET_DOMAIN_PATH:
            return GET_DOMAIN_PATH, b"/local/domain/" + args[0] + b"\0", []
        elif op == IS_DOMAIN_INTRODUCED and self.introduced is not None:
            return op, (b"T" if int(args[0]) in self.introduced else b"F") + b"\0", []
        elif op == CONTROL:
            asked = tuple(a.decode("ascii", "replace") for a in args if a)
            if asked not in self.control:
                raise XsError("EINVAL")
            return CONTROL, self.control[asked] + b"\0", []
        else:
            raise XsError("ENOSYS")
        if tx is not None:
            tx.changed.extend(changed)
            return op, ok, []
        if changed:
            self.commit_gen += 1
        return op, ok, changed


@contextlib.contextmanager
def running_double() -> Iterator[XsdDouble]:
    """A started double in a short temp dir (Unix socket paths are limited to 107 bytes)."""
    directory = tempfile.mkdtemp(prefix="xsd", dir="/tmp")
    try:
        with XsdDouble(directory) as double:
            yield double
    finally:
        shutil.rmtree(directory, ignore_errors=True)
