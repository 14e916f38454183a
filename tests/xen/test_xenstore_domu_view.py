"""XenStore permissions as a domU sees them, against what grantscope reads from dom0.

dom0 writes nodes with chosen permissions through grantscope's client; a PV domU (the lab's
C peer, scenario ``read``, over /dev/xen/xenbus) reads and writes each one and publishes what
xenstored told it. What the domU was allowed must match the parsed ``Perms``: dom0 is
privileged and sees everything, so only the domU's side shows the permissions at work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from grantscope.lab.domu import DomU
from grantscope.xen.xenstore import Perms, XenStore

pytestmark = pytest.mark.xen

TOP = f"/grantscope-perm-test-{os.getpid()}"


@pytest.fixture
def store() -> Iterator[XenStore]:
    with XenStore.open(timeout=30.0) as s:
        yield s
        if s.exists(TOP):
            s.rm(TOP)


def test_domu_sees_what_the_permissions_say(
    store: XenStore, domu_factory: Callable[..., DomU]
) -> None:
    peer = domu_factory("read")
    d = peer.domid
    cases = {
        # path: (perms, may the domU read?, may it write?)
        f"{TOP}/private": (Perms(0, "n", ()), False, False),
        f"{TOP}/readable": (Perms(0, "n", ((d, "r"),)), True, False),
        f"{TOP}/shared": (Perms(0, "n", ((d, "b"),)), True, True),
        f"{TOP}/owned-by-domu": (Perms(d, "n", ()), True, True),
        f"{TOP}/world-readable": (Perms(0, "r", ()), True, False),
    }
    store.mkdir(TOP)
    for path, (perms, _, _) in cases.items():
        store.write(path, b"v-" + path.rsplit("/", 1)[1].encode())
        store.set_perms(path, perms)
        # what grantscope reads back is what it was told to set
        assert store.get_perms(path) == perms
    # the parent stays readable by the domU, or every lookup below it fails the same way
    store.set_perms(TOP, Perms(0, "r", ()))

    paths = list(cases)
    peer.write_key("data/paths", " ".join(paths))
    peer.wait_value("data/status", "done", timeout=120)

    for i, path in enumerate(paths):
        _, may_read, may_write = cases[path]
        read = peer.read_key(f"data/read-{i}")
        wrote = peer.read_key(f"data/write-{i}")
        if may_read:
            assert read == "ok v-" + path.rsplit("/", 1)[1], (path, read)
        else:
            assert read == "error EACCES", (path, read)
        assert wrote == ("ok" if may_write else "error EACCES"), (path, wrote)
        # dom0 is privileged: it reads every node, and sees exactly the writes that were allowed
        original = b"v-" + path.rsplit("/", 1)[1].encode()
        assert store.read(path) == (b"x" if may_write else original), path
