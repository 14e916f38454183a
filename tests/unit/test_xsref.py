"""``xs:PATH`` number specs (grantscope.xen.xsref) against the XenStore double."""

from __future__ import annotations  # the X | Y annotations below: 3.9 cannot evaluate them

from collections.abc import Iterator

import pytest
from xsd_double import XsdDouble, running_double

from grantscope.errors import UsageError
from grantscope.xen.xenstore import XenStore
from grantscope.xen.xsref import parse_number_spec, resolve_number, resolve_numbers


@pytest.fixture
def xsd() -> Iterator[XsdDouble]:
    with running_double() as double:
        yield double


@pytest.fixture
def store(xsd: XsdDouble) -> Iterator[XenStore]:
    with XenStore.open(xsd.socket_path, timeout=2.0) as s:
        yield s


@pytest.mark.parametrize(
    ("text", "spec"),
    [("12", 12), ("0", 0), (" 7 ", 7), ("0x1f", 31), ("xs:/local/domain/3/x", "/local/domain/3/x"),
     ("xs:device/vif/0/tx-ring-ref", "device/vif/0/tx-ring-ref")],
)
def test_parse_number_spec(text: str, spec: int | str) -> None:
    assert parse_number_spec(text) == spec


@pytest.mark.parametrize("text", ["", "-1", "1.5", "ten", "xs:", "0x", "12abc", "x:/a"])
def test_parse_number_spec_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_number_spec(text)
    assert info.value.exit_code == 2 and repr(text) in info.value.message


def test_resolve_literal_and_path(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/local/domain/3/data/gref", b"8")
    xsd.put("/local/domain/3/data/port", b"41\n")  # written with echo: newline tolerated
    assert resolve_number(5, store, what="gref") == 5
    assert resolve_number("/local/domain/3/data/gref", store, what="gref") == 8
    assert resolve_number(parse_number_spec("xs:/local/domain/3/data/port"), store,
                          what="port") == 41


def test_resolve_missing_node_names_path(store: XenStore) -> None:
    with pytest.raises(UsageError) as info:
        resolve_number("/local/domain/9/nothing", store, what="gref")
    assert "/local/domain/9/nothing" in info.value.message
    assert "does not exist" in info.value.message


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(b"abc", '"abc"'), (b"12\x00", '"12\\000"'), (b"\xff1", '"\\xff1"'), (b"", '""'),
     (b"-3", '"-3"'), (b"1 2", '"1 2"')],
)
def test_resolve_non_decimal_names_path_and_bytes(
    store: XenStore, xsd: XsdDouble, raw: bytes, shown: str
) -> None:
    xsd.put("/v", raw)
    with pytest.raises(UsageError) as info:
        resolve_number("/v", store, what="port")
    assert "/v" in info.value.message and shown in info.value.message
    assert "not a decimal number" in info.value.message


def test_resolve_maximum(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/d", b"70000")
    with pytest.raises(UsageError, match="70000"):
        resolve_number("/d", store, what="domid", maximum=0xFFFF)
    with pytest.raises(UsageError, match="70000"):
        resolve_number(70000, store, what="domid", maximum=0xFFFF)


def test_resolve_numbers_several_grefs(store: XenStore, xsd: XsdDouble) -> None:
    xsd.put("/r", b"8 9  10")
    assert resolve_numbers("/r", store, what="gref") == [8, 9, 10]
    assert resolve_numbers(4, store, what="gref") == [4]
    xsd.put("/bad", b"8 x9")
    with pytest.raises(UsageError) as info:
        resolve_numbers("/bad", store, what="gref")
    assert '"x9"' in info.value.message and "/bad" in info.value.message
    xsd.put("/empty", b"")
    with pytest.raises(UsageError, match="/empty"):
        resolve_numbers("/empty", store, what="gref")
