"""``grantscope doctor``: can grantscope work on this machine, and if not, why."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from grantscope.cli.output import print_json

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "info": "info"}


def register(subparsers: Any) -> None:
    """Add the ``doctor`` command."""
    p = subparsers.add_parser(
        "doctor",
        help="check Xen, the /dev/xen devices, modules, permissions and XenStore",
        description="Check that this machine can run grantscope: Xen, /dev/xen nodes, "
        "modules, permissions, XenStore, own domid. Exit 0 if usable, 1 if this Xen host is "
        "not usable (the FAIL lines say why), 2 if this is not a Xen host (as for every "
        "command that needs Xen).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # 'grantscope --demo doctor' reports on the simulated host (labelled SIMULATED).
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the checks, print them, exit 0 when usable."""
    from grantscope.host.target import target_for

    target = target_for(args, "doctor")
    if target.simulated:
        from grantscope.host.sim_doctor import sim_doctor

        report = sim_doctor(target.sim())
    else:
        from grantscope.sources.doctor import run_doctor

        report = run_doctor()
    if args.json:
        print_json(target.mark(report.to_json()))
    else:
        out = sys.stdout
        if target.simulated:
            out.write(target.banner + "\n")
        for check in report.checks:
            line = f"[{_MARK.get(check.status, check.status)}] {check.name}: {check.summary}"
            if check.detail:
                line += f"  ({check.detail})"
            out.write(line + "\n")
        if not report.xen:
            out.write("grantscope: not a Xen host: the device commands cannot run here.\n")
        elif report.usable:
            who = f"{report.role or 'domain'} {report.domid}" if report.domid is not None else \
                (report.role or "this domain")
            out.write(f"usable: {who}, Xen {report.xen_version or '?'}\n")
        else:
            out.write("not usable: fix the FAIL lines above.\n")
    if not report.xen:
        return 2  # a refusal, the same status every device command gives without Xen
    return 0 if report.usable else 1
