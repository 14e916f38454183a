"""Pure parts of the XenStore client: framing, value escaping, permissions, ls lines."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantscope.xen.xenstore import Perms, XenStoreError, XsNode, escape_value, unescape_value
from grantscope.xen.xs_walk import child_path, format_ls_line
from grantscope.xen.xs_wire import (
    HEADER,
    Deframer,
    FramingError,
    Op,
    Packet,
    join_args,
    op_name,
    split_strings,
)

# -- framing -------------------------------------------------------------------------------


def test_header_is_xsd_sockmsg_native_u32s() -> None:
    assert HEADER.size == 16
    data = Packet(Op.READ, 7, 3, b"/a\0").encode()
    assert data == struct.pack("=IIII", 2, 7, 3, 3) + b"/a\0"


def test_op_numbers_match_xs_wire_h() -> None:
    assert (Op.DIRECTORY, Op.READ, Op.WATCH_EVENT, Op.ERROR, Op.DIRECTORY_PART) == (
        1, 2, 15, 16, 22,
    )
    assert op_name(22) == "DIRECTORY_PART" and op_name(99) == "OP99"


def test_deframer_handles_any_chunking() -> None:
    packets = [
        Packet(Op.READ, 1, 0, b"value\0with nul"),
        Packet(Op.WATCH_EVENT, 0, 0, b"/a\0tok\0"),
        Packet(Op.WRITE, 2, 5, b""),
        Packet(Op.DIRECTORY, 3, 0, b"x" * 5000),
    ]
    stream = b"".join(p.encode() for p in packets)
    for chunk in (1, 3, 16, 17, 1000, len(stream)):
        d = Deframer()
        out = []
        for i in range(0, len(stream), chunk):
            out += d.feed(stream[i : i + chunk])
        assert out == packets, chunk
        assert d.pending == 0


def test_deframer_keeps_incomplete_message() -> None:
    d = Deframer()
    data = Packet(Op.READ, 9, 0, b"abc").encode()
    assert d.feed(data[:-1]) == []
    assert d.pending == len(data) - 1
    assert d.feed(data[-1:]) == [Packet(Op.READ, 9, 0, b"abc")]


def test_deframer_rejects_absurd_length() -> None:
    with pytest.raises(FramingError):
        Deframer().feed(struct.pack("=IIII", 2, 1, 0, 1 << 30))


def test_strings_helpers() -> None:
    assert join_args(b"/p", b"12") == b"/p\x0012\x00"
    assert split_strings(b"a\0b\0") == [b"a", b"b"]
    assert split_strings(b"a\0b") == [b"a", b"b"]
    assert split_strings(b"") == []


# -- escaping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"plain text ~", "plain text ~"),
        (b'quote " stays', 'quote " stays'),
        (b"back\\slash", "back\\\\slash"),
        (b"\t\n\r", "\\t\\n\\r"),
        (b"\x00\x01\x07", "\\000\\001\\007"),  # below 010: three octal digits
        (b"\x08\x0b\x1f\x7f", "\\x08\\x0b\\x1f\\x7f"),  # otherwise \xHH
        (b"\xc3\xa9\xff", "\\xc3\\xa9\\xff"),  # non-ASCII bytes, one by one
        (b"", ""),
    ],
)
def test_escape_value_matches_sanitise_value(raw: bytes, shown: str) -> None:
    assert escape_value(raw) == shown


@given(st.binary(max_size=200))
def test_escape_round_trips(raw: bytes) -> None:
    text = escape_value(raw)
    assert text.isascii() and "\n" not in text
    assert unescape_value(text) == raw


def test_unescape_like_unsanitise_value() -> None:
    assert unescape_value("a\\x41\\101\\q") == b"aAAq"  # unknown escape keeps the character
    assert unescape_value("\\x4") == b"\x04"  # up to two hex digits
    assert unescape_value("\\xzz") == b"xzz"  # no digits: the x itself
    assert unescape_value("end\\") == b"end\x00"  # C stores the terminator
    assert unescape_value("é") == "é".encode()


# -- permissions ---------------------------------------------------------------------------


def test_perms_parse_owner_default_and_acl() -> None:
    p = Perms.parse([b"n0", b"r1", b"b5"])
    assert p == Perms(owner=0, default="n", acl=((1, "r"), (5, "b")))
    assert str(p) == "n0 r1 b5"
    assert p.entries() == ["n0", "r1", "b5"]
    assert Perms.from_string("n0,r1,b5") == p == Perms.from_string("n0 r1 b5")


def test_perms_allows() -> None:
    p = Perms.parse(["r3", "w4", "n7"])
    assert p.allows(3, "w")  # the owner can always write
    assert p.allows(4, "w") and not p.allows(4, "r")
    assert not p.allows(7, "r")
    assert p.allows(9, "r") and not p.allows(9, "w")  # default letter r


@pytest.mark.parametrize("bad", [[], ["x1"], ["r"], ["r-1"], ["rr"], ["b1x"]])
def test_perms_reject_malformed(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        Perms.parse(bad)


# -- ls lines and errors -------------------------------------------------------------------


def test_format_ls_line_like_xenstore_ls_f() -> None:
    assert format_ls_line(XsNode("/a/b", b'v "1"\n')) == '/a/b = "v "1"\\n"'
    assert format_ls_line(XsNode("/a/b", None)) == "/a/b:"
    node = XsNode("/a", b"x", Perms.parse(["n0", "r1"]))
    assert format_ls_line(node, with_perms=True) == '/a = "x"   (n0,r1)'
    assert format_ls_line(node) == '/a = "x"'


def test_child_path() -> None:
    assert child_path("/", "local") == "/local"
    assert child_path("/local", "domain") == "/local/domain"
    assert child_path("/local/", "domain") == "/local/domain"


def test_xenstore_error_carries_op_path_and_explanation() -> None:
    err = XenStoreError.from_reply("EACCES", "READ", "/local/domain/0/x")
    assert err.exit_code == 1
    assert "READ /local/domain/0/x" in err.message and "EACCES" in err.message
    assert "permission" in err.explanation.lower()
    data = err.to_json()
    assert data["errno_name"] == "EACCES" and data["op"] == "READ"
    assert data["path"] == "/local/domain/0/x"
    assert "quota" in XenStoreError.from_reply("ENOSPC", "WRITE", "/x").explanation
    assert "4096" in XenStoreError.from_reply("E2BIG", "DIRECTORY", "/x").explanation
