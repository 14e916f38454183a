"""``grantscope xs ...`` run in-process through grantscope.cli.main, against the double."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from xsd_double import XsdDouble, running_double

from grantscope.cli import main


@pytest.fixture
def xsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[XsdDouble]:
    with running_double() as double:
        monkeypatch.setenv("XENSTORED_PATH", double.socket_path)
        yield double


def test_ls_recursive_prints_xenstore_ls_f_lines(xsd: XsdDouble, capsys) -> None:
    xsd.put("/t/a", b"1")
    xsd.put("/t/a/b", b"x\ny")
    xsd.put("/t/c", b"\x00")
    assert main(["xs", "ls", "/t", "-r"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '/t/a = "1"',
        '/t/a/b = "x\\ny"',
        '/t/c = "\\000"',
    ]


def test_ls_one_level_and_perms(xsd: XsdDouble, capsys) -> None:
    xsd.put("/t/a/b", b"deep")
    xsd.put("/t/c", b"2", perms=["n0", "r1"])
    assert main(["xs", "ls", "/t", "-p"]) == 0
    assert capsys.readouterr().out.splitlines() == ['/t/a = ""   (n0)', '/t/c = "2"   (n0,r1)']


def test_ls_json(xsd: XsdDouble, capsys) -> None:
    xsd.put("/t/a", b"\xff")
    assert main(["xs", "ls", "/t", "-r", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "ok": True,
        "path": "/t",
        "recursive": True,
        "nodes": [{"path": "/t/a", "value": "\\xff", "perms": None}],
    }


def test_read_escaped_raw_and_json(xsd: XsdDouble, capsysbinary) -> None:
    xsd.put("/r", b"a\tb\x00")
    assert main(["xs", "read", "/r"]) == 0
    assert capsysbinary.readouterr().out == b"a\\tb\\000\n"
    assert main(["xs", "read", "/r", "--raw"]) == 0
    assert capsysbinary.readouterr().out == b"a\tb\x00"
    assert main(["xs", "read", "/r", "--json"]) == 0
    data = json.loads(capsysbinary.readouterr().out)
    assert data == {"ok": True, "path": "/r", "value": "a\\tb\\000", "hex": "61096200"}


def test_read_missing_is_explained_exit_1(xsd: XsdDouble, capsys) -> None:
    assert main(["xs", "read", "/missing"]) == 1
    err = capsys.readouterr().err
    assert "READ /missing: ENOENT" in err and "Traceback" not in err
    assert main(["xs", "read", "/missing", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["error"]["errno_name"] == "ENOENT"
    assert data["error"]["path"] == "/missing"


def test_write_refused_without_allow_write(xsd: XsdDouble, capsys) -> None:
    assert main(["xs", "write", "/w", "v"]) == 2
    assert "--allow-write" in capsys.readouterr().err
    assert "/w" not in xsd.nodes


def test_write_refused_under_readonly(xsd: XsdDouble, capsys) -> None:
    assert main(["--readonly", "xs", "write", "/w", "v", "--allow-write"]) == 2
    assert "--readonly" in capsys.readouterr().err
    assert "/w" not in xsd.nodes
    assert main(["--readonly", "xs", "rm", "/", "--allow-write", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_write_unescapes_like_xenstore_write(xsd: XsdDouble) -> None:
    assert main(["xs", "write", "/w", "a\\x00b\\n", "--allow-write"]) == 0
    assert xsd.nodes["/w"].value == b"a\x00b\n"
    assert main(["xs", "write", "/w", "a\\x00", "--allow-write", "--raw"]) == 0
    assert xsd.nodes["/w"].value == b"a\\x00"
    assert main(["xs", "rm", "/w", "--allow-write"]) == 0
    assert "/w" not in xsd.nodes


def test_watch_count_prints_one_line_per_event(xsd: XsdDouble, capsys) -> None:
    xsd.put("/wt", b"")

    def change() -> None:
        time.sleep(0.3)
        xsd.put("/wt/x", b"1")

    t = threading.Thread(target=change)
    t.start()
    assert main(["xs", "watch", "/wt", "--count", "2", "--max-wait", "5"]) == 0
    t.join()
    assert capsys.readouterr().out.splitlines() == ["/wt", "/wt/x"]


def test_watch_json_lines_and_max_wait(xsd: XsdDouble, capsys) -> None:
    assert main(["xs", "watch", "/q", "--count", "2", "--max-wait", "0.5", "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines()]  # every line is JSON
    assert lines[0] == {"n": 1, "watch": "/q", "path": "/q"}
    assert lines[1]["ok"] is False and lines[1]["error"]["errno_name"] == "ETIMEDOUT"
    assert "1 of 2 events" in lines[1]["error"]["message"]
    assert len(lines) == 2


def test_bad_usage_exit_2(xsd: XsdDouble, capsys) -> None:
    assert main(["xs", "watch", "/q", "--count", "0"]) == 2
    assert main(["xs", "read", "/q", "--timeout", "0"]) == 2


def test_no_xen_exit_2(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("XENSTORED_PATH", "/nonexistent/xenstored.sock")
    assert main(["xs", "read", "/x"]) == 2
    assert "/nonexistent/xenstored.sock (absent)" in capsys.readouterr().err


def test_subprocess_exit_codes_and_stdout(xsd: XsdDouble) -> None:
    xsd.put("/s/k", b"v")
    env = dict(os.environ, XENSTORED_PATH=xsd.socket_path)
    cmd = [sys.executable, "-m", "grantscope", "xs"]
    done = subprocess.run([*cmd, "ls", "/s", "-r"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == b'/s/k = "v"\n'
    done = subprocess.run([*cmd, "write", "/s/k", "z"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2 and b"Traceback" not in done.stderr


def test_watch_survives_a_xenstored_restart_and_says_so(xsd: XsdDouble, capsys) -> None:
    xsd.put("/wt", b"")
    directory = os.path.dirname(xsd.socket_path)
    restarted: list[XsdDouble] = []

    def restart() -> None:
        time.sleep(0.5)
        xsd.close()
        os.unlink(xsd.socket_path)
        time.sleep(0.5)
        again = XsdDouble(directory)
        restarted.append(again)
        again.put("/wt", b"")
        time.sleep(2.0)  # the watch reconnects within its next one-second get()
        again.put("/wt/y", b"1")

    t = threading.Thread(target=restart)
    t.start()
    try:
        assert main(["xs", "watch", "/wt", "--count", "3", "--max-wait", "10"]) == 0
    finally:
        t.join()
        for double in restarted:
            double.close()
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["/wt", "/wt", "/wt/y"]
    assert "connection lost" in captured.err and "watching /wt again" in captured.err
