"""Why a bound port hears nothing back, as lsevtchn shows our end (sources.lsevtchn)."""

from __future__ import annotations

from pathlib import Path

from grantscope.sources.lsevtchn import silent_peer_reason

WAITING = "  40: VCPU 0: Interdomain (Waiting connection) - Remote Domain 5"
CONNECTED = "  40: VCPU 0: Interdomain (Connected) - Remote Domain {domid}, Port {port}"


def fake_lsevtchn(tmp_path: Path, lines: str, rc: int = 0) -> str:
    tool = tmp_path / "lsevtchn"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{lines}\nEOF\nexit {rc}\n")
    tool.chmod(0o755)
    return str(tool)


def test_our_end_waiting_again_means_the_peer_closed_its_port(tmp_path: Path) -> None:
    tool = fake_lsevtchn(tmp_path, "   1: VCPU 0: Virtual IRQ 0\n" +
                                   WAITING)
    why = silent_peer_reason(40, 5, 7, tool=tool)
    assert why is not None
    assert "the peer closed its end: d5 port 7 was unbound" in why
    assert "d0 port 40 is back to waiting" in why


def test_a_connected_channel_means_the_peer_is_there_but_silent(tmp_path: Path) -> None:
    tool = fake_lsevtchn(tmp_path, CONNECTED.format(domid=5, port=7))
    why = silent_peer_reason(40, 5, 7, tool=tool)
    assert why is not None and "still connected" in why and "does not notify back" in why


def test_our_port_gone(tmp_path: Path) -> None:
    tool = fake_lsevtchn(tmp_path, "   1: VCPU 0: Virtual IRQ 0")
    why = silent_peer_reason(40, 5, 7, tool=tool)
    assert why == "port 40 is no longer open in d0 (lsevtchn 0)"


def test_nothing_said_when_lsevtchn_cannot_tell(tmp_path: Path) -> None:
    # a domU: the tool fails (no privilege); or our port is bound to someone else
    assert silent_peer_reason(40, 5, 7, tool=fake_lsevtchn(tmp_path, "", rc=1)) is None
    other = fake_lsevtchn(tmp_path, CONNECTED.format(domid=6, port=9))
    assert silent_peer_reason(40, 5, 7, tool=other) is None
