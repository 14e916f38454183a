"""Where the lab keeps its artifacts: ``~/.cache/grantscope/lab`` unless GRANTSCOPE_LAB_DIR says."""

from __future__ import annotations

import os
from pathlib import Path

LAB_DIR_ENV = "GRANTSCOPE_LAB_DIR"
# Set inside dom0 by ``lab run``: the exact build directory that was booted, so the domU
# helper starts guests from the same kernel and initramfs as the running dom0.
LAB_BUILD_ENV = "GRANTSCOPE_LAB_BUILD"
# Set inside dom0 by ``lab run``: the writable results share, at the same path as on the host.
LAB_RESULTS_ENV = "GRANTSCOPE_LAB_RESULTS"
# Set inside dom0 by ``lab run``: the Python guest image (grantscope.lab.pyguest) for this source.
PYGUEST_ENV = "GRANTSCOPE_LAB_PYGUEST"
# Set inside dom0 by ``lab run`` to "1": tests use it to tell the lab from an ordinary host.
IN_LAB_ENV = "GRANTSCOPE_IN_LAB"
# The guest types tests/xen/test_guest_types.py runs (comma-separated; unset: all). ``lab run``
# reads it too: a run that names PVH or HVM boots with one emulated CPU (docs/LAB.md).
GUEST_TYPES_ENV = "GRANTSCOPE_GUEST_TYPES"

PACKAGE_DIR = Path(__file__).resolve().parent
INIT_DIR = PACKAGE_DIR / "init"
PEER_SOURCE = PACKAGE_DIR / "peer" / "xenpeer.c"
# The hotplug script of the lab's test vifs (run by libxl in dom0, from this checkout).
VIF_SCRIPT = INIT_DIR / "vif-gslab"


def lab_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The lab cache directory: $GRANTSCOPE_LAB_DIR, else ~/.cache/grantscope/lab."""
    env = os.environ if environ is None else environ
    override = env.get(LAB_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    cache_home = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser().resolve() / "grantscope" / "lab"


def ensure_lab_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The lab directory, created when missing; a LabError naming it when it cannot be used.

    Every lab command starts here, so a GRANTSCOPE_LAB_DIR under a file or on a read-only
    mount is one clear error, not a traceback from whichever step first writes there.
    """
    from grantscope.lab.errors import LabError

    env = os.environ if environ is None else environ
    where = lab_dir(env)
    how = (f"Set {LAB_DIR_ENV} to a directory this user can write"
           if env.get(LAB_DIR_ENV) else f"Free it, or set {LAB_DIR_ENV} to a writable directory")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"the lab directory {where} cannot be created: {exc.strerror}",
                       f"{how}.") from None
    if not os.access(where, os.W_OK | os.X_OK):
        raise LabError(f"the lab directory {where} is not writable", f"{how}.")
    return where
