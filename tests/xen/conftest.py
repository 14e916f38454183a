"""The real-Xen tier: runs INSIDE dom0 of the lab (``grantscope lab run -- pytest tests/xen``).

- Every test here is marked ``xen`` (``pytest -m xen`` selects them; the marker is registered in
  pyproject.toml and again below, so ``--strict-markers`` is fine).
- Outside a Xen dom0 collecting them is a usage error (exit 4) naming the lab command: they are
  never skipped, so the tier can never pass without running.
- An autouse fixture checks that each test leaves nothing behind in this process (no gntdev
  mapping or gntalloc page in /proc/self/maps, no new fd to /dev/xen/{gntdev,gntalloc,evtchn})
  and in dom0 (no new port in ``lsevtchn 0``).
- Fixtures start domU peers (grantscope.lab.domu) and always destroy them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from grantscope.lab import guest as lab_guest
from grantscope.lab import tier_time
from grantscope.lab.domu import DomU
from grantscope.lab.leaks import holdings, leaks_since, wait_guest_released
from grantscope.lab.paths import GUEST_TYPES_ENV
from grantscope.sources import xsdaemon


def in_dom0() -> bool:
    """True on a Xen dom0 with the devices loaded (the lab, or a real host)."""
    try:
        caps = Path("/proc/xen/capabilities").read_text()
    except OSError:
        return False
    return "control_d" in caps and os.path.exists("/dev/xen/evtchn")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xen: runs inside dom0 of the lab against real Xen")


# The guest types test_guest_types.py and test_self_map.py run (GUEST_TYPES_ENV,
# comma-separated; default all; their tests name it in the "guest" parameter):
# scripts/test-all.sh runs the PV ones with the rest of the tier and the PVH/HVM ones in a lab
# boot of their own.
GUEST_TYPE_MODULES = ("test_guest_types.py", "test_self_map.py")


def _deselect_other_guest_types(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = os.environ.get(GUEST_TYPES_ENV, "").strip()
    if not wanted:
        return
    kinds = {k.strip() for k in wanted.split(",") if k.strip()}
    other = [item for item in items
             if Path(item.path).name in GUEST_TYPE_MODULES
             and getattr(item, "callspec", None) is not None
             and item.callspec.params.get("guest") not in kinds]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _deselect_other_guest_types(config, items)
    here = Path(__file__).parent.resolve()
    ours = [item for item in items if here in Path(item.path).resolve().parents]
    for item in ours:
        item.add_marker(pytest.mark.xen)
    if ours and not in_dom0():
        # Never a skip: a real-Xen test that did not run against Xen proves nothing.
        raise pytest.UsageError(
            "tests/xen runs inside a Xen dom0, and this is not one: run it in the lab with "
            "'grantscope lab run -- .venv/bin/pytest -m xen tests/xen'"
        )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    """Cut the test's pytest-timeout to what the tier has left (grantscope.lab.tier_time).

    Runs before pytest-timeout reads the test's timeout: a test that would outlive the tier
    fails by its own timeout, and pytest still writes the report.
    """
    deadline = tier_time.deadline()
    if tier_time.time_is_up(deadline, time.time()):
        # No test started with a 1 s timeout: the session stops, this test fails saying why,
        # and the module fixtures' teardown (destroying guests) gets LEAST_TO_START to run.
        item.session.shouldstop = "the real-Xen tier's time is up"
        item.stash[_TIME_UP] = True
        item.add_marker(pytest.mark.timeout(tier_time.LEAST_TO_START), append=False)
        item.user_properties.append(("not_started", "the real-Xen tier's time was up"))
    elif deadline is not None:
        marker = item.get_closest_marker("timeout")
        own = (marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
               if marker is not None else None)
        if own is None:
            own = item.config.getoption("timeout", None) or item.config.getini("timeout")
        own_s = float(own) if own else None
        capped = tier_time.capped_timeout(own_s, deadline, time.time())
        if capped is not None and capped != own_s:
            item.add_marker(pytest.mark.timeout(capped), append=False)
            item.user_properties.append(("timeout_cut_to_the_tier", f"{capped:.0f}"))
    yield


_TIME_UP = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(_TIME_UP, False):
        pytest.fail("not started: the real-Xen tier's time was up (GRANTSCOPE_XEN_DEADLINE); "
                    "the session stops here and the tests not run count as failed",
                    pytrace=False)


# ------------------------------------------------------------------ what a test may leave behind


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a grant mapping, a gntalloc page, a device fd or a port."""
    before = holdings()
    booted_before = set(lab_guest.BOOTED)
    yield
    # A guest the test's fixture booted during the test (one that replaced a guest the
    # emulator killed) has ports in dom0 that xenstored and xenconsoled hold, not the test.
    new_guests = lab_guest.BOOTED - booted_before
    leaked = [line for line in leaks_since(before)
              if not any(f"Remote Domain {d}," in line for d in new_guests)]
    assert not leaked, f"{request.node.name} left behind:\n  " + "\n  ".join(leaked)


# ------------------------------------------------------------------ domU peers


@pytest.fixture()
def domu_factory() -> Iterator[Callable[..., DomU]]:
    """``domu_factory("offer", text="hi")`` starts a peer; all are destroyed after the test."""
    started: list[DomU] = []

    def start(scenario: str, kind: str = "pv", **params: object) -> DomU:
        peer = DomU(scenario, params, kind=kind)
        started.append(peer)
        return peer.start()

    yield start
    for peer in reversed(started):
        peer.destroy()
        if peer.domid is not None:
            wait_guest_released(peer.domid)  # its ports and XenStore directories: no leftover


@pytest.fixture(scope="module")
def offer_domu() -> Iterator[DomU]:
    """A PV domU running ``offer`` (module-scoped: booting one costs seconds), ready to map."""
    with DomU("offer", {"text": "hello from the offer peer"}) as peer:
        peer.wait_key("data/port")
        yield peer
    assert peer.domid is not None
    wait_guest_released(peer.domid)


@pytest.fixture
def paused_daemon() -> Iterator[int]:
    """The XenStore daemon's pid, for a test that stops it; it is sent SIGCONT at the end
    whatever happens, so a failing test never leaves xenstored stopped for the next ones."""
    daemon = xsdaemon.detect()
    assert daemon.pid is not None, daemon
    try:
        yield daemon.pid
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
