"""The QEMU command line the lab builds (pure: nothing is booted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantscope.lab.errors import LabError
from grantscope.lab.qemu import (
    BootSpec,
    escape_opt,
    multiboot_modules,
    qemu_argv,
    virtfs_option,
)


def spec(**kw: object) -> BootSpec:
    base: dict[str, object] = dict(xen=Path("/lab/xen"), kernel=Path("/lab/vmlinuz"),
                                   initrd=Path("/lab/dom0.cpio.gz"),
                                   results_dir=Path("/lab/runs/1"))
    base.update(kw)
    return BootSpec(**base)  # type: ignore[arg-type]


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_escape_doubles_every_comma() -> None:
    assert escape_opt("a,b,,c") == "a,,b,,,,c"
    assert escape_opt("plain") == "plain"


def test_tcg_with_npt_and_no_kvm() -> None:
    argv = qemu_argv(spec())
    assert option(argv, "-machine") == ["pc,accel=tcg"]
    assert option(argv, "-cpu") == ["qemu64,+npt"]
    assert "-enable-kvm" not in argv and "kvm" not in " ".join(option(argv, "-machine"))
    assert "-no-reboot" in argv


def test_xen_args_go_to_append_unescaped() -> None:
    (append,) = option(qemu_argv(spec()), "-append")
    # -append is not comma-separated: Xen's own commas stay single.
    assert "com1=115200,8n1" in append
    assert "dom0_mem=1024M,max:1024M" in append
    assert ",," not in append


def test_dom0_kernel_and_initrd_are_multiboot_modules_with_commas_escaped() -> None:
    (initrd,) = option(qemu_argv(spec(dom0_words="gs_nonce=ab gs_x=1,2")), "-initrd")
    kernel_part, initrd_part = initrd.split(",/lab/")
    assert kernel_part.startswith("/lab/vmlinuz console=hvc0 ")
    assert "rdinit=/init" in kernel_part
    assert kernel_part.endswith("gs_nonce=ab gs_x=1,,2")
    assert initrd_part == "dom0.cpio.gz"


def test_multiboot_modules_join_and_escape() -> None:
    text = multiboot_modules([(Path("/a,b/k"), "x=1,2"), (Path("/i"), "")])
    assert text == "/a,,b/k x=1,,2,/i"


def test_space_in_a_module_path_is_refused_with_a_fix() -> None:
    with pytest.raises(LabError) as err:
        qemu_argv(spec(kernel=Path("/my lab/vmlinuz")))
    assert "space" in err.value.message
    assert "GRANTSCOPE_LAB_DIR" in err.value.explanation


def test_shares_host_root_read_only_and_results_writable() -> None:
    virtfs = option(qemu_argv(spec(results_dir=Path("/r,1"))), "-virtfs")
    assert len(virtfs) == 2
    root, results = virtfs
    assert root.startswith("local,path=/,mount_tag=hostroot,")
    assert root.endswith("readonly=on")
    assert "multidevs=remap" in root
    assert "path=/r,,1," in results and "mount_tag=gsresults" in results
    assert "readonly" not in results


def test_virtfs_option_escapes_the_path_only() -> None:
    assert virtfs_option(Path("/x,y"), "t", readonly=False) == (
        "local,path=/x,,y,mount_tag=t,security_model=none,multidevs=remap"
    )


def test_console_is_stdio_without_signals() -> None:
    argv = qemu_argv(spec())
    assert option(argv, "-chardev") == ["stdio,id=gscon,signal=off"]
    assert option(argv, "-serial") == ["chardev:gscon"]
    assert option(argv, "-display") == ["none"]
