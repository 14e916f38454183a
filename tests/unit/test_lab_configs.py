"""The lab configurations (issue 15): the table, dom0's words, the record, the CLI's refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grantscope.cli import main
from grantscope.errors import UsageError
from grantscope.lab import configs
from grantscope.lab.cmdline import decode_params
from grantscope.lab.qemu import DOM0_ARGS
from grantscope.lab.runner import dom0_words

STAGE2 = Path(__file__).resolve().parents[2] / "grantscope/lab/init/dom0-stage2"


def test_the_table_names_bookworm_by_default_and_the_oxenstored_variant() -> None:
    assert configs.DEFAULT == "bookworm"
    assert configs.get(None) is configs.CONFIGS["bookworm"]
    assert configs.get("bookworm").xenstored == "xenstored"
    ox = configs.get("bookworm-oxenstored")
    assert ox.xenstored == "oxenstored"
    assert (ox.xen, ox.kernel, ox.python) == ("4.17", "6.1", "3.11")
    assert ox.changes and "oxenstored" in ox.changes[0]
    assert not configs.get("bookworm").changes


def test_an_unknown_name_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as err:
        configs.get("trixy")
    assert "'trixy'" in err.value.message
    assert "bookworm, bookworm-oxenstored" in err.value.explanation


@pytest.mark.parametrize("sub", [["run", "--config", "nope", "--", "true"],
                                 ["build", "--config", "nope"],
                                 ["shell", "--config", "nope"]])
def test_the_cli_refuses_an_unknown_config_before_booting(
        sub: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", *sub]) == 2
    err = capsys.readouterr().err
    assert "unknown lab configuration 'nope'" in err
    assert "bookworm-oxenstored" in err
    assert "Traceback" not in err


def test_dom0_words_carry_mode_nonce_and_the_daemon() -> None:
    words = dom0_words("abc123", interactive=False,
                       config=configs.get("bookworm-oxenstored"))
    params = decode_params(f"{DOM0_ARGS} {words}")
    assert params == {"nonce": "abc123", "mode": "run", "config": "bookworm-oxenstored",
                      "xenstored": "oxenstored"}
    shell = decode_params(dom0_words("n", interactive=True, config=configs.get(None)))
    assert shell["mode"] == "shell" and shell["xenstored"] == "xenstored"


def test_dom0_init_knows_every_daemon_the_table_names() -> None:
    # The init script dispatches on gs_xenstored: a daemon the table names but the script does
    # not start would fail every boot of that configuration.
    script = STAGE2.read_text()
    assert "gs_xenstored=*)" in script and "gs_config=*)" in script
    for config in configs.CONFIGS.values():
        assert f"\n    {config.xenstored})\n" in script


def test_a_run_records_its_configuration(tmp_path: Path) -> None:
    path = configs.record(configs.get("bookworm-oxenstored"), tmp_path)
    assert path == tmp_path / configs.RECORD_NAME
    data = json.loads(path.read_text())
    assert data["name"] == "bookworm-oxenstored" and data["xenstored"] == "oxenstored"
    assert data["xen"] == "4.17" and data["changes"]


def test_a_run_records_what_it_booted(tmp_path: Path) -> None:
    booted = {"xen_package_version": "4.20.4+63", "kernel_release": "6.12.117+deb13-amd64",
              "dom0_root": "/lab/roots/trixie-0123"}
    path = configs.record(configs.get("trixie"), tmp_path, booted=booted)
    data = json.loads(path.read_text())
    assert data["name"] == "trixie" and data["release"] == "trixie"
    assert data["booted"] == booted


def test_lab_info_shows_the_named_configurations_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRANTSCOPE_LAB_DIR", str(tmp_path))
    monkeypatch.delenv("GRANTSCOPE_LAB_BUILD", raising=False)
    for link, key, xen in (("current", "host", "4.17.7"), ("current-bullseye", "old", "4.14.6-1")):
        build = tmp_path / "builds" / key
        build.mkdir(parents=True)
        (build / "manifest.json").write_text(json.dumps(
            {"key": key, "xen_version": xen, "kernel_package": "linux-image-x",
             "kernel_package_version": "1", "kernel_release": "x", "built": 1.0}))
        (tmp_path / link).symlink_to(build)
    assert main(["lab", "info", "--config", "bullseye", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["config"], doc["key"], doc["xen_version"]) == ("bullseye", "old", "4.14.6-1")
    assert main(["lab", "info"]) == 0
    out = capsys.readouterr().out
    assert "config: bookworm" in out and "xen_version: 4.17.7" in out
    # a release not built yet: the fix names its --config
    assert main(["lab", "info", "--config", "trixie"]) == 1
    err = capsys.readouterr().err
    assert "no complete lab build" in err and "lab build --config trixie" in err
