"""Grant-table status codes (GNTST_*) with names, meanings and likely causes.

Codes and their one-line meanings follow xen/include/public/grant_table.h; the
causes follow the failure paths of ``map_grant_ref()`` in Xen 4.17 (see
shared/reference/xen-facts.md §2.4).  Release hypervisors compile out the
messages that name the reason, so these causes are what grantscope tells the user.
"""

from __future__ import annotations

from grantscope.xen import abi

# code -> what it means, in words
_MEANINGS: dict[int, str] = {
    abi.GNTST_okay: "the operation succeeded",
    abi.GNTST_general_error: (
        "the grant is not for this domain, or it was never granted / already ended"),
    abi.GNTST_bad_domain: "unrecognised domain id: no such domain (DOMID_SELF is not accepted)",
    abi.GNTST_bad_gntref: "invalid grant reference: beyond the granting domain's grant table",
    abi.GNTST_bad_handle: "invalid mapping handle: nothing is mapped under that handle",
    abi.GNTST_bad_virt_addr: "invalid virtual address to map into",
    abi.GNTST_bad_dev_addr: "invalid device address to unmap",
    abi.GNTST_no_device_space: "no spare translation slot in the I/O MMU",
    abi.GNTST_permission_denied: (
        "not enough privilege: the security policy (XSM/FLASK) refused it"),
    abi.GNTST_bad_page: "the granted page is invalid for this operation",
    abi.GNTST_bad_copy_arg: "copy arguments cross a page boundary",
    abi.GNTST_address_too_big: "transfer page address too large",
    abi.GNTST_eagain: "operation not done; try again (e.g. the page is paged out)",
    abi.GNTST_no_space: "out of space (handles): no free maptrack handle in the mapping domain",
}

# code -> (name, meaning in words); the names and codes are grantscope.xen.abi's.
GNTST: dict[int, tuple[str, str]] = {
    code: (name, _MEANINGS[code]) for name, code in abi.GNTST_CODES.items()
}

# code -> likely causes, most likely first.
CAUSES: dict[int, tuple[str, ...]] = {
    abi.GNTST_general_error: (
        "the granter granted the page to another domain id (its grant entry must name the "
        "mapping domain's id: dom0 maps need a grant to 0, not to DOMID_SELF or to the peer)",
        "the gref was never granted, or the granter already ended access (stale gref, or read "
        "in the wrong radix: XenStore values are decimal strings)",
        "a writable map of a read-only grant (the granter did not grant write access)",
        "the grant is already pinned by another domain, or the map counter would overflow",
        "a PVH/HVM mapper using device_map/contains_pte mappings",
    ),
    abi.GNTST_bad_domain: (
        "the domain id does not exist (destroyed, or a typo)",
        "DOMID_SELF (32752) was passed: name the domain by its real id (0 for dom0)",
    ),
    abi.GNTST_bad_gntref: (
        "the gref is beyond the granting domain's grant table (a wrong or garbled number)",
        "refs 0..7 are reserved, a gref read from the wrong XenStore key",
    ),
    abi.GNTST_bad_handle: ("the mapping was already unmapped, or the handle is corrupt",),
    abi.GNTST_bad_virt_addr: ("the target virtual address is not suitable for a grant mapping",),
    abi.GNTST_bad_dev_addr: ("the device address given to unmap does not match the mapping",),
    abi.GNTST_no_device_space: ("the IOMMU has no free slots for another device mapping",),
    abi.GNTST_permission_denied: (
        "an XSM/FLASK policy forbids this domain to map or copy that grant",),
    abi.GNTST_bad_page: (
        "the granted frame is not a valid page for this operation (e.g. ballooned out)",),
    abi.GNTST_bad_copy_arg: ("the copy's offset + length crosses the 4096-byte page",),
    abi.GNTST_address_too_big: ("the transfer page's machine address is too large for the peer",),
    abi.GNTST_eagain: ("the granted page is paged out or shared; retry the operation",),
    abi.GNTST_no_space: (
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
