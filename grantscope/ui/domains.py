"""Domain names next to domids: ``d1 web01`` instead of a bare ``d1``.

Names come from XenStore (``/local/domain/D/name``, written by the toolstack) through the
app's Host, so the xen, replay and sim backends all give them. A domU usually may not list
``/local/domain``: then only the names it can read are known and the rest stay ``dN``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Protocol

from grantscope.errors import GrantscopeError
from grantscope.host.base import Host
from grantscope.safetext import clean

#: A name longer than this is cut (with …) so table columns stay narrow.
NAME_MAX = 12


def read_domain_names(host: Host, known: tuple[int, ...] = ()) -> dict[int, str]:
    """domid -> name for every domain under ``/local/domain`` (and ``known`` domids)."""
    domids: set[int] = set(known)
    # a domU may not list other domains' homes: it reads what it can
    with contextlib.suppress(GrantscopeError):
        domids.update(int(d) for d in host.list("/local/domain") if d.isdigit())
    names: dict[int, str] = {}
    for domid in sorted(domids):
        try:
            raw = host.read(f"/local/domain/{domid}/name")
        except GrantscopeError:
            continue
        if raw:
            name = raw.decode("utf-8", "replace").strip()
            if name:
                names[domid] = name
    return names


class KnowsDomainNames(Protocol):
    """Anything with the domain names read so far: the app, and each pane (the app sends it
    them in a :class:`~grantscope.ui.messages.DomainNamesRead`)."""

    @property
    def domain_names(self) -> Mapping[int, str]: ...


def domain_label(names: Mapping[int, str], domid: int | None, port: int | None = None) -> str:
    """``d1 web01`` (``d1:5 web01`` with a port), ``d1`` without a known name, ``-`` for None."""
    if domid is None:
        return "-"
    where = f"d{domid}" + (f":{port}" if port is not None else "")
    name = names.get(domid)
    if not name:
        return where
    name = clean(name)  # host or bundle text: escapes shown, never markup or control codes
    short = name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"
    return f"{where} {short}"


def dom(names: KnowsDomainNames, domid: int | None, port: int | None = None) -> str:
    """:func:`domain_label` with the names ``names`` knows."""
    return domain_label(names.domain_names, domid, port)


_DOMID_RE = re.compile(r"\bd(\d{1,5})\b")


def name_domids(names: KnowsDomainNames, text: str) -> str:
    """``text`` with each bare ``dN`` (a page title: ``d1 vbd ring``) followed by its name."""
    return _DOMID_RE.sub(lambda m: dom(names, int(m.group(1))), text)
