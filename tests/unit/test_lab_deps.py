"""The message when the lab's host tools are missing."""

from __future__ import annotations

from grantscope.lab.deps import BUILD_TOOLS, RUN_TOOLS, Tool, missing_tools, missing_tools_error


def test_missing_commands_are_found_with_which() -> None:
    tools = [Tool("qemu-system-x86_64", "qemu-system-x86", "boot"), Tool("gcc", "gcc", "build")]
    missing = missing_tools(tools, which=lambda name: None if name == "gcc" else "/usr/bin/x")
    assert [t.name for t in missing] == ["gcc"]


def test_missing_files_are_checked_on_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    present = tmp_path / "libc.a"
    present.write_text("")
    tools = [Tool(str(present), "libc6-dev", "link"), Tool(str(tmp_path / "no"), "x", "y")]
    assert [t.package for t in missing_tools(tools, which=lambda n: None)] == ["x"]


def test_message_names_tools_packages_and_the_fix() -> None:
    missing = [Tool("qemu-system-x86_64", "qemu-system-x86", "boot Xen under QEMU"),
               Tool("depmod", "kmod", "index modules"), Tool("modprobe", "kmod", "list deps")]
    err = missing_tools_error(missing)
    assert err.exit_code == 2
    assert err.message == "the lab needs 3 tools not installed here"
    text = err.explanation
    assert "qemu-system-x86_64 (package qemu-system-x86): needed to boot Xen under QEMU" in text
    # Each package once, sorted, in one copy-pasteable command.
    assert "apt-get install kmod qemu-system-x86\n" in text
    assert "grantscope lab build --install-deps" in text


def test_one_missing_tool_is_singular() -> None:
    err = missing_tools_error([Tool("gcc", "gcc", "build the peer")])
    assert err.message == "the lab needs 1 tool not installed here"


def test_every_tool_names_a_package_and_purpose() -> None:
    for tool in (*BUILD_TOOLS, *RUN_TOOLS):
        assert tool.package and tool.purpose
    assert {"qemu-system-x86", "xen-utils-4.17", "xenstore-utils"} <= {t.package for t in RUN_TOOLS}
