"""The strict decoder that turns untrusted bundle JSON back into snapshot dataclasses."""

from __future__ import annotations

import pytest

from grantscope.bundle.codec import decode
from grantscope.bundle.collectors import to_jsonable
from grantscope.bundle.format import BundleError
from grantscope.host.base import EventCounter, GrantsSnapshot, HvGrant, OwnGrant


def test_round_trip_of_a_snapshot() -> None:
    snap = GrantsSnapshot(
        own=(OwnGrant("map", 3, (8, 9), False, "probe"),),
        processes=(),
        hypervisor=(HvGrant(1, 8, None, "0x19"),),
        taken_at=2.0,
    )
    assert decode(GrantsSnapshot, to_jsonable(snap), "g") == snap


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"irq": True, "counts": [1], "chip": "c", "name": "n"}, "expected an integer"),
        ({"irq": 1, "counts": [1.5], "chip": "c", "name": "n"}, "expected an integer"),
        ({"irq": 1, "counts": "1", "chip": "c", "name": "n"}, "expected a list"),
        ({"irq": 1, "counts": [1], "chip": 7, "name": "n"}, "expected a string"),
        ({"irq": 1, "counts": [1], "chip": "c"}, "lacks field 'name'"),
        ([1, 2], "expected an object"),
    ],
)
def test_wrong_shapes_are_refused(obj: object, says: str) -> None:
    with pytest.raises(BundleError, match=says):
        decode(EventCounter, obj, "events.json")


def test_literal_and_optional_fields() -> None:
    row = {"kind": "steal", "domid": 1, "grefs": [], "writable": True, "owner": "x"}
    with pytest.raises(BundleError, match="is not one of"):
        decode(OwnGrant, row, "grants.json")
    ok = decode(HvGrant, {"granter": 1, "ref": 2, "mapper": None, "flags": "", "extra": 1}, "g")
    assert ok == HvGrant(1, 2, None, "", None)  # unknown fields ignored, defaults filled
