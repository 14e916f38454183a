"""Unit tier: nothing a test does may land in this machine's own state."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # XenStore journals (grantscope.xen.xs_journal) of writes to the XenStore doubles go to the
    # test's own directory, not /run/grantscope.
    monkeypatch.setenv("GRANTSCOPE_RUN_DIR", str(tmp_path / "run"))
