"""grantscope on both ends of the mailbox, with the guest end in a PV, PVH and HVM guest.

Each guest boots the lab's Python guest image (grantscope.lab.pyguest): the guest runs the same
grantscope as dom0, driven through its agent (grantscope.lab.guest.PyGuest).  For every guest
type: the guest offers and dom0 maps, notifies and ping-pongs; dom0 offers and the guest maps,
replies and notifies back; the guest ping-pongs against dom0; failing maps are explained from
inside the guest; doctor names the guest type.  The TUI runs headless in the PVH guest.

PVH and HVM guests are auto-translated: their gntdev maps into ballooned pages, not PTEs, which
is the path the project's SR-IOV origin (an HVM VF domain) could not prove.
"""

from __future__ import annotations

import functools
import inspect
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from grantscope.lab.guest import GuestResult, PyGuest, boot_guest
from grantscope.lab.guest_death import RETRY_PROPERTY, logged_death, may_retry
from grantscope.lab.leaks import wait_ports_released
from grantscope.xen.xenstore import XenStore

GRANTSCOPE = str(Path(sys.executable).with_name("grantscope"))
GUEST_TYPE = {"pv": "PV", "pvh": "PVH", "hvm": "HVM"}
TUI_SCRIPT = (Path(__file__).with_name("guest_tui.py")).read_text()
# A domid no lab guest gets (the lab boots a few dozen at most), below DOMID_FIRST_RESERVED.
NOT_A_GUEST = 32000

pytestmark = pytest.mark.timeout(1500)


class GuestBox:
    """The module's guest of one type, booted again only when Xen logged its death
    (grantscope.lab.guest_death says when); every death it retried is recorded."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.guest = boot_guest(kind)
        # Retries not yet recorded in a test's JUnit properties (boot deaths included).
        self.unrecorded: list[str] = [f"booting: {d}" for d in self.guest.boot_deaths]

    def replace(self, why: str) -> PyGuest:
        """Destroy the dead guest, note why, and boot a new one."""
        dead = self.guest
        self.unrecorded.append(why)
        sys.stderr.write(f"\ntest_guest_types: the {self.kind} guest d{dead.domid}: {why}; "
                         f"Xen said:\n{dead.xen_log() or '(nothing)'}\nbooting another\n")
        self._destroy(dead)
        self.guest = boot_guest(self.kind)
        self.unrecorded += [f"booting: {d}" for d in self.guest.boot_deaths]
        return self.guest

    def record(self, node: pytest.Item) -> None:
        """Put the retries not yet recorded into ``node``'s JUnit report."""
        node.user_properties += [(RETRY_PROPERTY, what) for what in self.unrecorded]
        self.unrecorded.clear()

    def close(self) -> None:
        """Destroy the guest and wait until dom0 has let go of its ports."""
        self._destroy(self.guest)

    @staticmethod
    def _destroy(guest: PyGuest) -> None:
        guest.destroy()
        if guest.domid is not None:
            wait_ports_released(guest.domid)


@pytest.fixture(scope="module", params=list(GUEST_TYPE))
def guest(request: pytest.FixtureRequest) -> Iterator[GuestBox]:
    """One guest of each type for the whole module (an HVM boot costs a minute or more)."""
    box = GuestBox(request.param)
    yield box
    box.close()


def on_a_live_guest(test: Callable[[PyGuest], None]) -> Callable[..., None]:
    """Run ``test`` on the box's guest; run it again on a new guest only if the guest died in
    a way grantscope.lab.guest_death allows to retry (a PVH/HVM death Xen logged, at most once,
    never after an assertion failure).  Each retry goes into the test's JUnit report.

    A guest found dead before the test (it died after the previous one) is replaced under the
    same rule and recorded the same way.
    """

    @functools.wraps(test)
    def run(guest: GuestBox, request: pytest.FixtureRequest) -> None:
        try:
            current = guest.guest
            if not current.alive():
                death = logged_death(current.domid)
                decision = may_retry(guest.kind, booting=False, retries=0, death=death)
                assert decision.retry, (f"the {guest.kind} guest d{current.domid} was found "
                                        f"dead before {test.__name__}: {decision.why}")
                current = guest.replace(f"found dead before {test.__name__}: {decision.why}")
            retries = 0
            while True:
                try:
                    test(current)
                    return
                except Exception as err:
                    if current.alive():
                        raise
                    death = logged_death(current.domid)
                    decision = may_retry(guest.kind, booting=False, retries=retries,
                                         death=death, error=err)
                    if not decision.retry:
                        err.add_note(f"the {guest.kind} guest d{current.domid} died; "
                                     f"not retried: {decision.why}")
                        raise
                    retries += 1
                    first = (str(err).splitlines() or [type(err).__name__])[0][:200]
                    current = guest.replace(f"during {test.__name__} ({first}): {decision.why}")
        finally:
            guest.record(request.node)

    # pytest reads the fixtures a test needs from its signature: the box and the request.
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
         for name in ("guest", "request")])
    return run


def dom0_json(*args: str, timeout: float = 300) -> dict[str, Any]:
    """Run grantscope in dom0; its one JSON document (asserting exit 0)."""
    proc = subprocess.run([GRANTSCOPE, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, (args, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def guest_json(result: GuestResult, rc: int = 0) -> dict[str, Any]:
    """A guest command's JSON, asserting its exit status."""
    assert result.rc == rc, (result.argv, result.rc, result.stdout[-3000:], result.stderr[-3000:])
    return result.json()


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The record of probe step ``name`` in a ``probe run --json`` document."""
    found = [s for s in doc["steps"] if s["name"] == name]
    assert found, (name, [s["name"] for s in doc["steps"]])
    record: dict[str, Any] = found[0]
    return record


def wait_node(path: str, timeout: float = 300.0) -> bytes:
    """Wait until ``path`` exists in XenStore; its value."""
    deadline = time.monotonic() + timeout
    with XenStore.open() as xs:
        while (value := xs.read_or_none(path)) is None:
            assert time.monotonic() < deadline, f"{path} did not appear within {timeout:g}s"
            time.sleep(0.2)
    return value


def gone(path: str) -> bool:
    """True if ``path`` does not exist in XenStore."""
    with XenStore.open() as xs:
        return xs.read_or_none(path) is None


@on_a_live_guest
def test_doctor_in_the_guest_names_its_type_and_limits(guest: PyGuest) -> None:
    doc = guest_json(guest.run(["grantscope", "doctor", "--json"]))
    assert doc["role"] == "domU" and doc["domid"] == guest.domid
    assert doc["guest_type"] == GUEST_TYPE[guest.kind]
    assert guest.read_key("data/agent/type") == GUEST_TYPE[guest.kind]
    checks = {(c["name"], c["summary"]): c for c in doc["checks"]}
    assert checks[("device gntdev", "/dev/xen/gntdev opens read-write")]["status"] == "ok"
    cannot = checks[("cannot", "read the hypervisor's grant and event tables")]
    assert "xl debug-keys" in cannot["detail"]
    mapping = checks[("can", "map other domains' grants (gntdev)")]["detail"]
    assert ("ballooned" in mapping) == (guest.kind != "pv")


@on_a_live_guest
def test_loopback_self_map_runs_in_pv_and_is_refused_in_pvh_and_hvm(guest: PyGuest) -> None:
    # Mapping its own grant makes the offered page a hole in a PVH/HVM guest (Xen's
    # p2m_add_page; test_self_map.py): the probe refuses there, with the reason.
    done = guest.run(["grantscope", "probe", "run", "mailbox-loopback", "--json"])
    if guest.kind == "pv":
        assert guest_json(done)["ok"] is True
    else:
        error = guest_json(done, rc=2)["error"]
        assert f"this is a {GUEST_TYPE[guest.kind]} guest" in error["message"]
        assert "force=true" in error["explanation"]
    assert guest.alive()


@on_a_live_guest
def test_guest_offers_dom0_maps_notifies_and_pingpongs(guest: PyGuest) -> None:
    mbox = guest.path("data/gmbox")
    text = f"from the {guest.kind} guest"
    offer = guest.submit(["grantscope", "offer", "--to", "0", "--writable", "--text", text,
                          "--publish", mbox, "--wait", "900", "--echo", "--json"], timeout=1000)
    try:
        wait_node(f"{mbox}/port")
        mapped = dom0_json("probe", "run", "map-grant", f"domid={guest.domid}",
                           f"gref=xs:{mbox}/gref", "--json")
        assert mapped["ok"] is True
        head = step(mapped, "read the mapped page")["result"]
        assert text in json.dumps(head), head
        back = dom0_json("notify", "--domid", str(guest.domid), "--port", f"xs:{mbox}/port",
                         "--wait", "30", "--json")
        assert back["ok"] is True and back["notified_back"] is True
        pp = dom0_json("pingpong", "--domid", str(guest.domid), "--port", f"xs:{mbox}/port",
                       "--count", "20", "--timeout", "30", "--json")
        assert pp["ok"] is True and pp["count"] == 20
        assert 0 < pp["min_us"] <= pp["p50_us"] <= pp["max_us"]
    finally:
        guest.signal(offer, signal.SIGTERM)
    done = guest.result(offer)
    # SIGTERM ends the wait; the offer still cleans up and says what the peer did.
    assert done.rc == 128 + signal.SIGTERM, (done.rc, done.stdout, done.stderr)
    result = done.json()
    assert result["notified"] is True and result["interrupted"] == "SIGTERM"
    assert gone(f"{mbox}/gref") and gone(f"{mbox}/port")


@on_a_live_guest
def test_dom0_offers_guest_maps_replies_and_notifies_back(guest: PyGuest) -> None:
    mbox = guest.path("data/dmbox")
    reply = f"reply from the {guest.kind} guest"
    offer = subprocess.Popen(
        [GRANTSCOPE, "offer", "--to", str(guest.domid), "--writable", "--text", "from dom0",
         "--publish", mbox, "--wait", "600", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_node(f"{mbox}/port")
        mapped = guest_json(guest.run(
            ["grantscope", "probe", "run", "map-grant", "domid=0", f"gref=xs:{mbox}/gref",
             "writable=true", f"reply={reply}", "--json"]))
        assert mapped["ok"] is True
        assert "from dom0" in json.dumps(step(mapped, "read the mapped page")["result"])
        notified = guest_json(guest.run(["grantscope", "notify", "--domid", "0", "--port",
                                         f"xs:{mbox}/port", "--json"]))
        assert notified["ok"] is True
        out, err = offer.communicate(timeout=300)
    finally:
        if offer.poll() is None:
            offer.terminate()
            offer.communicate(timeout=120)
    assert offer.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["notified"] is True
    assert bytes.fromhex(doc["page_head"]).startswith(reply.encode() + b"\0")
    assert gone(f"{mbox}/gref")


@on_a_live_guest
def test_guest_pingpongs_against_a_dom0_echo(guest: PyGuest) -> None:
    mbox = guest.path("data/echo")
    echo = subprocess.Popen(
        [GRANTSCOPE, "offer", "--to", str(guest.domid), "--text", "echo", "--publish", mbox,
         "--wait", "600", "--echo", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_node(f"{mbox}/port")
        pp = guest_json(guest.run(["grantscope", "pingpong", "--domid", "0", "--port",
                                   f"xs:{mbox}/port", "--count", "20", "--timeout", "30",
                                   "--json"]))
        assert pp["ok"] is True and pp["count"] == 20
    finally:
        echo.send_signal(signal.SIGTERM)
        out, err = echo.communicate(timeout=120)
    assert echo.returncode == 128 + signal.SIGTERM, (out, err)
    assert json.loads(out)["notified"] is True
    assert gone(f"{mbox}/port")


@on_a_live_guest
def test_failing_maps_are_explained_inside_the_guest(guest: PyGuest) -> None:
    # dom0 grants a page to a domain that is not this guest, then the guest tries to map it.
    # Not a small domid: a guest booted again after a death gets the next one (CI's PVH guest
    # was d7 by then, and the grant was its own).
    assert guest.domid != NOT_A_GUEST
    other = subprocess.Popen(
        [GRANTSCOPE, "offer", "--to", str(NOT_A_GUEST), "--publish",
         "/local/domain/0/data/gs-not-yours", "--wait", "600", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        gref = int(wait_node("/local/domain/0/data/gs-not-yours/gref"))
        theirs = guest_json(guest.run(["grantscope", "map", "--domid", "0", "--gref", str(gref),
                                       "--ro", "--json"]), rc=1)
        unknown = guest_json(guest.run(["grantscope", "map", "--domid", "0", "--gref",
                                        "60000", "--ro", "--json"]), rc=1)
        explained = guest_json(guest.run(["grantscope", "probe", "run", "explain-map",
                                          "domid=0", f"gref={gref}", "--json"]))
    finally:
        other.send_signal(signal.SIGTERM)
        other.communicate(timeout=120)
    # mmap() says only EINVAL; the one-byte GRANT_COPY names Xen's own status, from the guest.
    for doc, status, name in ((theirs, -1, "general_error"), (unknown, -3, "bad_gntref")):
        error = doc["error"]
        assert doc["ok"] is False and error["errno_name"] == "EINVAL", error
        assert (error["gnttab_status"], error["gnttab_status_name"]) == (status, name), error
        assert "GRANT_COPY" in error["explanation"], error
        assert f"{status} {name.replace('_', ' ')}" in error["explanation"], error
    assert "not for this domain" in theirs["error"]["explanation"]
    # explain-map completes (its map step may fail) and says the same in its own steps.
    assert explained["ok"] is True
    assert step(explained, "map the grant")["ok"] is False
    copy = step(explained, "copy one byte with GRANT_COPY")["result"]
    assert (copy["status"], copy["status_name"]) == (-1, "general_error")


@pytest.mark.parametrize("guest", ["pvh"], indirect=True)
@on_a_live_guest
def test_tui_runs_headless_in_a_pvh_guest_and_shows_the_mapped_page(guest: PyGuest) -> None:
    mbox = guest.path("data/tui")
    offer = subprocess.Popen(
        [GRANTSCOPE, "offer", "--to", str(guest.domid), "--text", "page for the TUI",
         "--publish", mbox, "--wait", "900", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        gref = int(wait_node(f"{mbox}/gref"))
        # a file, not python3 -c: the script is longer than one request (one XenStore message)
        guest.put_file("/tmp/guest_tui.py", TUI_SCRIPT)
        shown = guest.run(["python3", "/tmp/guest_tui.py", "0", str(gref), "page for the TUI"],
                          timeout=900)
    finally:
        offer.send_signal(signal.SIGTERM)
        offer.communicate(timeout=120)
    doc = guest_json(shown)
    # the whole document as text: pytest would cut a dict's repr to 240 characters
    whole = json.dumps(doc, indent=1)
    assert doc["timed_out"] == [], whole
    assert doc["done"] is True, whole
    assert "domU" in doc["hostbar"] and "PVH" in doc["hostbar"], doc["hostbar"]
    assert doc["steps"] and all(ok for _name, ok, _why in doc["steps"]), doc["steps"]
    assert doc["sources"], whole
    assert doc["shown"] is True, whole
    assert bytes.fromhex(doc["head"]).startswith(b"page for the TUI\0")
    assert "page for the TUI"[:16] in doc["rows"][0], doc["rows"]
    assert doc["cleaned"] is True
