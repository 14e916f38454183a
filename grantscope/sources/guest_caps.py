"""What this domain can and cannot do with grants, events and XenStore, by role and guest type.

``doctor`` lists these so a user inside a guest learns, before a probe fails, why the hypervisor
tables are out of reach or how gntdev maps there.  The facts were seen in the lab's PV, PVH and
HVM guests (tests/xen/test_guest_types.py) and come from the Xen and Linux sources.
"""

from __future__ import annotations

from dataclasses import dataclass

# A PV guest owns its page tables: gntdev maps a grant by asking Xen to write the PTE.
PV_MAPPING = ("grants are mapped into this process by page-table update (PV: Xen writes the "
              "PTE of the gntdev mmap)")
# PVH/HVM are auto-translated: Xen maps the grant at a guest frame, and Linux must first free
# such frames by ballooning out memory (or use unpopulated ZONE_DEVICE pages).
AUTO_TRANSLATED_MAPPING = ("auto-translated physmap: gntdev maps each grant into a ballooned "
                           "(unpopulated) guest page; when none can be found the map fails "
                           "with ENOMEM, not with a GNTST status")

# What the project's lab saw when a PVH/HVM guest mapped a grant of its own (docs/LAB.md,
# "Looking for the cause"); doctor and the mailbox-loopback refusal both say it.
SELF_MAP_EVIDENCE = (
    "in the project's lab (Xen 4.17.7, Linux 6.1, QEMU 7.2 emulating AMD nested paging), no "
    "PVH or HVM guest came through a map of its own grant unharmed: 6 of 6 died with a triple "
    "fault on a busy machine, and 5 of 5 later ones lived but corrupted the probe's own output "
    "right after (it came back through a pipe as 0xff bytes); PV guests and dom0 never did. "
    "Not tried on hardware: it may be the emulator's, or Xen's"
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
    elif kind in ("PVH", "HVM"):
        caps.append(Capability(True, "map other domains' grants (gntdev)",
                               AUTO_TRANSLATED_MAPPING))
    if kind in ("PVH", "HVM"):
        caps.append(Capability(False, "map its own grants safely (seen in the lab)",
                               f"{SELF_MAP_EVIDENCE}; the mailbox-loopback probe refuses here "
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
