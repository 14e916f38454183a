"""Hostile *content* in a sound bundle: inspect, diff, open and dump analyze stay clean.

Nothing a bundle or a console text holds may reach the terminal raw (no escape sequence, no
forged line, nothing the terminal cannot encode), and no input ends in a traceback.  The TUI
side of ``bundle open`` runs headless at the end of this file.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from bundle_corpus.unsafe_text import CASES, ESCAPES, TextCase, write_text_case

from grantscope.cli import main
from grantscope.cli.output import clean
from grantscope.host.replay import ReplayHost
from grantscope.model.interrupts import parse_interrupts


def _assert_clean(text: str) -> None:
    assert "Traceback" not in text
    for char in text:
        assert char == "\n" or char.isprintable(), f"raw {char!r} reached the terminal"
    text.encode("utf-8")  # a lone surrogate would raise here, as it does on a UTF-8 terminal


def test_clean_escapes_like_xenstore_ls_and_keeps_printable_text() -> None:
    assert clean("Domain-0 é ü 日本") == "Domain-0 é ü 日本"
    assert clean("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert clean("\x00\x07\x08\x1b[2J\x7f\x9b") == "\\000\\007\\x08\\x1b[2J\\x7f\\x9b"
    assert clean("\u202eevil\u200b") == "\\u202eevil\\u200b"
    assert clean("\ud800") == "\\ud800"
    assert clean(None) == "None"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inspect_and_diff_print_only_clean_text(
    case: TextCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_text_case(case, tmp_path))
    for argv in (
        ["bundle", "inspect", path],
        ["bundle", "diff", path, path],
        ["bundle", "inspect", path, "--json"],
        ["bundle", "diff", path, path, "--json"],
    ):
        assert main(argv) == 0
        out = capsys.readouterr()
        _assert_clean(out.out)
        _assert_clean(out.err)
        assert "\x1b" not in out.out + out.err


def test_a_forged_line_stays_on_the_hostname_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = next(c for c in CASES if c.name == "escapes_in_host_and_collectors")
    assert main(["bundle", "inspect", str(write_text_case(case, tmp_path))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("integ") and "99" in line for line in lines)
    host = next(line for line in lines if line.startswith("host "))
    assert "\\x1b]0;pwned\\007" in host and "\\ninteg\\u202erity ok" in host
    # An absurd duration (1e300) is shown as unknown, not formatted (or overflowed).
    assert any(line.strip().endswith("?  " + clean(ESCAPES)) for line in lines)


def test_surrogate_output_survives_a_strict_utf8_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = next(c for c in CASES if c.name == "lone_surrogate_hostname")
    path = str(write_text_case(case, tmp_path))
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", errors="strict"))
    assert main(["bundle", "inspect", path]) == 0
    sys.stdout.flush()
    assert b"host-\\ud800-x" in raw.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_open_accepts_or_refuses_with_words(
    case: TextCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_text_case(case, tmp_path))
    if case.opens:
        host = ReplayHost.open(path)  # the screens: test_bundle_open_shows_hostile_text_...
        info = host.info()
        assert info.label.isprintable() and info.xen_version.isprintable()  # the header line
        host.close()
        return
    assert main(["bundle", "open", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("grantscope: malformed bundle") and case.says in err
    _assert_clean(err)


def test_unicode_digits_are_not_counts() -> None:
    parsed = parse_interrupts("     CPU0\n 54:   2\u00b2   xen-dyn    -event     xenbus\n")
    assert parsed.rows == ()
    assert len(parsed.unparsed) == 1


def test_dump_analyze_on_hostile_console_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "console.txt"
    text.write_text(
        "(XEN) 'e' pressed -> dumping event-channel info\n"
        "(XEN) Event channel information for domain " + "9" * 5000 + ":\n"
        "(XEN)       30 [0/0/  -   ]: s=2 n=0 x=0 d=" + "9" * 5000 + "\n"
        "(XEN) grant-table for remote d" + "7" * 5000 + " (v1)\n"
        "(XEN) [0x008]      0 0x1a008 0x00000001          0 0x01a008 0x19" + ESCAPES + "\n",
        encoding="utf-8",
        errors="surrogatepass",
    )
    for argv in (["dump", "analyze", str(text)], ["dump", "analyze", str(text), "--json"]):
        assert main(argv) in (0, 1)
        out = capsys.readouterr()
        _assert_clean(out.out)
        _assert_clean(out.err)
    assert main(["dump", "analyze", str(text)]) in (0, 1)
    assert "9" * 5000 in capsys.readouterr().out  # the line is reported as unparsed, in full


def test_xs_timeout_must_be_a_finite_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("nan", "inf", "-1", "0"):
        assert main(["xs", "ls", "/", "--timeout", bad]) == 2
        err = capsys.readouterr().err
        assert "--timeout must be a number of seconds" in err and "Traceback" not in err


# -- the TUI: bundle open, and the live Grants tab -----------------------------------------------
async def _visit_tabs(host: object) -> BaseException | None:
    from pilot import SIZE, settle
    from textual.widgets import TabbedContent

    from grantscope.ui.app import GrantscopeApp

    app = GrantscopeApp(host, readonly=True, live=False)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for name in ("grants", "events", "findings", "xenstore"):
            app.query_one(TabbedContent).active = name
            await settle(pilot, rounds=2)
    return app._exception  # an exception in any screen ends the app with it set


@pytest.mark.parametrize("case", [c for c in CASES if c.opens], ids=lambda c: c.name)
def test_bundle_open_shows_hostile_text_as_plain_text(case: TextCase, tmp_path: Path) -> None:
    import asyncio

    host = ReplayHost.open(str(write_text_case(case, tmp_path)))
    assert asyncio.run(_visit_tabs(host)) is None


def test_live_grants_tab_with_markup_in_process_and_owner_names() -> None:
    import asyncio
    import dataclasses

    from pilot import FROZEN_AT

    from grantscope.host.base import GrantsSnapshot, OwnGrant, ProcessGrants
    from grantscope.host.sim import SimHost

    class MarkupHost(SimHost):
        def grants(self) -> GrantsSnapshot:
            snap = super().grants()
            own = (OwnGrant("offer", 1, (9,), True, "[/]", page_key=None),)
            procs = (ProcessGrants(4242, "\x1b[2J[/]", "/dev/xen/gntdev[b]", 1, 2),)
            return dataclasses.replace(snap, own=own, processes=procs)

    assert asyncio.run(_visit_tabs(MarkupHost(frozen_at=FROZEN_AT))) is None
    assert asyncio.run(_process_cell(MarkupHost(frozen_at=FROZEN_AT))) == "\\x1b[2J[/]"


async def _process_cell(host: object) -> str:
    from pilot import SIZE, settle
    from textual.widgets import DataTable, TabbedContent

    from grantscope.ui.app import GrantscopeApp

    app = GrantscopeApp(host, readonly=True, live=False)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(TabbedContent).active = "grants"
        await settle(pilot, rounds=2)
        cell = app.query_one("#proc-grants", DataTable).get_row_at(0)[1]
    return str(cell)  # shown as plain text, the escape visible and inert
