"""Capturing g/e dumps: only g and e are ever sent, the earlier log is kept, markers checked.

A fake ``xl`` (a small script) records every argv it gets and answers like the real one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grantscope.errors import UsageError
from grantscope.sources.hvdump import capture_dumps, check_keys, run_tool

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
if args[:1] == ["debug-keys"]:
    (state / "pending").write_text(args[1])
elif args[:2] == ["dmesg", "-c"]:
    pending = state / "pending"
    key = pending.read_text() if pending.exists() else ""
    pending.unlink(missing_ok=True)
    if key:
        sys.stdout.write((state / f"dump-{{key}}.txt").read_text())
    else:
        sys.stdout.write("(XEN) earlier boot log line\\n")
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


def test_capture_sequence_keeps_earlier_log_and_parses(fake_xl: Path) -> None:
    cap = capture_dumps("ge", xl=str(fake_xl / "xl"))
    assert argv_log(fake_xl) == [
        "dmesg -c", "debug-keys g", "dmesg -c", "debug-keys e", "dmesg -c",
    ]
    assert cap.earlier_console == "(XEN) earlier boot log line\n"
    assert cap.unavailable == "" and cap.problems == ()
    assert cap.parse is not None
    g = cap.parse.grants
    assert g is not None and g.complete and [e.ref for e in g.entries()] == [8, 9]
    assert cap.parse.events is not None and len(list(cap.parse.events.ports())) == 28


def test_ring_too_small_names_conring_size(fake_xl: Path) -> None:
    cut = (FIX / "xl-dmesg-g.txt").read_text().splitlines(keepends=True)[3:]
    (fake_xl / "dump-g.txt").write_text("".join(cut))
    cap = capture_dumps("g", xl=str(fake_xl / "xl"))
    assert any("conring_size=" in p and "begin marker" in p for p in cap.problems)


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
