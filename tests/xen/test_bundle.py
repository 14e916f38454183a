"""The diagnostic bundle on real Xen: run INSIDE dom0 of the lab.

    grantscope lab run -- .venv/bin/pytest -q tests/xen/test_bundle.py

With a PV domU running the ``offer`` scenario (it grants dom0 a page and offers a port):
export with the real command, check what the bundle caught (the domU's XenStore keys, its
unbound port in the hypervisor's 'e' dump, xl's domain list), that a planted VNC password
appears nowhere in the archive, then open it on the ``replay`` backend.  Then diff exports
taken before, during and after a probe that maps the domU's grant.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantscope.bundle.collectors import ExportSources, standard_collectors
from grantscope.bundle.diff import diff_bundles
from grantscope.bundle.export import export_bundle
from grantscope.bundle.reader import read_bundle
from grantscope.cli import main
from grantscope.host.replay import ReplayHost
from grantscope.host.xen import XenHost
from grantscope.lab import configs
from grantscope.lab.domu import DomU
from grantscope.model.dumps import parse_console
from grantscope.probing.devices import RealDevices
from grantscope.probing.engine import ProbeRun
from grantscope.probing.registry import find_probe
from grantscope.xen.xenstore import XenStore

# Real exports under TCG are slow (a Python process alone costs seconds): a longer bound.
pytestmark = [pytest.mark.xen, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
VNC_PATH = "/vm/grantscope-bundle-test/vncpasswd"
VNC_SECRET = b"lab-vnc-Secret-4821"
# Collectors that must succeed in a lab dom0 (probe_log needs a TUI session; quota needs
# C xenstored's control commands, which the lab has, so it is held to "ok" too).
MUST_BE_OK = (
    "host",
    "xenstore",
    "domains",
    "xl_info",
    "hvdump",
    "grants",
    "events",
    "interrupts",
    "sysfs",
    "quota",
    "lsevtchn",
    "processes",
    "findings",
)


@pytest.fixture
def planted_secret() -> Iterator[None]:
    """A VNC password where libxl would put one, removed after the test."""
    with XenStore.open() as store:
        store.write(VNC_PATH, VNC_SECRET)
        try:
            yield
        finally:
            store.rm("/vm/grantscope-bundle-test")


# What the diff compares; the diff test exports only these (a full export under TCG, with
# other lab guests on the same 2 cores, takes minutes and is covered by the first test).
DIFF_COLLECTORS = ("host", "xenstore", "hvdump", "grants", "events")


def _durations(manifest: dict) -> str:
    return ", ".join(
        f"{c['name']} {c['status']} {c['duration_s']:.1f}s" for c in manifest["collectors"]
    )


def _export(path: Path) -> dict:
    with XenHost(readonly=True) as host:
        collectors = [
            c for c in standard_collectors(ExportSources(host=host, capture=True))
            if c.name in DIFF_COLLECTORS
        ]
        result = export_bundle(str(path), collectors)
    print(f"export {path.name}: {_durations(result.manifest)}")
    for entry in result.manifest["collectors"]:
        assert entry["status"] == "ok", (entry, _durations(result.manifest))
    return result.manifest


def test_export_with_a_domu_running_then_open_it_with_replay(
    offer_domu: DomU, planted_secret: None, tmp_path: Path
) -> None:
    domid = offer_domu.domid
    assert domid is not None
    gref, port = offer_domu.wait_key("data/gref"), offer_domu.wait_key("data/port")
    target = tmp_path / "lab.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "grantscope", "bundle", "export", "--capture", "-o", str(target),
         "--json"],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    print(f"CLI export: {_durations(doc)}")
    statuses = {c["name"]: (c["status"], c["error"]) for c in doc["collectors"]}
    for name in MUST_BE_OK:
        assert statuses[name][0] == "ok", (name, statuses[name])
    assert statuses["probe_log"][0] == "unavailable"

    bundle = read_bundle(str(target))
    # the Xen release of the lab configuration this dom0 was booted as (4.17, 4.20, 4.14)
    xen = configs.booted()["xen"]
    assert bundle.host["role"] == "dom0" and bundle.host["xen_version"].startswith(xen + ".")
    rows = bundle.json("domains.json")["domains"]
    assert {"name": offer_domu.name, "domid": domid} in [
        {"name": r["name"], "domid": r["domid"]} for r in rows
    ]
    # The hypervisor's 'e' dump caught the domU's port offered to dom0 (unbound, d=0).
    events = parse_console(bundle.members["hvdump.txt"].decode()).events
    assert events is not None
    ports = {(p.domid, p.port): p for d in events.domains for p in d.ports}
    offered = ports[(domid, int(port))]
    assert offered.state == 2 and offered.remote_domid == 0
    assert b"gnttab_usage_print_all ] done" in bundle.members["hvdump.txt"]

    # 'bundle inspect' (as a process, like a user): every member's sha256 checks, the real host
    # is named, nothing says simulated, the redacted VNC password is listed.
    shown = subprocess.run(
        [sys.executable, "-m", "grantscope", "bundle", "inspect", str(target), "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["ok"] is True and summary["simulated"] is False
    assert summary["integrity"]["problems"] == [] and summary["integrity"]["checked"] >= 10
    assert summary["host"]["xen_version"] == bundle.host["xen_version"]
    listed = summary["redaction"]["redacted_paths"]  # "MEMBER:PATH (why)"
    assert any(item.startswith(f"xenstore.json:{VNC_PATH} ") for item in listed), listed

    # Redaction, byte for byte, over the whole decompressed archive.
    whole = gzip.decompress(target.read_bytes())
    assert VNC_SECRET not in whole
    redacted = {r["path"] for r in bundle.manifest["redaction"]["redacted"]}
    assert VNC_PATH in redacted

    host = ReplayHost.open(str(target))
    info = host.info()
    assert info.backend == "replay" and info.readonly and info.is_dom0 and info.domid == 0
    assert bundle.host["hostname"] in info.label
    assert str(domid) in host.list("/local/domain")
    assert host.read(offer_domu.path("data/gref")) == gref.encode()
    assert host.read(offer_domu.path("data/port")) == port.encode()
    # Permissions come back exactly as xenstored reports them (home: the toolstack's, data
    # keys: the domU's own).
    with XenStore.open() as store:
        for path in (offer_domu.home, offer_domu.path("data/gref")):
            assert host.perms(path) == store.get_perms(path), path
    assert host.perms(offer_domu.path("data/gref")).owner == domid  # type: ignore[union-attr]
    assert host.devices() is None
    # The replayed grants are the bundle's 'g' dump: dom0 (xenstored, xenconsoled) maps the
    # domU's ring grants, and the daemons holding gntdev are listed.
    dump = parse_console(bundle.members["hvdump.txt"].decode())
    assert dump.grants is not None
    hv_grants = host.grants().hypervisor
    assert hv_grants is not None
    assert {(g.granter, g.ref, g.mapper) for g in hv_grants} == {
        (e.granter, e.ref, e.mapper) for t in dump.grants.tables for e in t.entries}
    assert any(g.granter == domid and g.mapper == 0 for g in hv_grants), hv_grants
    holders = {p.name for p in host.grants().processes}
    assert {"xenstored", "xenconsoled"} <= holders, holders
    # The replayed events hold the domU's port offered to dom0 and dom0's Xen interrupts.
    replayed = host.events()
    assert replayed.hypervisor is not None
    (hv_port,) = [p for p in replayed.hypervisor if (p.domid, p.port) == (domid, int(port))]
    assert hv_port.state == "unbound" and hv_port.remote_domid == 0, hv_port
    assert replayed.interrupts and all(c.chip.startswith("xen") for c in replayed.interrupts)
    assert main(["bundle", "inspect", str(target)]) == 0


def test_diff_of_exports_before_during_and_after_a_probe(offer_domu: DomU, tmp_path: Path) -> None:
    domid = offer_domu.domid
    gref = int(offer_domu.wait_key("data/gref"))
    before, during, after = (tmp_path / f"{n}.tar.gz" for n in ("before", "during", "after"))
    _export(before)
    devices = RealDevices()
    try:
        run = ProbeRun(find_probe("map-grant"), {"domid": str(domid), "gref": str(gref)}, devices)
        with run:
            records = run.run_all()
            assert all(r.ok for r in records), [(r.name, r.explanation) for r in records]
            _export(during)  # the probe still holds the mapping here
    finally:
        devices.close()
    _export(after)

    key = f"hv grant d{domid} ref 0x{gref:x} mapped by d0"

    def grants(a: Path, b: Path) -> dict:
        result = diff_bundles(read_bundle(str(a)), read_bundle(str(b)))
        section = next(s for s in result["sections"] if s["section"] == "grants")
        assert section["compared"], section
        return section

    opened = grants(before, during)
    assert key in [i["key"] for i in opened["added"]], opened
    closed = grants(during, after)
    assert key in [i["key"] for i in closed["removed"]], closed
    assert key not in [i["key"] for i in grants(before, after)["added"]]
