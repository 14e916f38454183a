"""``grantscope lab run`` / ``lab shell``: boot the lab, run one job as root in dom0, power off.

The job travels through the writable results share: ``lab-job.env`` (where to bind the share in
dom0) and ``lab-job.sh`` (cd to the caller's directory, the caller's PATH/VIRTUAL_ENV, exec the
command).  Dom0 writes ``lab-status`` (the job's exit status), ``console.log`` is the full serial
console, and dmesg / xl dmesg / guest consoles are saved at the end.  QEMU runs in its own
session, is bounded by a timeout, and is always reaped by its own pid (also on Ctrl-C, SIGTERM,
and if this process dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from grantscope.lab import configs, deps, paths, pyguest, release
from grantscope.lab.build import LabBuild, checkout_dir, current_build, is_stale, release_root
from grantscope.lab.build import build as build_lab
from grantscope.lab.console import ConsoleStream
from grantscope.lab.errors import LabError
from grantscope.lab.qemu import QEMU_BINARY, BootSpec, format_words, qemu_argv

# Exit statuses of the lab itself (the job's own status is returned as is).
EXIT_TIMEOUT = 124          # like timeout(1)
EXIT_LAB_FAILED = 125       # the lab did not boot or lost the job

DEFAULT_TIMEOUT = 1800.0
DEFAULT_BOOT_TIMEOUT = 480.0

# Extra words for Xen's command line (e.g. "hap_2mb=0"), for experiments with the hypervisor.
XEN_ARGS_ENV = "GRANTSCOPE_LAB_XEN_ARGS"
# The emulator and its CPU model, for the guest-death experiments (issue 18, docs/LAB.md).
QEMU_ENV = "GRANTSCOPE_LAB_QEMU"
CPU_ENV = "GRANTSCOPE_LAB_CPU"
CPUS_ENV = "GRANTSCOPE_LAB_CPUS"
# The caller's environment that follows the job into dom0.
PASSED_ENV = (
    "PATH", "VIRTUAL_ENV", "PYTHONPATH", "LANG", "LC_ALL", "CI", "PYTEST_ADDOPTS",
    "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
)


class LabTimeout(LabError):
    """The job (or the boot) ran past its time bound; QEMU was killed."""

    exit_code = EXIT_TIMEOUT


class LabBootError(LabError):
    """The lab did not come up (no dom0, no xenstored) or lost the job."""

    exit_code = EXIT_LAB_FAILED


@dataclass(frozen=True)
class RunResult:
    """How a lab run ended."""

    status: int                 # the job's exit status
    results_dir: Path
    boot_seconds: float         # QEMU start to dom0 ready (xenstored answering)
    total_seconds: float


def new_results_dir(root: Path) -> Path:
    """A fresh, unique results directory under ``root/runs`` (parallel runs never collide)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = root / "runs" / f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    return path


def job_environment(environ: Mapping[str, str], *, results: Path, build: LabBuild,
                    lab_root: Path, tty: bool) -> dict[str, str]:
    """The environment the job gets in dom0: the caller's PATH/venv plus the lab's variables."""
    env = {k: environ[k] for k in PASSED_ENV if k in environ}
    env.update({k: v for k, v in environ.items() if k.startswith("GRANTSCOPE_")})
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["HOME"] = "/root"
    env["TERM"] = environ.get("TERM", "dumb") if tty else "dumb"
    env[paths.IN_LAB_ENV] = "1"
    env[paths.LAB_DIR_ENV] = str(lab_root)
    env[paths.LAB_BUILD_ENV] = str(build.directory)
    env[paths.LAB_RESULTS_ENV] = str(results)
    return env


def caller_venv(environ: Mapping[str, str]) -> str | None:
    """The venv the caller runs grantscope from: $VIRTUAL_ENV, else this Python's own venv."""
    if environ.get("VIRTUAL_ENV"):
        return environ["VIRTUAL_ENV"]
    return sys.prefix if sys.prefix != sys.base_prefix else None


def release_job_env(environ: Mapping[str, str], env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """What ``lab-job.env`` adds on a release root, and the job's environment there.

    dom0 shows the root's venv (grantscope installed with the root's Python) at the caller's
    venv path, so ``.venv/bin/pytest``, ``sys.executable`` and scripts that name the venv all
    run the release's Python; with no caller venv, the root's venv leads PATH instead.
    """
    venv = caller_venv(environ)
    out = dict(env)
    if venv is None:
        out["PATH"] = f"{release.ROOT_VENV}/bin:{out.get('PATH', '')}"
        out["VIRTUAL_ENV"] = release.ROOT_VENV
        return f"GS_VENV_FROM={release.ROOT_VENV}\n", out
    return (f"GS_VENV_FROM={release.ROOT_VENV}\nGS_VENV={shlex.quote(str(Path(venv)))}\n",
            out)


def job_script(command: Sequence[str] | None, *, cwd: Path, env: Mapping[str, str]) -> str:
    """The shell script dom0 runs: cd, export, exec the command (or an interactive bash)."""
    lines = [
        "# written by 'grantscope lab run': the job, run as root in dom0",
        f"cd {shlex.quote(str(cwd))} || {{ echo "
        f"{shlex.quote(f'gslab: no directory {cwd} in dom0')} >&2; exit 125; }}",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    if command:
        lines.append(f"exec {shlex.join(command)}")
    else:
        # No rc files: the host's ~/.bashrc (pyenv hooks and the like) costs minutes under TCG.
        lines.append("export PS1='gslab-dom0:\\w# '")
        lines.append("exec /bin/bash --norc --noprofile -i")

    return "\n".join(lines) + "\n"


def dom0_words(nonce: str, *, interactive: bool, config: configs.LabConfig) -> str:
    """The ``gs_*`` words for dom0's command line: the console nonce, the mode, the config."""
    words = {"gs_nonce": nonce, "gs_mode": "shell" if interactive else "run",
             **config.dom0_words()}
    return format_words(words)


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: QEMU gets SIGKILL if this process dies, so an
    # orphaned VM can never outlive its 'lab run'.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Stop QEMU by its own pid: SIGTERM, then SIGKILL, and always wait for it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


class _Terminated(Exception):
    """SIGTERM/SIGHUP arrived while QEMU was running."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signal.Signals(signum).name)

    old = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            old[sig] = signal.signal(sig, handler)
    except ValueError:      # not the main thread: leave signals alone
        old = {}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_bytes().decode(errors="replace").replace("\r", "")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:])


def _say(message: str) -> None:
    sys.stderr.write(f"lab: {message}\n")
    sys.stderr.flush()


def run(
    command: Sequence[str] | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
    results_dir: Path | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    output: BinaryIO | None = None,
    verbose: bool = False,
    cpus: int = 2,
    memory_mb: int = 2048,
    config: configs.LabConfig | None = None,
) -> RunResult:
    """Boot the lab and run ``command`` in dom0 (``None``: an interactive shell on the console).

    Streams the job's output to ``output`` (default stdout) and returns its exit status.
    Raises :class:`LabBootError` if dom0 never gets ready and :class:`LabTimeout` past
    ``timeout`` seconds (boot included).  ``config`` is the lab configuration to boot
    (default: :data:`configs.DEFAULT`); it is recorded in the results directory.
    """
    lab_config = config or configs.get(None)
    deps.require(deps.RUN_TOOLS)
    try:
        build = current_build(config=lab_config)
    except LabError:
        if lab_config.release is None:
            raise
        _say(f"no build of the {lab_config.name} configuration yet: building it")
        build = build_lab(config=lab_config)
    if os.environ.get(paths.LAB_BUILD_ENV) is None and is_stale(build):
        # A changed init script or peer would otherwise boot silently with the old ones.
        _say(f"the lab build {build.key} was made from other init scripts, peer or module "
             "lists than this checkout's: building again")
        build = build_lab(config=lab_config)
    lab_root = paths.lab_dir()
    results = (results_dir or new_results_dir(lab_root)).resolve()
    results.mkdir(parents=True, exist_ok=True)
    for stale in ("lab-status", "console.log"):
        (results / stale).unlink(missing_ok=True)
    interactive = command is None
    out = output if output is not None else sys.stdout.buffer
    env = job_environment(
        os.environ if environ is None else environ, results=results, build=build,
        lab_root=lab_root, tty=interactive or out.isatty(),
    )
    # The Python guest image carries this checkout's grantscope: refresh it before every boot
    # (a hash of file stats when nothing changed; about a second to rebuild).
    env[paths.PYGUEST_ENV] = str(pyguest.ensure_image(build, lab_root))
    workdir = (cwd or Path.cwd()).resolve()
    job_env = f"GS_RESULTS={shlex.quote(str(results))}\n"
    root_words = ""
    root = Path("/")
    if lab_config.release is not None:
        # dom0 runs from the release's root: the job gets that root's venv, and sees this
        # checkout, the lab directory and its working directory at their host paths.
        root = release_root(lab_config, lab_root)
        release.prepare_checkout(root, checkout_dir())
        venv_lines, env = release_job_env(os.environ if environ is None else environ, env)
        binds = sorted({str(workdir), str(checkout_dir()), str(lab_root)}, key=len)
        job_env += f"GS_BINDS={shlex.quote(' '.join(binds))}\n" + venv_lines
        root_words = " " + format_words({"gs_root": str(root)})
    (results / "lab-job.sh").write_text(job_script(command, cwd=workdir, env=env))
    (results / "lab-job.env").write_text(job_env)
    configs.record(lab_config, results, booted={
        "xen_package_version": build.xen_version, "kernel_package": build.kernel_package,
        "kernel_package_version": build.kernel_package_version,
        "kernel_release": build.kernel_release, "build": str(build.directory),
        "dom0_root": str(root)})

    nonce = secrets.token_hex(8)
    words = dom0_words(nonce, interactive=interactive, config=lab_config) + root_words
    knobs = environ or os.environ
    spec = BootSpec(build.xen, build.kernel, build.dom0_initrd, results, dom0_words=words,
                    cpus=int(knobs.get(CPUS_ENV) or cpus), memory_mb=memory_mb,
                    interactive=interactive, extra_xen_args=knobs.get(XEN_ARGS_ENV, ""),
                    cpu_model=knobs.get(CPU_ENV) or BootSpec.cpu_model)
    argv = qemu_argv(spec, binary=knobs.get(QEMU_ENV) or QEMU_BINARY)
    (results / "qemu-argv.txt").write_text(shlex.join(argv) + "\n")
    _say(f"booting Xen {build.xen_version} + Linux {build.kernel_release} under QEMU, "
         f"configuration {lab_config.name} (results: {results})")
    started = time.monotonic()
    with open(results / "qemu-stderr.log", "wb") as qemu_err, _terminate_as_exception():
        proc = subprocess.Popen(
            argv,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=None if interactive else subprocess.PIPE,
            stderr=qemu_err,
            start_new_session=not interactive,
            preexec_fn=_set_pdeathsig,
        )
        try:
            if interactive:
                boot_s = _wait_interactive(proc, started + timeout)
            else:
                boot_s = _pump(proc, nonce, results, out, started, timeout, boot_timeout,
                               verbose)
        except (KeyboardInterrupt, _Terminated):
            _say("interrupted: stopping QEMU")
            _reap(proc)
            raise KeyboardInterrupt from None
        finally:
            _reap(proc)
    total = time.monotonic() - started
    status = _read_status(results)
    if status is None:
        raise LabBootError(
            "the lab powered off without reporting the job's exit status",
            f"Last console lines:\n{_tail(results / 'console.log')}\n"
            f"Full console: {results / 'console.log'}",
        )
    booted = "" if interactive else f"dom0 ready after {boot_s:.1f}s; "
    _say(f"{booted}job exit status {status}; total {total:.1f}s; results in {results}")
    return RunResult(status, results, boot_s, total)


def _read_status(results: Path) -> int | None:
    try:
        return int((results / "lab-status").read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_interactive(proc: subprocess.Popen[bytes], deadline: float) -> float:
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise LabTimeout("the lab shell ran past its --timeout; QEMU was stopped") from None
    return 0.0


def _pump(proc: subprocess.Popen[bytes], nonce: str, results: Path, out: BinaryIO,
          started: float, timeout: float, boot_timeout: float, verbose: bool) -> float:
    """Relay the console until QEMU exits; return the boot time.  Raises on boot failure."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    stream = ConsoleStream(nonce)
    ready_at: float | None = None
    ended = False
    ended_at = 0.0
    failure: str | None = None
    deadline = started + timeout
    boot_deadline = started + min(boot_timeout, timeout)
    with open(results / "console.log", "wb") as log:
        while True:
            now = time.monotonic()
            if ready_at is None and now > boot_deadline:
                raise LabBootError(
                    f"dom0 did not become ready within {boot_timeout:.0f}s (no xenstored)",
                    f"Last console lines:\n{_tail(results / 'console.log')}\n"
                    f"Full console: {results / 'console.log'}",
                )
            if now > deadline:
                if _read_status(results) is not None:
                    # The job finished; only the power-off (log collection) ran late.
                    _say("the job finished but dom0 did not power off in time: stopping QEMU")
                    ended = True
                    break
                raise LabTimeout(
                    f"the job ran past --timeout {timeout:.0f}s; QEMU was stopped",
                    f"Full console: {results / 'console.log'}",
                )
            if ended and now > (ended_at + 60):
                break       # job done but no power-off within a minute: stop it ourselves
            readable, _, _ = select.select([fd], [], [], 1.0)
            if not readable:
                continue
            data = os.read(fd, 65536)
            if not data:
                break       # QEMU exited (power-off) or closed its console
            log.write(data)
            log.flush()
            if verbose and not stream.passing:
                sys.stderr.buffer.write(data)
                sys.stderr.flush()
            shown, markers = stream.feed(data)
            if shown:
                out.write(shown)
                out.flush()
            for marker in markers:
                if marker.kind == "READY":
                    ready_at = time.monotonic()
                    _say(f"dom0 ready after {ready_at - started:.1f}s; running the job")
                elif marker.kind == "END":
                    ended = True
                    ended_at = time.monotonic()
                elif marker.kind == "FAIL":
                    failure = marker.detail
    if ended and proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    if failure is not None:
        raise LabBootError(
            f"the lab failed to boot: {failure}",
            f"Last console lines:\n{_tail(results / 'console.log')}\n"
            f"Full console: {results / 'console.log'}",
        )
    if ready_at is None:
        raise LabBootError(
            "QEMU exited before dom0 became ready",
            f"QEMU exit status {proc.poll()}. Last console lines:\n"
            f"{_tail(results / 'console.log')}\nQEMU's errors: {results / 'qemu-stderr.log'}",
        )
    return ready_at - started
