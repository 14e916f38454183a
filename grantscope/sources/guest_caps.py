"""What this domain can and cannot do with grants, events and XenStore, by role and guest type.

``doctor`` lists these so a user inside a guest learns, before a probe fails, why the hypervisor
tables are out of reach or how gntdev maps there.  The facts were seen in the lab's PV, PVH and
HVM guests (tests/xen/test_guest_types.py) and come from the Xen and Linux sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from grantscope.errors import UsageError

# A PV guest owns its page tables: gntdev maps a grant by asking Xen to write the PTE.
PV_MAPPING = ("grants are mapped into this process by page-table update (PV: Xen writes the "
              "PTE of the gntdev mmap)")
# PVH/HVM are auto-translated: Xen maps the grant at a guest frame, and Linux must first free
# such frames by ballooning out memory (or use unpopulated ZONE_DEVICE pages).
AUTO_TRANSLATED_MAPPING = ("auto-translated physmap: gntdev maps each grant into a ballooned "
                           "(unpopulated) guest page; when none can be found the map fails "
                           "with ENOMEM, not with a GNTST status")

# Guest types whose physical map Xen keeps (auto-translated): gntdev maps into it.
AUTO_TRANSLATED = ("PVH", "HVM")

# Why a PVH/HVM domain must not map a grant of its own (docs/LAB.md, "PVH and HVM guests: why
# they died"; tests/xen/test_self_map.py).  doctor, the mailbox-loopback refusal and the map
# step say it.
SELF_MAP_EVIDENCE = (
    "when a PVH or HVM domain maps a grant of its own, Xen (4.17 to 4.21, p2m_add_page) "
    "removes the offered page's own frame from the domain's physical map: the page becomes a "
    "hole that reads as 0xff and drops writes, also after the unmap, and whatever the kernel "
    "puts there once the offer ends is lost (the project's lab, 2026-12-04, one emulated CPU: "
    "a self-map's output read back as 0xff in 10 of 10 PVH and 9 of 10 HVM guests on Xen "
    "4.17, the tenth did not finish, and in 10 of 10 PVH and 8 of 9 HVM guests on Xen "
    "4.20; none died of it). "
    "It is Xen's logic, not the emulator's: expect it on hardware too. PV domains map by "
    "page-table update and are not affected"
)


def refuse_self_map(guest_type: str, what: str) -> None:
    """Refuse (UsageError) ``what``, a map of this domain's own grant, in a PVH/HVM domain."""
    if guest_type.upper() in AUTO_TRANSLATED:
        raise UsageError(
            f"{what}, and this is a {guest_type.upper()} guest",
            f"{SELF_MAP_EVIDENCE[0].upper()}{SELF_MAP_EVIDENCE[1:]}. Grants from other domains "
            "map normally here: test with a peer instead (offer here, map there), or add "
            "force=true (the CLI's --force) to map anyway.",
        )


@dataclass(frozen=True)
class Capability:
    """One thing the domain can (``can`` True) or cannot do, and why."""

    can: bool
    summary: str
    detail: str


def capabilities(role: str | None, guest_type: str | None) -> list[Capability]:
    """The capabilities of a domain with ``role`` (dom0/domU) and ``guest_type`` (PV/PVH/HVM)."""
    caps: list[Capability] = []
    kind = (guest_type or "").upper()
    if kind == "PV":
        caps.append(Capability(True, "map other domains' grants (gntdev)", PV_MAPPING))
    elif kind in AUTO_TRANSLATED:
        caps.append(Capability(True, "map other domains' grants (gntdev)",
                               AUTO_TRANSLATED_MAPPING))
    if kind in AUTO_TRANSLATED:
        caps.append(Capability(False, "map its own grants safely",
                               f"{SELF_MAP_EVIDENCE}; grantscope refuses such a map here "
                               "unless forced"))
    caps.append(Capability(True, "offer pages (gntalloc) and bind event channels (evtchn)",
                           "to any domain that knows the gref and port, usually through "
                           "XenStore"))
    if role == "dom0":
        caps.append(Capability(True, "read the hypervisor's grant and event tables",
                               "'xl debug-keys g' / 'e' then 'xl dmesg' (grantscope report "
                               "captures them on request)"))
        caps.append(Capability(True, "read every domain's XenStore nodes",
                               "dom0 is privileged in xenstored"))
    elif role == "domU":
        caps.append(Capability(False, "read the hypervisor's grant and event tables",
                               "xl debug-keys and xl dmesg need dom0's privileged hypercalls "
                               "(sysctl); a guest sees only its own mappings, offers and ports"))
        caps.append(Capability(False, "read other domains' XenStore nodes",
                               "xenstored answers EACCES outside this domain's home unless a "
                               "node's permissions grant read; gref/port published by dom0 "
                               "must be written where this guest may read them"))
    if kind == "HVM":
        caps.append(Capability(True, "use PV event channels and grants from an HVM guest",
                               "through the Xen platform PCI device and its callback vector"))
    return caps
