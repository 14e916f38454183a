"""A fake host for bundle tests: collectors returning known data, with planted secrets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from grantscope.bundle.collect import Collector, Payload, Unavailable
from grantscope.bundle.collectors import to_jsonable
from grantscope.bundle.format import node_to_json
from grantscope.host.base import (
    EventCounter,
    EventsSnapshot,
    GrantsSnapshot,
    HvGrant,
    OwnGrant,
    OwnPort,
    PageRef,
    ProcessGrants,
)
from grantscope.xen.xenstore import Perms

VNC_PASSWORD = b"hunter2-vnc-Pa55"
CLIPBOARD = b"clipboard text: my bank PIN 8812"
PEM = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7fake\n-----END RSA PRIVATE KEY-----\n"
AGENT_TOKEN = b"tok-3f9a8b7c6d5e"
VALUE_PASSWORD = b"user=admin password=s3cr3t-Val"
SECRETS: tuple[bytes, ...] = (VNC_PASSWORD, CLIPBOARD, PEM, AGENT_TOKEN, VALUE_PASSWORD)

# Paths that must be redacted, and ordinary ones that must not be.
SECRET_PATHS = (
    "/vm/00000000-0000-0000-0000-000000000001/vncpasswd",
    "/local/domain/0/backend/vfb/1/0/vncpasswd",
    "/local/domain/1/data/set_clipboard",
    "/local/domain/1/data/private-key",
    "/local/domain/1/data/agent/token",
    "/local/domain/1/data/login",
)
BINARY_VALUE = bytes(range(256))

P0 = Perms(owner=0, default="n", acl=())
P1 = Perms(owner=1, default="n", acl=((0, "r"),))


def xenstore_nodes(extra: dict[str, bytes] | None = None) -> list[tuple[str, bytes | None, Perms]]:
    """(path, value, perms) of a small dom0 + one guest tree, parents before children."""
    nodes: list[tuple[str, bytes | None, Perms]] = [
        ("/", b"", P0),
        ("/local", b"", P0),
        ("/local/domain", b"", P0),
        ("/local/domain/0", b"", P0),
        ("/local/domain/0/name", b"Domain-0", P0),
        ("/local/domain/0/backend", b"", P0),
        ("/local/domain/0/backend/vfb", b"", P0),
        ("/local/domain/0/backend/vfb/1", b"", P0),
        ("/local/domain/0/backend/vfb/1/0", b"", P0),
        ("/local/domain/0/backend/vfb/1/0/vncpasswd", VNC_PASSWORD, P0),
        ("/local/domain/0/backend/vfb/1/0/keymap", b"en-us", P0),
        ("/local/domain/1", b"", P1),
        ("/local/domain/1/name", b"guest-one", P1),
        ("/local/domain/1/device", b"", P1),
        ("/local/domain/1/device/vif", b"", P1),
        ("/local/domain/1/device/vif/0", b"", P1),
        ("/local/domain/1/device/vif/0/ring-ref", b"8", P1),
        ("/local/domain/1/device/vif/0/event-channel", b"15", P1),
        ("/local/domain/1/data", b"", P1),
        ("/local/domain/1/data/set_clipboard", CLIPBOARD, P1),
        ("/local/domain/1/data/private-key", PEM, P1),
        ("/local/domain/1/data/agent", b"", P1),
        ("/local/domain/1/data/agent/token", AGENT_TOKEN, P1),
        ("/local/domain/1/data/login", VALUE_PASSWORD, P1),
        ("/local/domain/1/data/binary", BINARY_VALUE, P1),
        ("/vm", b"", P0),
        ("/vm/00000000-0000-0000-0000-000000000001", b"", P0),
        ("/vm/00000000-0000-0000-0000-000000000001/vncpasswd", VNC_PASSWORD, P0),
    ]
    for path, value in (extra or {}).items():
        nodes.append((path, value, P0))
    return nodes


GRANTS = GrantsSnapshot(
    own=(OwnGrant("offer", 1, (9, 10), True, "probe", page_key="offer:1:9"),),
    processes=(ProcessGrants(4242, "grantscope", "/dev/xen/gntalloc", 1, 2),),
    hypervisor=(HvGrant(granter=1, ref=8, mapper=0, flags="0x19", frame=0x1A008),),
    taken_at=1234.5,
)
EVENTS = EventsSnapshot(
    interrupts=(EventCounter(54, (266, 3), "xen-dyn-event", "xenbus"),),
    ports=(OwnPort(30, "unbound", 1, None, 0, "probe"),),
    taken_at=1234.5,
)
PAGE = bytes([0xA5]) * 16 + bytes(4080)
PAGES = (PageRef("offer:1:9", "offer d1 gref 9", 1, 9, ring=False),)

HVDUMP = """(XEN) gnttab_usage_print_all [ key 'g' pressed
(XEN)       -------- active --------       -------- shared --------
(XEN) [ref] localdom mfn      pin          localdom gmfn     flags
(XEN) grant-table for remote d1 (v1)
(XEN)   1 frames (64 max), 0 maptrack frames (1024 max)
(XEN) [0x008]      0 0x1a008 0x00000001          0 0x01a008 0x19
(XEN) gnttab_usage_print_all ] done
(XEN) 'e' pressed -> dumping event-channel info
(XEN) Event channel information for domain 0:
(XEN) Polling vCPUs: {}
(XEN)     port [p/m/s]
(XEN)        1 [0/0/  -   ]: s=5 n=0 x=0 v=0
(XEN)       30 [0/0/  -   ]: s=2 n=0 x=0 d=1
"""

PROBE_LOG = [
    {
        "index": 0,
        "name": "read-vnc",
        "call": "xenstore.read",
        "arguments": {"path": SECRET_PATHS[0]},
        "ok": True,
        # A probe that read a secret quotes it: the scrub must catch it.
        "result": {"value": VNC_PASSWORD.decode()},
        "errno": None,
        "explanation": "",
        "duration_s": 0.01,
        "mutating": False,
    }
]

FINDINGS = {
    "findings": [
        {
            "code": "grant-unowned",
            "severity": "warning",
            "title": "grant d1 ref 8 mapped by d0 with no owner",
            "evidence": [],
            "action": "",
            "subject": {},
        }
    ]
}


def _const(payload: Payload) -> Callable[[], Payload]:
    return lambda: payload


def fake_collectors(
    *,
    hostname: str = "labhost",
    extra_nodes: dict[str, bytes] | None = None,
    grants: GrantsSnapshot = GRANTS,
    events: EventsSnapshot = EVENTS,
    hvdump: str = HVDUMP,
    findings: Any = FINDINGS,
    pages: bool = True,
) -> list[Collector]:
    """A full collector set with known content (nothing here touches the machine)."""
    nodes = [node_to_json(p, v, perms) for p, v, perms in xenstore_nodes(extra_nodes)]
    host = {
        "hostname": hostname,
        "role": "dom0",
        "xen_version": "4.17.7",
        "guest_type": "PV",
        "kernel": "Linux 6.1.0 fake",
        "info": {"domid": 0, "is_dom0": True, "guest_type": "pv", "xen_version": "4.17.7"},
    }
    collectors = [
        Collector("host", _const({"host.json": host})),
        Collector("xenstore", _const({"xenstore.json": {"root": "/", "nodes": nodes}})),
        Collector("grants", _const({"grants.json": to_jsonable(grants)})),
        Collector("events", _const({"events.json": to_jsonable(events)})),
        Collector("hvdump", _const({"hvdump.txt": hvdump.encode()})),
        Collector("findings", _const({"findings.json": findings})),
        Collector("probe_log", _const({"probe-log.json": {"records": PROBE_LOG}})),
    ]
    if pages:
        index = {"pages": [dict(to_jsonable(PAGES[0]), member="pages/0000.bin")]}
        collectors.append(Collector("pages", _const({"pages.json": index, "pages/0000.bin": PAGE})))
    return collectors


def failing_collectors(release: Any) -> list[Collector]:
    """An error, an unavailable source and a slow one (blocked until ``release`` is set)."""

    def broken() -> Payload:
        raise RuntimeError("device exploded")

    def absent() -> Payload:
        raise Unavailable("not on this host")

    def slow() -> Payload:
        release.wait(30)
        time.sleep(0)
        return {"slow.json": {"late": True}}

    return [
        Collector("broken", broken),
        Collector("absent", absent),
        Collector("slow", slow, timeout_s=0.3),
    ]
