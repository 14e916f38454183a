"""Build hook: compile pingpong's C inner loop into the wheel when a compiler is there.

``grantscope.xen._evtloop`` is a cffi API-mode module (``grantscope/xen/_evtloop_build.py``).
Where it builds, the wheel carries it (and is tagged for this Python and platform); where it
does not (no C compiler, no Python headers), the wheel stays pure Python and ``pingpong``
runs its Python loop, saying so.  An editable install builds it in place in the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class EvtloopBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compile the loop; a failure only leaves it out."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        sys.path.insert(0, str(root / "grantscope" / "xen"))
        try:
            import _evtloop_build  # the builder, without importing the package

            if version == "editable":
                _evtloop_build.build(root)
                return
            out = Path(self.directory) / "evtloop-build"
            built = _evtloop_build.build(out)
        except Exception as exc:  # no compiler, no headers: the Python loop serves
            sys.stderr.write(f"grantscope: the C loop of pingpong was not built ({exc}); "
                             "pingpong will use its Python loop\n")
            return
        finally:
            sys.path.pop(0)
        build_data["force_include"][str(built)] = str(built.relative_to(out))
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
