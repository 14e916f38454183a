"""``grantscope lab``: build and drive the disposable Xen host under QEMU (grantscope.lab)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from grantscope.errors import UsageError
from grantscope.lab.paths import GUEST_TYPES_ENV, ensure_lab_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lab build|run|shell|info``."""
    lab = subparsers.add_parser(
        "lab",
        help="a real Xen host under QEMU: build it, run a command in its dom0",
        description="A disposable Xen host under QEMU (TCG). 'build' fetches Xen and a Debian "
        "kernel and builds the images into ~/.cache/grantscope/lab (GRANTSCOPE_LAB_DIR "
        "overrides); 'run -- CMD' boots it and runs CMD as root in dom0 in this directory and "
        "Python environment; 'shell' opens dom0's console.",
    )
    sub = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    lab.set_defaults(run=lambda args: _usage(lab))

    b = sub.add_parser(
        "build", help="fetch packages and build the lab images (idempotent)",
        description="Download the Debian packages of Xen and a Linux kernel and build the "
        "lab's boot images (dom0's and the domU's initramfs, the C peer) under "
        "$GRANTSCOPE_LAB_DIR (default ~/.cache/grantscope/lab); a build that is already "
        "there is reused.")
    b.add_argument("--install-deps", action="store_true",
                   help="apt-get update and install the Debian packages the lab needs (root)")
    b.add_argument("--json", action="store_true", help="print the build's paths as JSON")
    _config_option(b)
    b.set_defaults(run=_cmd_build)

    r = sub.add_parser("run", help="boot the lab and run CMD as root in dom0",
                       description="Boot the lab, run CMD as root in dom0 (same working "
                       "directory, PATH and VIRTUAL_ENV), stream its output, return its exit "
                       "status, power off. Exit 124: timeout; 125: the lab failed.")
    _boot_options(r)
    r.add_argument("--domu", metavar="TYPE[:SCENARIO]", default=None,
                   help="also start a domU before CMD: TYPE pv, pvh or hvm; SCENARIO offer, "
                   "map, echo, read (the C peer) or agent (grantscope itself in the guest, "
                   "driven through XenStore; the default when only TYPE is given); "
                   "a SCENARIO alone means a PV guest")
    r.add_argument("--boot-timeout", type=float, default=None, metavar="SEC",
                   help="seconds allowed until dom0's xenstored answers (default 480)")
    r.add_argument("--verbose", "-v", action="store_true", help="show the boot console too")
    r.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    r.set_defaults(run=_cmd_run)

    s = sub.add_parser(
        "shell", help="an interactive dom0 console (exit powers off)",
        description="Boot the lab and give this terminal dom0's root console; leaving the "
        "shell powers the lab off. Needs a terminal on stdin ('lab run -- CMD' does not).")
    _boot_options(s)
    s.set_defaults(run=_cmd_shell)

    i = sub.add_parser(
        "info", help="where the current build is (paths, versions)",
        description="A configuration's current lab build: its directory, image paths and "
        "the versions it was built from (--json: as JSON).")
    i.add_argument("--json", action="store_true", help="as JSON")
    _config_option(i)
    i.set_defaults(run=_cmd_info)


def _config_option(p: argparse.ArgumentParser) -> None:
    from grantscope.lab.configs import CONFIGS, DEFAULT

    p.add_argument("--config", default=None, metavar="NAME",
                   help=f"the lab configuration: {', '.join(CONFIGS)} (default {DEFAULT})")


def _boot_options(p: argparse.ArgumentParser) -> None:
    _config_option(p)
    p.add_argument("--timeout", type=float, default=None, metavar="SEC",
                   help="hard bound on the whole run, boot included (default 1800)")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="results directory shared writable with dom0 (default: a new one "
                   "under the lab dir); also visible at the same path inside dom0")
    p.add_argument("--cpus", type=int, choices=(1, 2), default=None, metavar="N",
                   help="emulated CPUs (default 2; 1 with a PVH or HVM --domu, or when "
                   "GRANTSCOPE_GUEST_TYPES names pvh or hvm: with two, PVH/HVM guests die "
                   "now and then, docs/LAB.md); GRANTSCOPE_LAB_CPUS overrides both")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _cmd_build(args: argparse.Namespace) -> int:
    from grantscope.cli.progress import Progress
    from grantscope.lab import configs
    from grantscope.lab.build import build

    config = configs.get(args.config)
    ensure_lab_dir()
    with Progress("lab build", enabled=None if not args.json else False) as progress:
        def step(message: str) -> None:  # on a terminal: the step beside a spinner, and kept
            progress.note(f"lab build: {message}")
            progress.update(message)

        result = build(install_deps=args.install_deps,
                       on_step=step if progress.enabled else None, config=config)
    if args.json:
        print(json.dumps({"ok": True, **result.to_json()}, indent=2))
    else:
        print(f"lab build {result.key}: {result.directory}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from grantscope.lab import configs
    from grantscope.lab.build import current_build

    config = configs.get(args.config)
    ensure_lab_dir()
    doc = {"config": config.name, **current_build(config=config).to_json()}
    if args.json:
        print(json.dumps({"ok": True, **doc}, indent=2))
    else:
        for key, value in doc.items():
            print(f"{key}: {value}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from grantscope.lab import configs, runner

    config = configs.get(args.config)
    ensure_lab_dir()
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("lab run needs a command after '--'",
                         "Example: grantscope lab run -- uname -a")
    cpus = args.cpus or default_cpus(args.domu)
    if args.domu:
        cmd = _with_domu(args.domu, cmd)
    result = runner.run(
        cmd,
        timeout=args.timeout or runner.DEFAULT_TIMEOUT,
        boot_timeout=args.boot_timeout or runner.DEFAULT_BOOT_TIMEOUT,
        results_dir=args.results,
        verbose=args.verbose,
        config=config,
        cpus=cpus,
    )
    return result.status


def default_cpus(domu: str | None, guest_types: str | None = None) -> int:
    """Emulated CPUs for a lab run: 1 when it starts a PVH or HVM guest, else 2.

    A PVH or HVM guest is started by ``--domu pvh|hvm`` or, for the guest-type tests, named in
    ``guest_types`` (GRANTSCOPE_GUEST_TYPES, read from the environment when None).  With two
    emulated CPUs, PVH/HVM guests died now and then while booting (a triple fault); with one,
    none did in the guest-type matrix on a busy machine (docs/LAB.md).
    """
    from grantscope.lab.domu import parse_domu_spec

    if domu and parse_domu_spec(domu)[0] in ("pvh", "hvm"):
        return 1
    named = os.environ.get(GUEST_TYPES_ENV, "") if guest_types is None else guest_types
    if {kind.strip().lower() for kind in named.split(",")} & {"pvh", "hvm"}:
        return 1
    return 2


def _with_domu(scenario: str, cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` so a domU peer with ``scenario`` runs around it (GRANTSCOPE_DOMU_ID set)."""
    from grantscope.lab.domu import parse_domu_spec

    kind, name = parse_domu_spec(scenario)
    return [sys.executable, "-m", "grantscope.lab.domu", "--type", kind, "--scenario", name,
            "--", *cmd]


def _cmd_shell(args: argparse.Namespace) -> int:
    from grantscope.lab import configs, runner

    config = configs.get(args.config)
    ensure_lab_dir()
    if not sys.stdin.isatty():
        raise UsageError("lab shell needs a terminal on stdin",
                         "Use 'grantscope lab run -- CMD' to run a command without a terminal.")
    result = runner.run(None, timeout=args.timeout or 4 * 3600.0, results_dir=args.results,
                        config=config, cpus=args.cpus or default_cpus(None))
    return result.status
