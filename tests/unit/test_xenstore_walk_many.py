"""XenStore.walk_many: several subtrees and single values in one pipeline, over the wire."""

from __future__ import annotations

from xsd_double import running_double

from grantscope.xen.xenstore import XenStore


def test_subtrees_and_values_in_one_pipeline_missing_ones_left_out() -> None:
    with running_double() as xsd:
        for path, value in (("/a/x/1", b"one"), ("/a/x/2", b"two"), ("/b/y", b"why"),
                            ("/c/name", b"see")):
            xsd.put(path, value)
        with XenStore.open(xsd.socket_path) as store:
            trees, values = store.walk_many(["/a", "/b", "/nope"],
                                            reads=["/c/name", "/c/absent"])
            assert [n.path for n in trees["/a"]] == store_order(store, "/a")
        assert set(trees) == {"/a", "/b"}  # a root that is not there is left out
        assert [(n.path, n.value) for n in trees["/b"]] == [("/b/y", b"why")]
        assert values == {"/c/name": b"see", "/c/absent": None}
        # All three roots and both reads were in flight together.
        assert xsd.max_batch >= 5


def store_order(store: XenStore, root: str) -> list[str]:
    """The order walk() gives (xenstore-ls -f order), for comparison."""
    return [n.path for n in store.walk(root)]
