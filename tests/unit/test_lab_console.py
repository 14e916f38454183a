"""Splitting the serial console into the job's output and the lab's markers."""

from __future__ import annotations

from grantscope.lab.console import ConsoleStream, Marker, classify_prefix

NONCE = "0123abcd"


def feed_all(stream: ConsoleStream, chunks: list[bytes]) -> tuple[bytes, list[Marker]]:
    out = b""
    markers: list[Marker] = []
    for chunk in chunks:
        shown, got = stream.feed(chunk)
        out += shown
        markers += got
    return out, markers


def test_boot_noise_is_hidden_and_the_job_shown_between_markers() -> None:
    console = (b"(XEN) Xen version 4.17\r\n[ 0.0] Linux version\r\ngslab: starting xenstored\r\n"
               b"@@GSLAB-READY 0123abcd@@\r\nLinux gslab-dom0 6.1.0\r\n@@GSLAB-END 0123abcd 3@@\r\n"
               b"[ 9.0] reboot: Power down\r\n")
    out, markers = feed_all(ConsoleStream(NONCE), [console])
    assert out == b"Linux gslab-dom0 6.1.0\n"
    assert markers == [Marker("READY", ""), Marker("END", "3")]


def test_markers_split_across_chunks_are_found() -> None:
    data = b"@@GSLAB-READY 0123abcd@@\nhello\n@@GSLAB-FAIL 0123abcd stage2: no xenstored@@\n"
    stream = ConsoleStream(NONCE)
    out, markers = feed_all(stream, [data[i : i + 3] for i in range(0, len(data), 3)])
    assert out == b"hello\n"
    assert markers == [Marker("READY", ""), Marker("FAIL", "stage2: no xenstored")]


def test_a_marker_with_another_nonce_is_plain_output() -> None:
    stream = ConsoleStream(NONCE)
    out, markers = feed_all(stream, [b"@@GSLAB-READY 0123abcd@@\n", b"@@GSLAB-END ffff 0@@\n"])
    assert markers == [Marker("READY", "")]
    assert b"ffff" not in out      # held as marker-like, but never taken as the end


def test_partial_lines_pass_at_once_while_running() -> None:
    stream = ConsoleStream(NONCE)
    stream.feed(b"@@GSLAB-READY 0123abcd@@\n")
    assert stream.feed(b"....") == (b"....", [])
    assert stream.feed(b"..F") == (b"..F", [])
    assert stream.feed(b"\n") == (b"\n", [])


def test_xen_lines_during_the_job_stay_out_of_the_output() -> None:
    stream = ConsoleStream(NONCE)
    stream.feed(b"@@GSLAB-READY 0123abcd@@\n")
    out, _ = feed_all(stream, [b"(XE", b"N) grant table dump\n", b"(d3) guest says hi\n",
                               b"(not xen) is output\n", b"ok\r\n"])
    assert out == b"(not xen) is output\nok\n"


def test_classify_prefix() -> None:
    assert classify_prefix(b"(XEN) x") == "hold"
    assert classify_prefix(b"(XE") == "wait"
    assert classify_prefix(b"(") == "wait"
    assert classify_prefix(b"(d12") == "wait"
    assert classify_prefix(b"(d12) x") == "hold"
    assert classify_prefix(b"@@GSL") == "wait"
    assert classify_prefix(b"(dx") == "pass"
    assert classify_prefix(b"plain") == "pass"
