"""Configurations with their own Debian release (issue 15): apt's view, the root's key, dom0's
words and the job's venv on that root."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grantscope.lab import build, configs, release, runner

CHECKOUT = Path(__file__).resolve().parents[2]
INIT = CHECKOUT / "grantscope/lab/init"


@pytest.mark.parametrize(("name", "xen", "kernel", "python"), [
    ("trixie", "4.20", "6.12", "3.13"),
    ("bullseye", "4.14", "5.10", "3.9"),
])
def test_a_release_names_its_own_xen_kernel_and_root(name: str, xen: str, kernel: str,
                                                     python: str) -> None:
    config = configs.get(name)
    assert (config.xen, config.kernel, config.python, config.xenstored) == (
        xen, kernel, python, "xenstored")
    rel = config.release
    assert rel is not None and rel.suite == name
    assert rel.xen_package == f"xen-hypervisor-{xen}-amd64"
    assert rel.xen_image == f"boot/xen-{xen}-amd64.gz"
    assert {"python3", "python3-venv", f"xen-utils-{xen}", "xenstore-utils"} <= set(
        rel.root_packages)
    assert config.to_json()["release"] == name
    assert config.dom0_words()["gs_xen"] == xen
    assert build.current_link(config) == f"current-{name}"


def test_the_host_configurations_keep_their_words_and_links() -> None:
    for name in ("bookworm", "bookworm-oxenstored"):
        config = configs.get(name)
        assert config.release is None
        assert "gs_xen" not in config.dom0_words()
        assert build.current_link(config) == "current"
    assert build.current_link(None) == "current"
    assert configs.get("trixie").dom0_words()["gs_xen"] == "4.20"
    assert build.current_link(configs.get("trixie")) == "current-trixie"


def test_apt_looks_only_at_the_suites_own_state(tmp_path: Path) -> None:
    rel = configs.get("trixie").release
    assert rel is not None
    opts = release.apt_options(tmp_path, rel)
    values = dict(o.split("=", 1) for o in opts[1::2])
    base = tmp_path / "apt" / "trixie"
    assert values["Dir::Etc::SourceList"] == str(base / "sources.list")
    assert values["Dir::Etc::SourceParts"] == "/dev/null"     # not the host's sources.list.d
    assert values["Dir::State::Lists"] == str(base / "lists")
    assert values["Dir::Cache"] == str(base / "cache")
    assert values["Dir::State::status"] == str(base / "status")


def test_the_root_key_follows_the_package_list_and_the_checkout(tmp_path: Path) -> None:
    rel = configs.get("trixie").release
    assert rel is not None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    key = release.root_key(rel, tmp_path)
    assert release.root_key(rel, tmp_path) == key
    more = release.Release(rel.suite, rel.xen_package, rel.xen_image,
                           (*rel.root_packages, "less"))
    assert release.root_key(more, tmp_path) != key
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['y']\n")
    assert release.root_key(rel, tmp_path) != key
    assert release.root_path(tmp_path, rel, tmp_path).name.startswith("trixie-")


def test_a_missing_root_without_mmdebstrap_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rel = configs.get("trixie").release
    assert rel is not None
    monkeypatch.setattr(release.shutil, "which", lambda name: None)
    with pytest.raises(release.LabError) as err:
        release.ensure_root(tmp_path, rel, CHECKOUT)
    assert "mmdebstrap" in err.value.message
    assert "apt-get install mmdebstrap" in err.value.explanation


def test_the_root_venv_takes_the_callers_venv_path() -> None:
    env = {"PATH": "/v/bin:/usr/bin"}
    lines, out = runner.release_job_env({"VIRTUAL_ENV": "/work/x/.venv"}, env)
    assert f"GS_VENV_FROM={release.ROOT_VENV}\n" in lines
    assert "GS_VENV=/work/x/.venv\n" in lines
    assert out == env


def test_without_a_venv_the_roots_venv_leads_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    lines, out = runner.release_job_env({}, {"PATH": "/usr/bin"})
    assert "GS_VENV=" not in lines
    assert out["PATH"] == f"{release.ROOT_VENV}/bin:/usr/bin"
    assert out["VIRTUAL_ENV"] == release.ROOT_VENV


def test_a_kernel_with_modules_under_usr_looks_like_a_root(tmp_path: Path) -> None:
    tree = tmp_path / "pkgs" / "linux-image-x_1"
    deb = tmp_path / "debs" / "linux-image-x_1"
    deb.mkdir(parents=True)
    (deb / "k.deb").write_bytes(b"")

    def fake_run(argv: list[str], **kwargs: object) -> str:
        assert argv[0] == "dpkg-deb"
        (Path(argv[-1]) / "usr/lib/modules/6.12.0-x").mkdir(parents=True)   # Debian 13's layout
        return ""

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "_run", fake_run)
        got = build.fetch_package(tmp_path, "linux-image-x", "1")
    assert got == tree
    assert (tree / "lib").is_symlink() and build.kernel_release(tree) == "6.12.0-x"


def test_the_init_scripts_read_the_release_words() -> None:
    stage1 = (INIT / "dom0-init").read_text()
    stage2 = (INIT / "dom0-stage2").read_text()
    assert "gs_root=*)" in stage1 and 'lowerdir="/lower$GS_ROOT"' in stage1
    assert "gs_xen=*)" in stage2 and "XENBIN=/usr/lib/xen-$GS_XEN/bin" in stage2
    # Without the words, dom0 runs the host's Xen 4.17 tools as before.
    assert "GS_XEN=4.17\n" in stage2
    assert 'mount --bind "$GS_VENV_FROM" "$GS_VENV"' in stage2


def test_the_c_loop_check_asks_for_a_build_when_missing_or_older_than_its_builder(
        tmp_path: Path) -> None:
    """A root reused for a fresh clone must build the clone's C loop (CI lost it once)."""
    import os
    import subprocess
    import sysconfig

    xen = tmp_path / "grantscope" / "xen"
    xen.mkdir(parents=True)
    builder = xen / "_evtloop_build.py"
    builder.write_text("")

    def current() -> bool:
        proc = subprocess.run([sys.executable, "-c", release._LOOP_IS_CURRENT, str(tmp_path)],
                              check=False)
        return proc.returncode == 0

    assert not current()
    loop = xen / ("_evtloop" + str(sysconfig.get_config_var("EXT_SUFFIX")))
    loop.write_bytes(b"")
    os.utime(builder, (1_000, 1_000))
    assert current()
    os.utime(builder, (loop.stat().st_mtime + 10,) * 2)
    assert not current()
