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
