"""Step builders shared by the built-in probes.

Each function returns a :class:`Step` whose action reads its inputs from the
run's values or shared state (``key`` names) and leaves its outputs in
``ctx.state``, so a probe is a short, readable list of these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from grantscope.probing.context import Step, StepContext
from grantscope.probing.devices import Devices
from grantscope.probing.params import LIMITS, SELF, Param, SelfDomid, XsRef
from grantscope.probing.records import StepFailed
from grantscope.sources.guest_caps import AUTO_TRANSLATED, refuse_self_map

# How many bytes of a page a step shows in its result.
PREVIEW_BYTES = 32
PAGE_BYTES = 4096


def get(ctx: StepContext, key: str) -> Any:
    """A value produced by an earlier step (``ctx.state``), else a parameter value."""
    if key in ctx.state:
        return ctx.state[key]
    return ctx.values.get(key)


def release_of(thing: Any) -> Callable[[], None]:
    """How to release a device object: its ``close()``, else leaving its ``with`` block."""
    close = getattr(thing, "close", None)
    if callable(close):
        return close
    return lambda: thing.__exit__(None, None, None)


def preview(data: bytes) -> dict[str, Any]:
    """A short, JSON-friendly look at page bytes: leading hex, text up to NUL, non-zero count."""
    head = data[:PREVIEW_BYTES]
    text = data.split(b"\0", 1)[0][:200]
    return {
        "bytes": len(data),
        "nonzero_bytes": len(data) - data.count(0),
        "head_hex": head.hex(" "),
        "text": text.decode("ascii", "backslashreplace"),
    }


def read_decimal(ctx: StepContext, path: str, what: str) -> int:
    """Read a decimal number from XenStore; a missing node or other bytes fail, naming both."""
    from grantscope.xen.xsref import resolve_number

    kind = what if what in LIMITS else "port"
    return int(resolve_number(path, ctx.devices.xenstore(), what=what, maximum=LIMITS[kind] - 1))


# -- parameter resolution ---------------------------------------------------------
def _resolve_xs(name: str, path: str) -> Step:
    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(path=path)
        number = read_decimal(ctx, path, name)
        ctx.values[name] = number
        return {name: number, "path": path}

    return Step(f"read {name} from XenStore", "xenstore READ", action)


def read_own_domid(devices: Devices) -> tuple[int, str]:
    """This domain's id and where it came from: XenStore ``domid`` (relative to our home),
    0 when absent (dom0); StepFailed when it holds something else than a decimal number."""
    raw = devices.xenstore().read_or_none("domid")
    if raw is None:
        return 0, "no 'domid' node: dom0"
    text = raw.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise StepFailed(
            f"XenStore 'domid' holds {raw!r}, not a decimal domain id",
            "The toolstack writes the domain's id there as decimal ASCII.",
        )
    return int(text), "XenStore domid"


def own_domid_step(key: str = "self_domid") -> Step:
    """Find this domain's id (:func:`read_own_domid`) into ``ctx.state[key]``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(path="domid")
        domid, source = read_own_domid(ctx.devices)
        ctx.state[key] = domid
        ctx.explain(f"this domain is d{domid} ({source})")
        return {"domid": domid, "source": source}

    return Step("find this domain's id", "xenstore READ", action)


def resolution_steps(params: tuple[Param, ...], values: dict[str, Any]) -> list[Step]:
    """One step per ``xs:PATH`` or ``self`` value, in parameter order."""
    steps: list[Step] = []
    for param in params:
        value = values.get(param.name)
        if isinstance(value, XsRef):
            steps.append(_resolve_xs(param.name, value.path))
        elif isinstance(value, SelfDomid):
            steps.append(_resolve_self(param.name))
    return steps


def _resolve_self(name: str) -> Step:
    inner = own_domid_step(key=f"{name}:self")

    def action(ctx: StepContext) -> dict[str, Any]:
        result = inner.action(ctx) or {}
        ctx.values[name] = ctx.state[f"{name}:self"]
        return result

    return Step(f"find this domain's id ({name}=self)", inner.call, action)


def uses_self(values: dict[str, Any], name: str) -> bool:
    """Whether ``name`` was given as ``self``."""
    return values.get(name) is SELF


# -- grants ------------------------------------------------------------------------
def map_step(
    domid: str = "domid",
    gref: str = "gref",
    writable: str | bool = "writable",
    *,
    may_fail: bool = False,
) -> Step:
    """Map a grant (or a list of grants, as one mapping) with gntdev; artifact ``"mapping"``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom, value = int(get(ctx, domid)), get(ctx, gref)
        refs = [int(r) for r in value] if isinstance(value, (list, tuple)) else [int(value)]
        rw = bool(get(ctx, writable)) if isinstance(writable, str) else writable
        ctx.args(domid=dom, grefs=refs, writable=rw)
        if not get(ctx, "force"):
            _refuse_own_grant_if_harmful(ctx, dom)
        mapping = ctx.devices.map_grants(dom, refs, writable=rw)
        ctx.artifacts["mapping"] = mapping
        ctx.hold("mapping", "unmap the grant", "gntdev munmap + UNMAP_GRANT_REF",
                 release_of(mapping), domid=dom, grefs=refs)
        ctx.state["mapping"] = mapping
        return {"mapped": True, "bytes": PAGE_BYTES * len(refs)}

    return Step(
        "map the grant",
        "gntdev MAP_GRANT_REF + mmap",
        action,
        mutating=True,
        may_fail=may_fail,
        hint="" if may_fail else "Run the explain-map probe with the same domid and gref "
        "to get Xen's own status code and its likely causes.",
    )


def _refuse_own_grant_if_harmful(ctx: StepContext, domid: int) -> None:
    """In a PVH/HVM domain, refuse to map a grant of this domain's own (its page would become
    a hole: grantscope.sources.guest_caps); the probe's force=true skips this."""
    kind = ctx.devices.guest_type()
    if kind.upper() not in AUTO_TRANSLATED:
        return
    own = ctx.state.get("self_domid")
    if own is None:
        own = read_own_domid(ctx.devices)[0]
    if domid == own:
        refuse_self_map(kind, f"the grant is d{domid}'s, this domain's own")


def read_page_step(source: str, what: str) -> Step:
    """Read the first page of ``ctx.state[source]`` (a mapping or an offer); show its first
    bytes, and keep them all in ``ctx.state["read:" + source]`` for a front-end."""

    def action(ctx: StepContext) -> dict[str, Any]:
        pages = ctx.state[source]
        ctx.args(offset=0, length=PAGE_BYTES)
        data = pages.read(0, PAGE_BYTES)
        ctx.state[f"read:{source}"] = data
        return preview(data)

    return Step(f"read the {what}", "memory read", action)


def offer_step(domid: str, writable: bool, key: str = "offer", pages: int = 1) -> Step:
    """Grant ``pages`` fresh pages to ``domid`` with gntalloc; artifact ``"offer"``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom = int(get(ctx, domid))
        ctx.args(domid=dom, pages=pages, writable=writable)
        offer = ctx.devices.offer(dom, pages, writable=writable)
        ctx.artifacts[key] = offer
        ctx.hold(key, "end the grant", "gntalloc DEALLOC_GREF + munmap", offer.close,
                 domid=dom, grefs=list(offer.grefs))
        ctx.state[key] = offer
        ctx.state["gref"] = int(offer.grefs[0])
        ctx.state["grefs"] = [int(g) for g in offer.grefs]
        result: dict[str, Any] = {"gref": int(offer.grefs[0]), "domid": dom}
        if pages > 1:
            result["grefs"] = ctx.state["grefs"]
        return result

    return Step("grant a page" if pages == 1 else f"grant {pages} pages",
                "gntalloc ALLOC_GREF + mmap", action, mutating=True)


def write_page_step(target: str, message_key: str = "message", what: str = "page") -> Step:
    """Write the ``message`` value (UTF-8, NUL-terminated if room) at offset 0 of ``target``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        text = str(get(ctx, message_key))
        data = text.encode("utf-8")
        if len(data) < PAGE_BYTES * len(ctx.state[target].grefs):
            data += b"\0"
        ctx.args(offset=0, text=text, length=len(data))
        ctx.state[target].write(0, data)
        return {"written": len(data)}

    return Step(f"write the message into the {what}", "memory write", action, mutating=True)


def grant_copy_step(domid: str = "domid", gref: str = "gref") -> Step:
    """A one-byte GRANT_COPY from the grant: Xen's own GNTST status, nothing mapped."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom, ref = int(get(ctx, domid)), int(get(ctx, gref))
        ctx.args(domid=dom, gref=ref, length=1)
        status = int(ctx.devices.probe_grant_status(dom, ref))
        ctx.state["gntst"] = status
        name, meaning = gntst_words(status)
        ctx.explain(f"GRANT_COPY status {status} ({name}): {meaning}")
        return {"status": status, "status_name": name, "meaning": meaning}

    return Step("copy one byte with GRANT_COPY", "gntdev GRANT_COPY", action)


def gntst_words(status: int) -> tuple[str, str]:
    """(name, meaning) of a GNTST code, from :mod:`grantscope.xen.gntstatus`."""
    from grantscope.xen.gntstatus import GNTST

    return GNTST.get(status, (f"unknown_{status}", "a status code Xen 4.17 does not define"))


# -- event channels ----------------------------------------------------------------
def _channel(ctx: StepContext, key: str) -> Any:
    channel = ctx.state.get(key)
    if channel is None:
        channel = ctx.devices.event_channel()
        ctx.state[key] = channel
        ctx.hold(key, f"close event channel {key}", "evtchn close (unbinds its ports)",
                 channel.close)
    return channel


def bind_unbound_step(remote: str, channel: str, port_key: str) -> Step:
    """Allocate an unbound port that domain ``remote`` may bind to."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom = int(get(ctx, remote))
        ctx.args(remote_domid=dom)
        port = int(_channel(ctx, channel).bind_unbound(dom))
        ctx.state[port_key] = port
        return {"port": port}

    return Step("bind an unbound port", "evtchn BIND_UNBOUND_PORT", action, mutating=True)


def bind_interdomain_step(remote: str, remote_port: str, channel: str, port_key: str) -> Step:
    """Bind to ``remote``'s port ``remote_port``; the local port goes to ``port_key``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom, rport = int(get(ctx, remote)), int(get(ctx, remote_port))
        ctx.args(remote_domid=dom, remote_port=rport)
        port = int(_channel(ctx, channel).bind_interdomain(dom, rport))
        ctx.state[port_key] = port
        return {"local_port": port}

    return Step("bind to the remote port", "evtchn BIND_INTERDOMAIN", action, mutating=True)


def drain_step(channel: str) -> Step:
    """Consume the event Xen marks pending on every interdomain bind, before waiting."""

    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args()
        fired = ctx.state[channel].drain()
        ctx.explain(
            "Xen marks the binder's new port pending on every interdomain bind; "
            "consumed so a later wait sees only real notifications"
        )
        return {"drained_ports": sorted(int(p) for p in fired)}

    return Step("drain the bind event", "evtchn read (non-blocking)", action)


def notify_step(channel: str, port_key: str, count: str | int = 1) -> Step:
    """Send ``count`` notifications through ``port_key``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        port = int(get(ctx, port_key))
        times = int(get(ctx, count)) if isinstance(count, str) else count
        ctx.args(port=port, count=times)
        ctx.state["notified_at"] = time.perf_counter()
        for _ in range(times):
            ctx.state[channel].notify(port)
        return {"sent": times}

    return Step("notify", "evtchn NOTIFY", action, mutating=True)


def wait_for_port(ctx: StepContext | None, channel: Any, port: int | None,
                  deadline: float) -> int:
    """The one wait loop: wait on ``channel`` until ``port`` fires (any port when None) or
    ``deadline`` (``time.perf_counter()``) passes; other ports are ignored.

    Returns how many times the port fired in the read that saw it (0 at the deadline).  With
    a ``ctx`` the wait is sliced so that a cleanup from another thread stops it.
    """
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return 0
        fired = ctx.wait_events(channel, left) if ctx is not None else channel.wait(left)
        if fired:
            times = len(fired) if port is None else fired.count(port)
            if times:
                return times


def wait_step(channel: str, port_key: str, timeout: str, what: str) -> Step:
    """Wait for ``port_key`` to fire on ``channel``; fail after ``timeout`` seconds.

    ``waited_ms`` counts from the last notify step (the round trip) when there was one.
    """

    def action(ctx: StepContext) -> dict[str, Any]:
        port, limit = int(get(ctx, port_key)), float(get(ctx, timeout))
        ctx.args(port=port, timeout_s=limit)
        started = time.perf_counter()
        if wait_for_port(ctx, ctx.state[channel], port, started + limit):
            waited = time.perf_counter() - float(ctx.state.get("notified_at", started))
            return {"fired": True, "waited_ms": round(waited * 1000, 3)}
        raise StepFailed(
            f"no event on port {port} within {limit:g} s",
            f"Nothing notified {what}. Check that the other end bound to this port "
            "and notifies it.",
            result={"fired": False},
        )

    return Step(f"wait for the event on {what}", "evtchn poll + read", action)


class NoAnswer(StepFailed):
    """A round trip got no answer in time; ``timed`` round trips had completed."""

    def __init__(self, what: str, explanation: str, timed: int, timeout: float) -> None:
        super().__init__(f"{what} within {timeout:g} s (after {timed} timed round trips)",
                         explanation, result={"timed_round_trips": timed})
        self.what = what
        self.timed = timed


#: The key of a step result holding every round trip in µs (the latency histogram's input).
SAMPLES_KEY = "samples_us"


def stats_us(samples: list[float]) -> dict[str, Any]:
    """The round-trip statistics of ``samples`` (seconds) in microseconds
    (:func:`grantscope.model.histogram.summarize`; ``median_us`` is its p50), with every
    sample under :data:`SAMPLES_KEY` for the histograms the CLI and the TUI draw."""
    from grantscope.model.histogram import summarize

    micro = [s * 1e6 for s in samples]
    stats = summarize(micro)
    return {"round_trips": stats["count"], "min_us": stats["min_us"],
            "median_us": stats["p50_us"], "p99_us": stats["p99_us"],
            "max_us": stats["max_us"], SAMPLES_KEY: [round(v, 1) for v in micro]}


# -- XenStore ----------------------------------------------------------------------
def publish_step(path_key: str, keys: tuple[str, ...],
                 sources: dict[str, str] | None = None) -> Step:
    """Write the state values ``keys`` as decimal strings under the path in ``path_key``.

    ``sources`` names another state key for a node (``{"gref": "grefs"}``); a list value is
    written space-separated, as XenStore protocols write several grant references.

    Cleanup removes exactly the nodes written (and a directory the write created, if it is
    left empty): a sibling someone else wrote under the same directory stays.
    """

    def action(ctx: StepContext) -> dict[str, Any]:
        from grantscope.xen.xs_owned import OwnedNodes

        base = str(get(ctx, path_key)).rstrip("/")
        where = sources or {}
        written = {f"{base}/{k}": _decimal(get(ctx, where.get(k, k))) for k in keys}
        ctx.args(**written)
        owned = OwnedNodes(ctx.devices.xenstore())
        ctx.state["published_nodes"] = owned

        def remove() -> None:
            _removed(owned)

        ctx.hold("published", f"remove the nodes written under {base}", "xenstore RM",
                 remove, path=base, nodes=list(written))
        for path, value in written.items():
            owned.write(path, value.encode("ascii"))
        return {"written": written, "created_dirs": owned.created_dirs}

    return Step("publish in XenStore", "xenstore WRITE", action, mutating=True)


def unpublish_step(path_key: str) -> Step:
    """Remove the published nodes now (the cleanup would otherwise)."""

    def action(ctx: StepContext) -> dict[str, Any]:
        base = str(get(ctx, path_key)).rstrip("/")
        ctx.args(path=base)
        owned = ctx.state.get("published_nodes")
        removed = owned.paths if owned is not None else []
        if owned is not None:
            _removed(owned)
        ctx.drop("published")
        store = ctx.devices.xenstore()
        return {"removed": removed,
                "exists_after": any(bool(store.exists(p)) for p in removed)}

    return Step("remove the published keys", "xenstore RM", action, mutating=True)


def _removed(owned: Any) -> None:
    """Remove the nodes an :class:`OwnedNodes` wrote; what could not be is a failure
    whose result lists each problem."""
    problems = list(owned.remove())
    if problems:
        raise StepFailed("; ".join(problems), result={"problems": problems})


def _decimal(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(int(v)) for v in value)
    return str(int(value))
