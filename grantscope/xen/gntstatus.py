"""Grant-table status codes (GNTST_*) with names, meanings and likely causes.

Codes and their one-line meanings follow xen/include/public/grant_table.h; the
causes follow the failure paths of ``map_grant_ref()`` in Xen 4.17 (see
shared/reference/xen-facts.md §2.4).  Release hypervisors compile out the
messages that name the reason, so these causes are what grantscope tells the user.
"""

from __future__ import annotations

# code -> (name, meaning in words)
GNTST: dict[int, tuple[str, str]] = {
    0: ("okay", "the operation succeeded"),
    -1: (
        "general_error",
        "the grant is not for this domain, or it was never granted / already ended",
    ),
    -2: ("bad_domain", "unrecognised domain id: no such domain (DOMID_SELF is not accepted)"),
    -3: ("bad_gntref", "invalid grant reference: beyond the granting domain's grant table"),
    -4: ("bad_handle", "invalid mapping handle: nothing is mapped under that handle"),
    -5: ("bad_virt_addr", "invalid virtual address to map into"),
    -6: ("bad_dev_addr", "invalid device address to unmap"),
    -7: ("no_device_space", "no spare translation slot in the I/O MMU"),
    -8: ("permission_denied", "not enough privilege: the security policy (XSM/FLASK) refused it"),
    -9: ("bad_page", "the granted page is invalid for this operation"),
    -10: ("bad_copy_arg", "copy arguments cross a page boundary"),
    -11: ("address_too_big", "transfer page address too large"),
    -12: ("eagain", "operation not done; try again (e.g. the page is paged out)"),
    -13: ("no_space", "out of space (handles): no free maptrack handle in the mapping domain"),
}

# code -> likely causes, most likely first.
CAUSES: dict[int, tuple[str, ...]] = {
    -1: (
        "the granter granted the page to another domain id (its grant entry must name the "
        "mapping domain's id: dom0 maps need a grant to 0, not to DOMID_SELF or to the peer)",
        "the gref was never granted, or the granter already ended access (stale gref, or read "
        "in the wrong radix: XenStore values are decimal strings)",
        "a writable map of a read-only grant (the granter did not grant write access)",
        "the grant is already pinned by another domain, or the map counter would overflow",
        "a PVH/HVM mapper using device_map/contains_pte mappings",
    ),
    -2: (
        "the domain id does not exist (destroyed, or a typo)",
        "DOMID_SELF (32752) was passed: name the domain by its real id (0 for dom0)",
    ),
    -3: (
        "the gref is beyond the granting domain's grant table (a wrong or garbled number)",
        "refs 0..7 are reserved, a gref read from the wrong XenStore key",
    ),
    -4: ("the mapping was already unmapped, or the handle is corrupt",),
    -5: ("the target virtual address is not suitable for a grant mapping",),
    -6: ("the device address given to unmap does not match the mapping",),
    -7: ("the IOMMU has no free slots for another device mapping",),
    -8: ("an XSM/FLASK policy forbids this domain to map or copy that grant",),
    -9: ("the granted frame is not a valid page for this operation (e.g. ballooned out)",),
    -10: ("the copy's offset + length crosses the 4096-byte page",),
    -11: ("the transfer page's machine address is too large for the peer",),
    -12: ("the granted page is paged out or shared; retry the operation",),
    -13: (
        "the mapping domain ran out of maptrack handles (too many foreign grants mapped; "
        "raise max_maptrack_frames / gnttab_max_maptrack_frames)",
    ),
}


def status_name(code: int) -> str:
    """The GNTST name of ``code`` (``"unknown"`` for codes Xen does not define)."""
    entry = GNTST.get(code)
    return entry[0] if entry else "unknown"


def status_meaning(code: int) -> str:
    """What ``code`` means, in words."""
    entry = GNTST.get(code)
    return entry[1] if entry else f"status {code} is not a GNTST code Xen defines"


def describe(code: int) -> str:
    """``"-1 general error: the grant is not for ..."``: code, name and meaning on one line."""
    return f"{code} {status_name(code).replace('_', ' ')}: {status_meaning(code)}"


def causes(code: int) -> tuple[str, ...]:
    """Likely causes of ``code``, most likely first (empty for ``okay``)."""
    return CAUSES.get(code, ())
