"""probes/ and themes/ ship inside the package, for a wheel install and the editable install.

The source tree keeps probes/ and themes/ at the top level and links them into
the package (grantscope/probes, grantscope/themes).  This builds the real wheel
with ``python -m build --wheel`` (hatchling comes from the package index, as for
any build), checks its members, installs it with ``--no-deps --no-index`` into a
fresh virtualenv and imports the probes there; then checks the project's own
editable install (.venv) finds the same files.  The README's ``pipx install .`` path is
checked by installing the wheel into a fresh virtualenv with its dependencies, as pipx does,
and running ``grantscope --demo doctor --json`` from that environment's own script.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from grantscope.probing.registry import BUILTIN_MODULES

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_PROBES = sorted(f"{name}.py" for name in BUILTIN_MODULES)
THEME_FILES = sorted(p.name for p in (ROOT / "themes").iterdir() if not p.name.startswith("."))

# Run in the interpreter under test, from a directory outside the checkout, and
# report where the probes and themes were found.
CHECK = """
import importlib.resources, json, grantscope.probes
from grantscope.probing.engine import builtin_probes
themes = importlib.resources.files("grantscope") / "themes"
print(json.dumps({
    "probes_file": grantscope.probes.__file__,
    "probe_names": [p.name for p in builtin_probes()],
    "themes": sorted(t.name for t in themes.iterdir() if not t.name.startswith(".")),
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = out.glob("grantscope-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_without_compiler(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel built where the C compiler fails (CC=false); and what the build said."""
    out = tmp_path_factory.mktemp("dist-nocc")
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = out.glob("grantscope-*.whl")
    return path, done.stdout + done.stderr


def _check(python: Path, cwd: Path) -> dict[str, object]:
    done = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True,
                          cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_wheel_members(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"grantscope", "grantscope-0.1.0.dist-info"}, top  # no top-level probes/
    probes = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("grantscope/probes/")
                    and n.endswith(".py") and not n.endswith("__init__.py"))
    assert probes == EXPECTED_PROBES
    assert "grantscope/probes/__init__.py" in names
    themes = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("grantscope/themes/"))
    assert THEME_FILES and themes == THEME_FILES
    assert not any("__pycache__" in n for n in names)


def _wheel_env(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv with only the wheel installed (``--no-deps --no-index``); its
    site-packages."""
    venv.create(env_dir, with_pip=False)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
         "--no-deps", "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return next((env_dir / "lib").glob("python3*/site-packages"))


def test_wheel_install_finds_probes_and_themes(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    site = _wheel_env(wheel, env_dir)
    python = env_dir / "bin" / "python"
    assert not (site / "probes").exists() and (site / "grantscope" / "probes").is_dir()
    found = _check(python, tmp_path)
    assert str(found["probes_file"]).startswith(str(site))
    assert found["probe_names"] == [
        "map-grant", "offer-page", "notify", "pingpong", "explain-map", "mailbox-loopback"]
    assert found["themes"] == THEME_FILES
    no_top = subprocess.run([str(python), "-c", "import probes"], capture_output=True,
                            cwd=tmp_path, timeout=60)
    assert no_top.returncode != 0  # only grantscope.probes exists


def test_editable_install_finds_probes_and_themes(tmp_path: Path) -> None:
    python = ROOT / ".venv" / "bin" / "python"
    found = _check(python, tmp_path)
    assert Path(str(found["probes_file"])).resolve() == (ROOT / "probes" / "__init__.py")
    assert len(found["probe_names"]) == len(BUILTIN_MODULES)  # type: ignore[arg-type]
    assert found["themes"] == THEME_FILES


def _pipx_like_env(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv with the wheel installed and its dependencies importable; its bin dir.

    pipx resolves the dependencies from the package index.  A unit test must not depend on
    the network, so the wheel is installed with ``--no-deps --no-index`` and the venv is
    given the dependencies the test runner already has, through a ``.pth`` file naming the
    runner's site-packages.  A ``.pth`` line only appends a directory to ``sys.path`` (the
    ``.pth`` files inside it are not run), so the checkout's editable install cannot win:
    the test asserts that ``grantscope`` is imported from the fresh venv.  What this does
    not check is the resolution of the version ranges by an index (pip does that).
    """
    env_site = _wheel_env(wheel, env_dir)
    (env_site / "zz_runner_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return env_dir / "bin"


def test_wheel_install_with_its_deps_runs_the_demo_doctor(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _pipx_like_env(wheel, tmp_path / "venv")
    where = subprocess.run([str(bin_dir / "python"), "-c",
                            "import grantscope; print(grantscope.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr
    done = subprocess.run([str(bin_dir / "grantscope"), "--demo", "doctor", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["simulated"] is True and report["ok"] is True and report["role"] == "dom0"
    # The demo doctor needs none of the dependencies: check each one the wheel declares is
    # there, and that the TUI (Textual) and the metrics (prometheus_client) import.
    deps = subprocess.run([str(bin_dir / "python"), "-c", DEPS_CHECK], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert deps.returncode == 0, deps.stderr[-2000:]
    toml = ["tomli"] if sys.version_info < (3, 11) else []  # tomllib is the stdlib's from 3.11
    assert sorted(n.lower().replace("-", "_") for n in json.loads(deps.stdout)) == sorted([
        "cffi", "prometheus_client", "psutil", "pyxs", "shtab", "textual", *toml])
    # The build compiled pingpong's C loop into the wheel (this machine has a compiler).
    assert _loop_reason(bin_dir, tmp_path) == "None"
    assert "cp3" in wheel.name and "linux" in wheel.name, wheel.name


LOOP_REASON = "from grantscope.xen import compiled; print(compiled.unavailable_reason())"


def _loop_reason(bin_dir: Path, cwd: Path) -> str:
    done = subprocess.run([str(bin_dir / "python"), "-c", LOOP_REASON], capture_output=True,
                          text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_without_a_compiler_the_wheel_is_pure_and_pingpong_says_so(
        wheel_without_compiler: tuple[Path, str], tmp_path: Path) -> None:
    wheel, said = wheel_without_compiler
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    assert "pingpong will use its Python loop" in said
    assert not any("_evtloop." in n for n in zipfile.ZipFile(wheel).namelist())
    bin_dir = _pipx_like_env(wheel, tmp_path / "venv")
    assert _loop_reason(bin_dir, tmp_path).startswith("the C loop is not built")


DEPS_CHECK = """
import importlib.metadata as md, json
from packaging.requirements import Requirement
names = []
for text in md.requires("grantscope") or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # a test extra's, or for another Python (tomli before 3.11)
    md.version(req.name)  # PackageNotFoundError when the dependency is missing
    names.append(req.name)
import grantscope.ui.app, grantscope.metrics.exposition  # textual, prometheus_client
print(json.dumps(names))
"""
