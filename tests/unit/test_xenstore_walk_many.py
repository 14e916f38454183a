"""XenStore.list_many and read_many: many directories or values in one pipeline, over the
wire."""

from __future__ import annotations

import pytest
from xsd_double import running_double

from grantscope.xen.xenstore import XenStore, XenStoreError


def test_directories_and_values_in_one_pipeline_missing_ones_left_out() -> None:
    with running_double() as xsd:
        for path, value in (("/a/x/1", b"one"), ("/a/x/2", b"two"), ("/b/y", b"why"),
                            ("/c/name", b"see")):
            xsd.put(path, value)
        with XenStore.open(xsd.socket_path) as store:
            listed = store.list_many(["/a", "/a/x", "/b", "/nope"])
            values = store.read_many(["/c/name", "/c/absent", "/b/y"])
        assert listed == {"/a": ["x"], "/a/x": ["1", "2"], "/b": ["y"]}  # /nope left out
        assert values == {"/c/name": b"see", "/c/absent": None, "/b/y": b"why"}
        assert xsd.max_batch >= 4  # all four listings were in flight together


def test_a_directory_too_big_for_one_reply_is_listed_in_parts() -> None:
    with running_double() as xsd:
        names = [f"child-with-a-long-name-{i:04d}" for i in range(300)]  # > 4096 bytes
        for name in names:
            xsd.put(f"/big/{name}", b"")
        with XenStore.open(xsd.socket_path) as store:
            assert store.list_many(["/big"]) == {"/big": names}


def test_a_node_we_may_not_see_is_absent_and_other_errors_raise() -> None:
    with running_double() as xsd:
        xsd.put("/a/secret", b"x")
        for i in range(300):
            xsd.put(f"/big/child-with-a-long-name-{i:04d}", b"")
        xsd.deny.add("/a/secret")
        xsd.no_directory_part = True  # like oxenstored over xenbus
        with XenStore.open(xsd.socket_path) as store:
            assert store.read_many(["/a/secret"]) == {"/a/secret": None}
            assert store.list_many(["/a/secret"]) == {}
            with pytest.raises(XenStoreError) as err:
                store.list_many(["/a", "/big"])
        assert err.value.path == "/big"  # too big, and no DIRECTORY_PART to list it in parts
