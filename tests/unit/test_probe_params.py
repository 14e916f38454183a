"""Checking KEY=VALUE probe parameters: kinds, xs:PATH, self, defaults, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantscope.errors import UsageError
from grantscope.probing.params import (
    SELF,
    Param,
    XsRef,
    parse_value,
    parse_values,
    split_assignments,
)

GREF = Param("gref", "gref", None, "a gref")
DOMID = Param("domid", "domid", None, "a domid")


def test_numbers_xs_paths_and_self() -> None:
    assert parse_value(GREF, "8") == 8
    assert parse_value(GREF, "xs:/local/domain/1/data/gref") == XsRef("/local/domain/1/data/gref")
    assert parse_value(DOMID, "self") is SELF
    assert parse_value(GREF, "") is None


@pytest.mark.parametrize("text", ["0x10", "-1", "8.0", "eight", "self", "xs:", "٣"])
def test_bad_gref_is_a_usage_error_naming_the_value(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_value(GREF, text)
    assert repr(text) in info.value.message and info.value.exit_code == 2


def test_ranges() -> None:
    assert parse_value(DOMID, "65535") == 65535
    with pytest.raises(UsageError, match="out of range"):
        parse_value(DOMID, "65536")
    with pytest.raises(UsageError, match="out of range"):
        parse_value(GREF, str(1 << 32))


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [("bool", "yes", True), ("bool", "OFF", False), ("float", "0.5", 0.5), ("int", "-3", -3),
     ("str", "", ""), ("xspath", "/a/b", "/a/b")],
)
def test_other_kinds(kind: str, text: str, value: object) -> None:
    assert parse_value(Param("p", kind, None, "h"), text) == value


@pytest.mark.parametrize(
    ("kind", "text"),
    [("bool", "maybe"), ("float", "nan"), ("float", "-1"), ("int", "1.5"), ("xspath", "rel/p")],
)
def test_other_kinds_reject_bad_input(kind: str, text: str) -> None:
    with pytest.raises(UsageError):
        parse_value(Param("p", kind, None, "h"), text)


def test_parse_values_defaults_required_and_unknown() -> None:
    params = (GREF, Param("count", "int", "2", "n"))
    assert parse_values("p", params, {"gref": "3"}) == {"gref": 3, "count": 2}
    with pytest.raises(UsageError, match="needs gref="):
        parse_values("p", params, {})
    with pytest.raises(UsageError, match="no parameter 'grf'") as info:
        parse_values("p", params, {"gref": "1", "grf": "2"})
    assert "gref, count" in info.value.explanation


def test_split_assignments() -> None:
    assert split_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="not KEY=VALUE"):
        split_assignments(["gref"])
    with pytest.raises(UsageError, match="twice"):
        split_assignments(["a=1", "a=2"])


@given(st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_any_u32_decimal_is_a_gref(number: int) -> None:
    assert parse_value(GREF, str(number)) == number


@given(st.text(max_size=12))
def test_gref_parser_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        value = parse_value(GREF, text)
    except UsageError:
        return
    assert value is None or isinstance(value, XsRef) or (
        text.isascii() and text.isdigit() and int(text) == value
    )
