"""key=value words on the kernel command line: how the host passes parameters to guests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantscope.lab.cmdline import decode_params, decode_value, encode_params, encode_value


def test_safe_values_pass_through() -> None:
    assert encode_value("data/offer") == "data/offer"
    assert encode_value("/local/domain/3:x-y_z.1") == "/local/domain/3:x-y_z.1"


def test_unsafe_bytes_are_percent_encoded() -> None:
    assert encode_value("hello world") == "hello%20world"
    assert encode_value('a"b,c=d%') == "a%22b%2Cc%3Dd%25"
    assert encode_value("é") == "%C3%A9"


@given(st.text(max_size=80))
def test_encode_decode_round_trip(value: str) -> None:
    word = encode_value(value)
    assert " " not in word and '"' not in word and "," not in word and "=" not in word
    assert decode_value(word) == value


def test_malformed_escape_is_kept_literally() -> None:
    assert decode_value("100%") == "100%"
    assert decode_value("%zz") == "%zz"


def test_params_round_trip_through_a_command_line() -> None:
    words = encode_params({"scenario": "offer", "text": "hello there, dom0"})
    assert words == "gs_scenario=offer gs_text=hello%20there%2C%20dom0"
    cmdline = f"console=hvc0 rdinit=/init {words} loglevel=4"
    assert decode_params(cmdline) == {"scenario": "offer", "text": "hello there, dom0"}


def test_decode_ignores_other_words_and_later_words_win() -> None:
    cmdline = "gs_a=1 gsx=2 gs_=3 gs_b gs_a=4 root=/dev/x gs_c=%41"
    assert decode_params(cmdline) == {"a": "4", "c": "A"}


@pytest.mark.parametrize("key", ["a.b", "with space", "", "1x", "x=y"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="parameter name"):
        encode_params({key: "v"})
