"""The QEMU command line that boots Xen with a PV dom0 (pure: builds argv, runs nothing).

Facts (shared/xenlab/NOTES.md): TCG only, ``-cpu qemu64,+npt`` (``+npt`` gives Xen HAP for
PVH/HVM guests at no cost), Xen as the multiboot ``-kernel``, dom0's kernel and initramfs as
comma-separated multiboot modules in ``-initrd``, where a comma inside a word is written ``,,``.
The host's ``/`` is shared read-only over 9p; a second, writable 9p share carries results out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grantscope.lab.errors import LabError

QEMU_BINARY = "qemu-system-x86_64"
HOSTROOT_TAG = "hostroot"
RESULTS_TAG = "gsresults"

XEN_ARGS = (
    "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 "
    "loglvl=all guest_loglvl=all noreboot"
)
DOM0_ARGS = "console=hvc0 earlyprintk=xen rdinit=/init loglevel=4"


def escape_opt(value: str) -> str:
    """Escape a value for QEMU's comma-separated option syntax: ``,`` becomes ``,,``."""
    return value.replace(",", ",,")


@dataclass(frozen=True)
class BootSpec:
    """What to boot: the Xen image, dom0's kernel + initramfs, its words, the shares."""

    xen: Path
    kernel: Path
    initrd: Path
    results_dir: Path
    dom0_words: str = ""                       # extra key=value words for dom0's /proc/cmdline
    memory_mb: int = 2048
    cpus: int = 2
    cpu_model: str = "qemu64,+npt"
    hostroot: Path = Path("/")
    interactive: bool = False                 # lab shell: the serial console is the terminal
    extra_xen_args: str = ""
    extra_qemu: tuple[str, ...] = field(default_factory=tuple)


def _check_module_path(path: Path, what: str) -> str:
    # A multiboot module is "PATH ARGS": the first space ends the path, and QEMU has no way
    # to quote one, so a path with a space cannot be booted.
    text = str(path)
    if " " in text:
        raise LabError(
            f"the lab's {what} path contains a space: {text}",
            "QEMU cannot pass a multiboot module whose path has a space. Set "
            "GRANTSCOPE_LAB_DIR to a directory without spaces and run 'grantscope lab build'.",
        )
    return text


def multiboot_modules(modules: list[tuple[Path, str]]) -> str:
    """The ``-initrd`` value: ``PATH ARGS`` per module joined by ``,``; inner commas doubled."""
    words = (_check_module_path(path, "multiboot module") + (f" {args}" if args else "")
             for path, args in modules)
    return ",".join(escape_opt(word) for word in words)


def virtfs_option(path: Path, tag: str, *, readonly: bool) -> str:
    """One ``-virtfs`` value: a local directory shared over 9p under ``tag``."""
    opts = [
        "local",
        f"path={escape_opt(str(path))}",
        f"mount_tag={tag}",
        "security_model=none",
        # '/' spans several filesystems: remap inode numbers so they stay unique in the guest.
        "multidevs=remap",
    ]
    if readonly:
        opts.append("readonly=on")
    return ",".join(opts)


def qemu_argv(spec: BootSpec, *, binary: str = QEMU_BINARY) -> list[str]:
    """The full QEMU argv for ``spec``."""
    xen_args = XEN_ARGS + (f" {spec.extra_xen_args}" if spec.extra_xen_args else "")
    dom0_args = DOM0_ARGS + (f" {spec.dom0_words}" if spec.dom0_words else "")
    # The console: stdio in both modes.  signal=off so that Ctrl-C in 'lab shell' reaches dom0
    # instead of killing QEMU; 'lab run' stops QEMU itself, by pid.
    argv = [
        binary,
        "-machine", "pc,accel=tcg",
        "-cpu", spec.cpu_model,
        "-m", str(spec.memory_mb),
        "-smp", str(spec.cpus),
        "-display", "none",
        "-vga", "none",
        "-monitor", "none",
        "-chardev", "stdio,id=gscon,signal=off",
        "-serial", "chardev:gscon",
        "-no-reboot",
        "-net", "none",
        "-kernel", _check_module_path(spec.xen, "Xen image"),
        "-append", xen_args,
        "-initrd", multiboot_modules([(spec.kernel, dom0_args), (spec.initrd, "")]),
        "-virtfs", virtfs_option(spec.hostroot, HOSTROOT_TAG, readonly=True),
        "-virtfs", virtfs_option(spec.results_dir, RESULTS_TAG, readonly=False),
    ]
    argv.extend(spec.extra_qemu)
    return argv


def format_words(words: Mapping[str, str]) -> str:
    """``{"gs_mode": "run"}`` -> ``"gs_mode=run"`` (values must already be command-line safe)."""
    return " ".join(f"{k}={v}" for k, v in words.items())
