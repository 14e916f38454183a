"""The collectors every export has, the simulated host's too: what an export draws on
(:class:`ExportSources`), the JSON form of a snapshot, and the members read through a
:class:`~grantscope.host.base.Host` (XenStore, grants, events, pages, the probe log).

:mod:`grantscope.bundle.collectors` (a real machine) and :mod:`grantscope.bundle.sim_collectors`
(the demo host) both build on these; living here, they let the first choose the second without
the two importing each other.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grantscope.bundle.collect import Payload, Unavailable
from grantscope.bundle.format import node_to_json
from grantscope.xen.xenstore import XenStore

if TYPE_CHECKING:
    from grantscope.host.base import Host

__all__ = [
    "ExportSources",
    "collect_events",
    "collect_grants",
    "collect_pages",
    "collect_probe_log",
    "collect_xenstore",
    "to_jsonable",
]


@dataclass
class ExportSources:
    """What an export can draw on beyond the machine itself.

    ``host`` is a live :class:`~grantscope.host.base.Host` (the TUI's, or one the CLI opened)
    used for the XenStore walk, grants, events and pages; ``probe_log`` is the running
    session's step records (the TUI passes them; the CLI has none).
    """

    host: Host | None = None
    probe_log: Sequence[Any] | None = None
    include_pages: bool = False
    capture: bool = False  # send 'g' and 'e' to Xen (bundle export --capture)
    command_timeout_s: float = 20.0
    host_note: str = ""  # why ``host`` is None, for the manifest
    # Parsed results earlier collectors leave for the findings collector (which runs late and
    # computes the findings from what was collected, instead of reading the host again), and
    # the reasons a part could not be read.
    shared: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data: ``to_json()`` if it has one, dataclasses, tuples, bytes."""
    to_json = getattr(obj, "to_json", None)
    if callable(to_json) and not isinstance(obj, type):
        return to_jsonable(to_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"b64": base64.b64encode(bytes(obj)).decode("ascii")}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


# -- XenStore --------------------------------------------------------------------------------
def collect_xenstore(
    host: Host | None, timeout: float, shared: dict[str, Any] | None = None
) -> Payload:
    """xenstore.json: the whole tree with permissions (through the Host, else the client)."""
    if host is not None:
        nodes = host.xenstore_snapshot("/")
        transport = "host"
    else:
        try:
            store = XenStore.open(timeout=min(timeout, 5.0))
        except Exception as err:  # no xenstored / no /dev/xen/xenbus on this machine
            raise Unavailable(f"no XenStore here: {getattr(err, 'message', err)}") from None
        with store:
            transport = str(getattr(store, "transport", "?"))
            nodes = tuple(store.walk("/", perms=True))
    encoded = [node_to_json(n.path, n.value, n.perms) for n in nodes]
    if shared is not None:
        shared["xenstore"] = {n.path: n.value for n in nodes}
    return {
        "xenstore.json": {
            "root": "/",
            "transport": transport,
            "count": len(encoded),
            "nodes": encoded,
        }
    }


# -- grants, events, pages through the Host ----------------------------------------------------
def _need_host(host: Host | None, what: str, note: str = "") -> Host:
    if host is None:
        why = f": {note}" if note else " (not a Xen host?)"
        raise Unavailable(f"no live host backend to read {what} from{why}")
    return host


def collect_grants(host: Host | None, note: str = "") -> Payload:
    """grants.json: the Host's GrantsSnapshot."""
    return {"grants.json": to_jsonable(_need_host(host, "grants", note).grants())}


def collect_events(host: Host | None, note: str = "") -> Payload:
    """events.json: the Host's EventsSnapshot."""
    return {"events.json": to_jsonable(_need_host(host, "events", note).events())}


def collect_pages(host: Host | None, note: str = "") -> Payload:
    """pages.json + pages/NNNN.bin: every page the Host can show, raw bytes."""
    live = _need_host(host, "pages", note)
    index: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for number, ref in enumerate(live.pages()):
        entry = to_jsonable(ref)
        member = f"pages/{number:04d}.bin"
        try:
            out[member] = bytes(live.read_page(ref.key))
            entry["member"] = member
        except Exception as err:  # one unreadable page must not lose the others
            entry["member"] = None
            entry["error"] = f"{type(err).__name__}: {getattr(err, 'message', err)}"
        index.append(entry)
    out["pages.json"] = {"pages": index}
    return out


def collect_probe_log(records: Sequence[Any] | None) -> Payload:
    """probe-log.json: the running session's probe step records."""
    if records is None:
        raise Unavailable("no interactive session: the probe log exists only in the TUI")
    return {"probe-log.json": {"records": [to_jsonable(r) for r in records]}}
