"""Step builders shared by the built-in probes.

Each function returns a :class:`Step` whose action reads its inputs from the
run's values or shared state (``key`` names) and leaves its outputs in
``ctx.state``, so a probe is a short, readable list of these.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from grantscope.probing.engine import Step, StepContext, StepFailed
from grantscope.probing.params import LIMITS, SELF, Param, SelfDomid, XsRef

# How many bytes of a page a step shows in its result.
PREVIEW_BYTES = 32


def get(ctx: StepContext, key: str) -> Any:
    """A value produced by an earlier step (``ctx.state``), else a parameter value."""
    if key in ctx.state:
        return ctx.state[key]
    return ctx.values.get(key)


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


def own_domid_step(key: str = "self_domid") -> Step:
    """Find this domain's id: XenStore ``domid`` (relative to our home), 0 when absent (dom0)."""

    def action(ctx: StepContext) -> dict[str, Any]:
        ctx.args(path="domid")
        raw = ctx.devices.xenstore().read_or_none("domid")
        if raw is None:
            domid, source = 0, "no 'domid' node: dom0"
        else:
            text = raw.decode("ascii", "replace").strip()
            if not text.isdigit():
                raise StepFailed(
                    f"XenStore 'domid' holds {raw!r}, not a decimal domain id",
                    "The toolstack writes the domain's id there as decimal ASCII.",
                )
            domid, source = int(text), "XenStore domid"
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
    """Map one grant with gntdev; the mapping becomes artifact ``"mapping"``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom, ref = int(get(ctx, domid)), int(get(ctx, gref))
        rw = bool(get(ctx, writable)) if isinstance(writable, str) else writable
        ctx.args(domid=dom, grefs=[ref], writable=rw)
        mapping = ctx.devices.map_grants(dom, [ref], writable=rw)
        ctx.artifacts["mapping"] = mapping
        ctx.hold("mapping", "unmap the grant", "gntdev munmap + UNMAP_GRANT_REF", mapping.close,
                 domid=dom, grefs=[ref])
        ctx.state["mapping"] = mapping
        return {"mapped": True, "bytes": len(mapping.page)}

    return Step(
        "map the grant",
        "gntdev MAP_GRANT_REF + mmap",
        action,
        mutating=True,
        may_fail=may_fail,
        hint="" if may_fail else "Run the explain-map probe with the same domid and gref "
        "to get Xen's own status code and its likely causes.",
    )


def read_page_step(source: str, what: str) -> Step:
    """Show the first bytes of ``ctx.state[source]`` (a mapping or an offer)."""

    def action(ctx: StepContext) -> dict[str, Any]:
        pages = ctx.state[source]
        ctx.args(offset=0, length=len(pages.page))
        return preview(pages.read(0, len(pages.page)))

    return Step(f"read the {what}", "memory read", action)


def offer_step(domid: str, writable: bool, key: str = "offer") -> Step:
    """Grant one fresh page to ``domid`` with gntalloc; artifact ``"offer"``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        dom = int(get(ctx, domid))
        ctx.args(domid=dom, pages=1, writable=writable)
        offer = ctx.devices.offer(dom, 1, writable=writable)
        ctx.artifacts[key] = offer
        ctx.hold(key, "end the grant", "gntalloc DEALLOC_GREF + munmap", offer.close,
                 domid=dom, grefs=list(offer.grefs))
        ctx.state[key] = offer
        ctx.state["gref"] = int(offer.grefs[0])
        return {"gref": int(offer.grefs[0]), "domid": dom}

    return Step("grant a page", "gntalloc ALLOC_GREF + mmap", action, mutating=True)


def write_page_step(target: str, message_key: str = "message", what: str = "page") -> Step:
    """Write the ``message`` value (ASCII, NUL-terminated) at offset 0 of ``target``."""

    def action(ctx: StepContext) -> dict[str, Any]:
        text = str(get(ctx, message_key))
        data = text.encode("utf-8") + b"\0"
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
        for _ in range(times):
            ctx.state[channel].notify(port)
        return {"sent": times}

    return Step("notify", "evtchn NOTIFY", action, mutating=True)


def wait_step(channel: str, port_key: str, timeout: str, what: str) -> Step:
    """Wait for ``port_key`` to fire on ``channel``; fail after ``timeout`` seconds."""

    def action(ctx: StepContext) -> dict[str, Any]:
        port, limit = int(get(ctx, port_key)), float(get(ctx, timeout))
        ctx.args(port=port, timeout_s=limit)
        started = time.perf_counter()
        deadline = started + limit
        while True:
            fired = ctx.wait_events(ctx.state[channel], deadline - time.perf_counter())
            if port in fired:
                waited = time.perf_counter() - started
                return {"fired": True, "waited_ms": round(waited * 1000, 3)}
            if time.perf_counter() >= deadline:
                raise StepFailed(
                    f"no event on port {port} within {limit:g} s",
                    f"Nothing notified {what}. Check that the other end bound to this port "
                    "and notifies it.",
                    result={"fired": False},
                )

    return Step(f"wait for the event on {what}", "evtchn poll + read", action)


def round_trips(ctx: StepContext, send: Any, send_port: int, recv: Any, recv_port: int,
                echo: Any | None, echo_port: int | None, count: int, timeout: float) -> list[float]:
    """Time ``count`` notify/answer round trips; ``echo`` answers in-process when given."""
    samples: list[float] = []
    for i in range(count):
        ctx.check_cancelled()
        started = time.perf_counter()
        send.notify(send_port)
        if echo is not None and echo_port is not None:
            _await(echo, None, timeout, f"round trip {i + 1}: the loopback end got nothing")
            echo.notify(echo_port)
        _await(recv, recv_port, timeout, f"round trip {i + 1}: no answer on port {recv_port}")
        samples.append(time.perf_counter() - started)
    return samples


def _await(channel: Any, port: int | None, timeout: float, failure: str) -> None:
    deadline = time.perf_counter() + timeout
    while True:
        fired = channel.wait(max(0.0, deadline - time.perf_counter()))
        if fired and (port is None or port in fired):
            return
        if time.perf_counter() >= deadline:
            raise StepFailed(
                f"{failure} within {timeout:g} s",
                "The peer must answer each notification by notifying back "
                "(the lab's domU peer does).",
            )


def stats_us(samples: list[float]) -> dict[str, float]:
    """min / median / max of ``samples`` (seconds) in microseconds."""
    micro = [s * 1e6 for s in samples]
    return {
        "round_trips": len(micro),
        "min_us": round(min(micro), 1),
        "median_us": round(statistics.median(micro), 1),
        "max_us": round(max(micro), 1),
    }


# -- XenStore ----------------------------------------------------------------------
def publish_step(path_key: str, keys: tuple[str, ...]) -> Step:
    """Write the state values ``keys`` as decimal strings under the path in ``path_key``.

    Cleanup removes exactly the nodes written (and a directory the write created, if it is
    left empty): a sibling someone else wrote under the same directory stays.
    """

    def action(ctx: StepContext) -> dict[str, Any]:
        from grantscope.xen.xs_owned import OwnedNodes

        base = str(get(ctx, path_key)).rstrip("/")
        written = {f"{base}/{k}": str(int(get(ctx, k))) for k in keys}
        ctx.args(**written)
        owned = OwnedNodes(ctx.devices.xenstore())
        ctx.state["published_nodes"] = owned

        def remove() -> None:
            problems = owned.remove()
            if problems:
                raise RuntimeError("; ".join(problems))

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
            problems = owned.remove()
            if problems:
                raise RuntimeError("; ".join(problems))
        ctx.drop("published")
        store = ctx.devices.xenstore()
        return {"removed": removed,
                "exists_after": any(bool(store.exists(p)) for p in removed)}

    return Step("remove the published keys", "xenstore RM", action, mutating=True)
