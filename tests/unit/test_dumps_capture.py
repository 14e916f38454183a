"""Capturing g/e dumps: only g and e are ever sent, the ring is never emptied, markers checked.

A fake ``xl`` (a small script) records every argv it gets and models Xen's console ring: a
debug key appends its dump, the oldest bytes drop beyond ``FAKE_XL_RING`` bytes, and reading
with the clear option (which grantscope must never use) empties it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grantscope.errors import UsageError
from grantscope.sources.hvdump import (
    capture_dumps,
    check_keys,
    new_ring_text,
    read_ring,
    run_tool,
)
from grantscope.xen.readonly import ReadOnlyError, readonly_session

FIX = Path(__file__).parent / "fixtures" / "dumps" / "lab-xen-4.17"

FAKE_XL = """\
#!{python}
import os, sys
from pathlib import Path
state = Path(os.environ["FAKE_XL_DIR"])
with open(state / "argv.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if os.environ.get("FAKE_XL_FAIL") == args[0]:
    sys.stderr.write("xc: error: Permission denied\\n")
    sys.exit(1)
ring = state / "ring.txt"
if not ring.exists():
    ring.write_text("(XEN) earlier boot log line\\n")
size = int(os.environ.get("FAKE_XL_RING", "0"))
if args[:1] == ["debug-keys"]:
    text = ring.read_text() + (state / f"dump-{{args[1]}}.txt").read_text()
    ring.write_text(text[-size:] if size else text)
elif args[:1] == ["dmesg"]:
    sys.stdout.write(ring.read_text())
    if "-c" in args:
        ring.write_text("")
"""


@pytest.fixture
def fake_xl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    xl = tmp_path / "xl"
    xl.write_text(FAKE_XL.format(python=sys.executable))
    xl.chmod(0o755)
    (tmp_path / "dump-g.txt").write_text((FIX / "xl-dmesg-g.txt").read_text())
    (tmp_path / "dump-e.txt").write_text((FIX / "xl-dmesg-e.txt").read_text())
    monkeypatch.setenv("FAKE_XL_DIR", str(tmp_path))
    return tmp_path


def argv_log(d: Path) -> list[str]:
    log = d / "argv.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("keys", ["R", "q", "gR", "h", "*", "C", "0", "G", ""])
def test_other_keys_are_refused_before_anything_runs(fake_xl: Path, keys: str) -> None:
    with pytest.raises(UsageError):
        capture_dumps(keys, xl=str(fake_xl / "xl"))
    assert argv_log(fake_xl) == []


def test_q_only_on_explicit_request() -> None:
    with pytest.raises(UsageError, match="explicit"):
        check_keys("q")
    assert check_keys("qg", allow_q=True) == ("q", "g")
    assert check_keys("gge") == ("g", "e")


def test_capture_reads_the_ring_and_never_clears_it(fake_xl: Path) -> None:
    cap = capture_dumps("ge", xl=str(fake_xl / "xl"))
    assert argv_log(fake_xl) == ["dmesg", "debug-keys g", "dmesg", "debug-keys e", "dmesg"]
    assert cap.earlier_console == "(XEN) earlier boot log line\n"
    assert (fake_xl / "ring.txt").read_text().startswith("(XEN) earlier boot log line\n")
    assert cap.unavailable == "" and cap.problems == () and cap.notes == ()
    # Each key's text is its own dump only: no earlier line, no other dump.
    assert "earlier boot log" not in cap.text
    assert cap.texts["g"].splitlines()[0].endswith("gnttab_usage_print_all [ key 'g' pressed")
    assert cap.texts["g"].splitlines()[-1].endswith("gnttab_usage_print_all ] done")
    assert "event-channel info" in cap.texts["e"] and "gnttab" not in cap.texts["e"]
    assert cap.parse is not None
    g = cap.parse.grants
    assert g is not None and g.complete and [e.ref for e in g.entries()] == [8, 9]
    assert cap.parse.events is not None and len(list(cap.parse.events.ports())) == 28


def test_an_earlier_dump_in_the_ring_is_not_taken_for_the_new_one(fake_xl: Path) -> None:
    old_g = (FIX / "xl-dmesg-g.txt").read_text().replace("0x009]", "0x0aa]")
    (fake_xl / "ring.txt").write_text("(XEN) boot\n" + old_g)
    cap = capture_dumps("g", xl=str(fake_xl / "xl"))
    assert cap.parse is not None and cap.parse.grants is not None
    assert [e.ref for e in cap.parse.grants.entries()] == [8, 9]
    assert "0x0aa]" not in cap.text


def test_wrapped_ring_is_reported_and_the_dump_cut_by_markers(
    fake_xl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump_len = len((FIX / "xl-dmesg-g.txt").read_text())
    (fake_xl / "ring.txt").write_text("".join(f"(XEN) old line {i}\n" for i in range(400)))
    monkeypatch.setenv("FAKE_XL_RING", str(dump_len + 100))
    cap = capture_dumps("g", xl=str(fake_xl / "xl"))
    assert cap.problems == ()
    assert any("wrapped" in n and "conring_size=" in n for n in cap.notes)
    assert cap.parse is not None and cap.parse.grants is not None and cap.parse.grants.complete
    assert "old line" not in cap.text


def test_ring_too_small_names_conring_size(
    fake_xl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump_len = len((FIX / "xl-dmesg-g.txt").read_text())
    monkeypatch.setenv("FAKE_XL_RING", str(dump_len - 200))  # the dump loses its start
    cap = capture_dumps("g", xl=str(fake_xl / "xl"))
    assert any("conring_size=" in p and "begin marker" in p for p in cap.problems)
    assert any("wrapped" in n for n in cap.notes)


def test_new_ring_text() -> None:
    assert new_ring_text("a\nb\n", "a\nb\nc\n") == ("c\n", False)
    assert new_ring_text("a\nb\nc\n", "b\nc\nd\n") == ("d\n", True)
    assert new_ring_text("a\n", "zzz\n") == ("zzz\n", True)
    # The overlap is the suffix of the old text, even if the new text repeats it.
    assert new_ring_text("x\ny\n", "y\nx\ny\n") == ("x\ny\n", True)


def test_read_ring_sends_no_key_and_works_readonly(fake_xl: Path) -> None:
    (fake_xl / "ring.txt").write_text((FIX / "xl-dmesg-e.txt").read_text())
    with readonly_session():
        cap = read_ring(xl=str(fake_xl / "xl"))
    assert argv_log(fake_xl) == ["dmesg"]
    assert not cap.captured and cap.parse is not None and cap.parse.events is not None
    assert cap.parse.grants is None
    assert any("no debug key was sent" in n for n in cap.notes)


def test_capture_is_refused_under_readonly(fake_xl: Path) -> None:
    with readonly_session(), pytest.raises(ReadOnlyError, match="--readonly"):
        capture_dumps("g", xl=str(fake_xl / "xl"))
    assert argv_log(fake_xl) == []


def test_domu_refusal_is_recorded_not_raised(
    fake_xl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_XL_FAIL", "debug-keys")
    cap = capture_dumps("ge", xl=str(fake_xl / "xl"))
    assert cap.parse is None
    assert "Permission denied" in cap.unavailable and "status 1" in cap.unavailable


def test_missing_xl_is_recorded(tmp_path: Path) -> None:
    cap = capture_dumps("g", xl=str(tmp_path / "no-such-xl"))
    assert cap.parse is None and "not found" in cap.unavailable


def test_run_tool_timeout(tmp_path: Path) -> None:
    res = run_tool([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert not res.ok and "did not finish" in res.why
    assert os.path.exists(sys.executable)
