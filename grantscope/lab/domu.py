"""Start a domU peer from dom0 (inside the lab): the real-Xen tests' other domain.

A :class:`DomU` is a small guest booted with ``xl create`` from the lab's kernel and domU
initramfs, whose init runs the static peer program (peer/xenpeer.c) with a *scenario* and its
parameters passed as ``gs_KEY=VALUE`` words on the kernel command line (``extra``)::

    with DomU("offer", {"text": "hello"}) as peer:      # context manager: always destroyed
        gref = int(peer.wait_key("data/gref"))
        port = int(peer.wait_key("data/port"))
        ...
        print(peer.console_log())

Scenarios: ``offer`` (the domU grants a page and offers a port to dom0, publishes
``data/gref`` and ``data/port``, answers each notification with ``data/result`` and a notify back),
``map`` (it maps the gref and binds the port dom0 published under ``path``, writes a reply into
the page and notifies back), ``echo`` (notify back every notification) and ``read`` (XenStore
as the domU sees it: it reads and writes the paths dom0 lists in ``data/paths`` and publishes
each outcome as ``data/read-I`` / ``data/write-I``).  XenStore is driven
through the C tools (xenstore-read/-write, one process per call) so this helper depends on
nothing else in grantscope.

Run as a module, it wraps a command: ``python -m grantscope.lab.domu --scenario offer -- CMD``
starts the peer, exports GRANTSCOPE_DOMU_ID/NAME/HOME, runs CMD, destroys the peer.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from grantscope.lab import paths
from grantscope.lab.build import LabBuild, current_build
from grantscope.lab.cmdline import encode_params
from grantscope.lab.errors import LabError

if TYPE_CHECKING:
    # typing.Self is 3.11's; annotations here are never evaluated, so only mypy needs it.
    from typing_extensions import Self

# The C peer's scenarios, and "agent": the Python guest (grantscope.lab.pyguest) whose agent
# runs grantscope commands that dom0 sends (grantscope.lab.guest.PyGuest drives it).
PEER_SCENARIOS = ("offer", "map", "echo", "read")
AGENT = "agent"
SCENARIOS = (*PEER_SCENARIOS, AGENT)
TYPES = ("pv", "pvh", "hvm")
CONSOLE_LOG_DIR = Path("/var/log/xen/console")
_counter = itertools.count(1)
# Extra kernel words for every guest (e.g. "earlyprintk=xen" to see an early death in xl dmesg),
# for the guest-death experiments (issue 18, docs/LAB.md).
GUEST_ARGS_ENV = "GRANTSCOPE_LAB_GUEST_ARGS"


def agent_image() -> Path:
    """The Python guest image (grantscope.lab.pyguest) that ``lab run`` prepared for this boot."""
    value = os.environ.get(paths.PYGUEST_ENV)
    if not value or not Path(value).exists():
        raise LabError("no Python guest image is known here",
                       "Run inside the lab: grantscope lab run -- CMD (it builds the image "
                       f"and sets {paths.PYGUEST_ENV}).", exit_code=2)
    return Path(value)


def lab_vif(count: int = 1) -> str:
    """The xl.cfg ``vif`` value giving a guest ``count`` network devices with dom0's netback
    as the backend and the lab's hotplug script (no bridge: nothing is ever forwarded).

    The lab's guests load no netfront; grantscope.lab.vif_frontend connects such a vif from
    user space in the guest.
    """
    if not os.access(paths.VIF_SCRIPT, os.X_OK):
        raise LabError(f"{paths.VIF_SCRIPT} is missing or not executable",
                       "It ships with grantscope's lab; restore it with git checkout.")
    one = f"'script={paths.VIF_SCRIPT}'"
    return "[" + ", ".join([one] * count) + "]"


def parse_domu_spec(text: str) -> tuple[str, str]:
    """``"offer"`` -> ``("pv", "offer")``; ``"pvh:echo"`` -> ``("pvh", "echo")``;
    a type alone, ``"hvm"``, -> ``("hvm", "agent")``: grantscope itself in that guest."""
    if text in TYPES:
        return text, AGENT
    kind, _, scenario = text.rpartition(":")
    kind = kind or "pv"
    if kind not in TYPES or scenario not in SCENARIOS:
        raise LabError(
            f"bad domU spec {text!r}",
            f"Use TYPE, SCENARIO or TYPE:SCENARIO with TYPE one of {', '.join(TYPES)} and "
            f"SCENARIO one of {', '.join(SCENARIOS)}, e.g. 'offer', 'pv:echo' or 'hvm' "
            "(grantscope itself in an HVM guest).",
            exit_code=2,
        )
    return kind, scenario


def xl_config(name: str, kind: str, build: LabBuild, words: str, memory_mb: int,
              ramdisk: Path | None = None, options: Mapping[str, str] | None = None) -> str:
    """The ``xl create`` configuration of a peer guest (pure; values need no escaping).

    ``options`` are further ``key = value`` lines in xl.cfg syntax, written as given (e.g.
    ``{"max_grant_frames": "2", "vif": "['script=/path/vif-gslab']"}``).
    """
    extra_words = os.environ.get(GUEST_ARGS_ENV, "").strip()
    if extra_words:
        words = f"{words} {extra_words}"
    lines = [f'name = "{name}"', f'type = "{kind}"',
             f'kernel = "{build.kernel}"', f'ramdisk = "{ramdisk or build.domu_initrd}"']
    if kind == "hvm":
        # Direct kernel boot through SeaBIOS; hvc0 last, or the console log misses the output.
        lines += [f'cmdline = "console=ttyS0 console=hvc0 rdinit=/init loglevel=4 {words}"',
                  "vnc = 0", "serial = \"pty\""]
        memory_mb = max(memory_mb, 256)
    else:
        lines.append(f'extra = "console=hvc0 rdinit=/init loglevel=4 {words}"')
    lines += [f"memory = {memory_mb}", "vcpus = 1", 'on_poweroff = "destroy"',
              'on_reboot = "destroy"', 'on_crash = "destroy"']
    lines += [f"{key} = {value}" for key, value in (options or {}).items()]
    return "\n".join(lines) + "\n"


def _run(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise LabError(f"'{' '.join(argv)}' did not finish within {timeout:.0f}s") from err
    except FileNotFoundError as err:
        raise LabError(f"{argv[0]} is not installed here",
                       "The domU helper runs inside the lab's dom0 (grantscope lab run).") from err


class DomU:
    """A peer guest running one scenario; a context manager that always destroys it."""

    def __init__(
        self,
        scenario: str,
        params: Mapping[str, object] | None = None,
        *,
        kind: str = "pv",
        name: str | None = None,
        memory_mb: int = 128,
        build: LabBuild | None = None,
        create_timeout: float = 300.0,
        ramdisk: Path | None = None,
        xl_options: Mapping[str, str] | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise LabError(f"unknown domU scenario {scenario!r}",
                           f"Scenarios: {', '.join(SCENARIOS)}.", exit_code=2)
        if kind not in TYPES:
            raise LabError(f"unknown domU type {kind!r}", f"Types: {', '.join(TYPES)}.",
                           exit_code=2)
        self.scenario = scenario
        self.params = {k: str(v) for k, v in (params or {}).items()}
        self.kind = kind
        self.name = name or f"gs-{scenario}-{os.getpid()}-{next(_counter)}"
        self.memory_mb = memory_mb
        self.create_timeout = create_timeout
        self._build = build
        self.ramdisk = ramdisk if ramdisk is not None or scenario != AGENT else agent_image()
        self.xl_options = dict(xl_options or {})
        self._tmp: str | None = None
        self.domid: int | None = None
        self.create_seconds: float | None = None

    # -------------------------------------------------------------- life cycle

    def start(self) -> Self:
        """``xl create`` the guest; return self once it has a domain id."""
        build = self._build or current_build()
        words = encode_params({"scenario": self.scenario, **self.params})
        self._tmp = tempfile.mkdtemp(prefix="gslab-domu-")
        cfg = Path(self._tmp) / f"{self.name}.cfg"
        cfg.write_text(xl_config(self.name, self.kind, build, words, self.memory_mb,
                                 self.ramdisk, self.xl_options))
        started = time.monotonic()
        proc = _run(["xl", "create", str(cfg)], timeout=self.create_timeout)
        self.create_seconds = time.monotonic() - started
        if proc.returncode != 0:
            self.destroy()
            raise LabError(f"xl create of domU {self.name} failed (exit {proc.returncode})",
                           (proc.stderr or proc.stdout).strip()[-2000:])
        got = _run(["xl", "domid", self.name])
        if got.returncode != 0 or not got.stdout.strip().isdigit():
            self.destroy()
            raise LabError(f"domU {self.name} has no domain id after xl create",
                           got.stderr.strip())
        self.domid = int(got.stdout.strip())
        return self

    def destroy(self) -> None:
        """Destroy the guest (idempotent; a guest that already powered off is fine)."""
        try:
            if self.domid is not None or self._tmp is not None:
                proc = _run(["xl", "destroy", self.name], timeout=120.0)
                if self.domid is not None:
                    self._wait_gone(self.domid, proc.stderr)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def _wait_gone(self, domid: int, xl_errors: str, timeout: float = 60.0) -> None:
        # By domain id, not name: a half-destroyed domain loses its name first and lingers
        # as "(null)", still holding ports in dom0.
        deadline = time.monotonic() + timeout
        while _run(["xl", "list", str(domid)]).returncode == 0:
            if time.monotonic() > deadline:
                raise LabError(f"domain {domid} ({self.name}) still exists after xl destroy",
                               xl_errors.strip()[-2000:] or "xl destroy printed nothing")
            time.sleep(0.25)

    def __enter__(self) -> Self:
        # A guest started already (boot_guest hands out started ones) is not created twice.
        return self if self.domid is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.destroy()

    # -------------------------------------------------------------- XenStore and console

    @property
    def home(self) -> str:
        """The guest's home path in XenStore, /local/domain/<domid>."""
        if self.domid is None:
            raise LabError(f"domU {self.name} is not started")
        return f"/local/domain/{self.domid}"

    def path(self, rel: str) -> str:
        """``rel`` made absolute under the guest's home path (absolute paths pass through)."""
        return rel if rel.startswith("/") else f"{self.home}/{rel}"

    def read_key(self, rel: str) -> str | None:
        """The value at ``rel`` (home-relative or absolute), or None if it does not exist."""
        proc = _run(["xenstore-read", self.path(rel)])
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else None

    def write_key(self, rel: str, value: str) -> None:
        """Write ``value`` at ``rel``; nodes dom0 creates under the guest's home stay its own."""
        proc = _run(["xenstore-write", self.path(rel), value])
        if proc.returncode != 0:
            raise LabError(f"xenstore-write {self.path(rel)} failed", proc.stderr.strip())

    def alive(self) -> bool:
        """True while ``xl`` still lists the guest."""
        return _run(["xl", "domid", self.name]).returncode == 0

    def wait_key(self, rel: str, timeout: float = 240.0) -> str:
        """Wait until ``rel`` exists and return its value; LabError with the console log if not."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.read_key(rel)
            if value is not None:
                return value
            if not self.alive():
                raise LabError(f"domU {self.name} died before writing {self.path(rel)}",
                               f"Its console:\n{self.console_tail()}")
            if time.monotonic() > deadline:
                raise LabError(
                    f"domU {self.name} did not write {self.path(rel)} within {timeout:.0f}s",
                    f"data/status = {self.read_key('data/status')!r}. "
                    f"Its console:\n{self.console_tail()}",
                )
            time.sleep(0.25)

    def wait_value(self, rel: str, predicate_value: str, timeout: float = 240.0) -> str:
        """Wait until ``rel`` holds ``predicate_value``; return it (LabError on timeout)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.read_key(rel)
            if value == predicate_value:
                return value
            time.sleep(0.25)
        raise LabError(f"{self.path(rel)} is {value!r}, not {predicate_value!r}, after "
                       f"{timeout:.0f}s", f"Its console:\n{self.console_tail()}")

    @property
    def console_path(self) -> Path:
        """Where xenconsoled logs this guest's console."""
        return CONSOLE_LOG_DIR / f"guest-{self.name}.log"

    def console_log(self) -> str:
        """Everything the guest printed so far ('' if nothing yet)."""
        try:
            return self.console_path.read_bytes().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def console_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the console log, for error messages.

        Followed by what Xen logged about this domain (a guest that crashed, e.g. with a triple
        fault, says so only in ``xl dmesg``).
        """
        text = self.console_log()
        tail = "\n".join(text.splitlines()[-lines:]) if text else "(empty console log)"
        xen = self.xen_log()
        return f"{tail}\nXen about d{self.domid}:\n{xen}" if xen else tail

    def xen_log(self, lines: int = 15) -> str:
        """The hypervisor's log lines about this domain (``xl dmesg``), '' if none."""
        if self.domid is None:
            return ""
        try:
            proc = _run(["xl", "dmesg"], timeout=60.0)
        except LabError:
            return ""
        mine = [line for line in proc.stdout.splitlines()
                if f"d{self.domid}v" in line or f"d{self.domid} " in line
                or f"Dom{self.domid} " in line]
        return "\n".join(mine[-lines:])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grantscope.lab.domu [--type T] --scenario S [--param K=V] -- CMD``."""
    parser = argparse.ArgumentParser(prog="python -m grantscope.lab.domu",
                                     description="Run CMD while a domU peer is up.")
    parser.add_argument("--type", default="pv", choices=TYPES)
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ready-key", default=None,
                        help="wait for this key before running CMD (default data/status; "
                        "data/agent/ready for the agent)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    params = dict(p.split("=", 1) for p in args.param if "=" in p)
    try:
        with DomU(args.scenario, params, kind=args.type) as peer:
            ready = args.ready_key or ("data/agent/ready" if args.scenario == AGENT
                                       else "data/status")
            peer.wait_key(ready, timeout=1200)
            sys.stderr.write(f"domu: {peer.name} is domain {peer.domid} ({args.scenario})\n")
            env = dict(os.environ, GRANTSCOPE_DOMU_ID=str(peer.domid),
                       GRANTSCOPE_DOMU_NAME=peer.name, GRANTSCOPE_DOMU_HOME=peer.home)
            if not cmd:
                return 0
            return subprocess.run(cmd, env=env, check=False).returncode
    except LabError as err:
        sys.stderr.write(f"domu: {err}\n")
        return 125


if __name__ == "__main__":
    raise SystemExit(main())
