"""What mapping a domain's own grant does to the offered page, per guest type (issue 18).

Xen's source says why the lab's PVH and HVM guests came to harm when they mapped a grant of
their own: on an auto-translated guest, GNTTABOP_map_grant_ref puts the grant into the guest's
physical map (``create_grant_p2m_mapping`` -> ``p2m_add_page``), and ``p2m_add_page`` first
removes any other guest frame the same machine page is mapped at when the page belongs to the
mapping domain itself, as an own grant's page does.  The offered page's own frame becomes a
hole, which reads as all-ones (0xff) and drops writes, and the unmap does not put it back
(Xen 4.17 to 4.21; docs/LAB.md).  Linux frees the page to its allocator when the offer ends,
so whatever gets it next (a pipe buffer: the probe output seen as 0xff) reads 0xff.  A PV
guest maps by page-table update and never reaches that code.

The test proves it on real Xen: each guest type offers a page to itself (gntalloc), writes a
pattern, maps the grant (gntdev) and reads the page through both mappings.  The guest writes
what it saw to XenStore before it exits (its stdout could land in the hole) and is destroyed
after: once the offer is freed, the hole is in its allocator.  This is the fact behind the
mailbox-loopback probe's refusal in PVH/HVM guests and doctor's "map its own grants safely".
"""

from __future__ import annotations

import json

import pytest

from grantscope.lab.guest import guest_session
from grantscope.xen.xenstore import XenStore

PATTERN = bytes(range(1, 65))
HOLE = b"\xff" * len(PATTERN)
GUEST_SCRIPT = r"""
import json, sys
from grantscope.xen.gntalloc import GrantOffer
from grantscope.xen.gntdev import Gntdev
from grantscope.xen.xenstore import XenStore
domid, node, pattern = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
offer = GrantOffer(domid, 1, writable=True)  # left to the exit: its page may be a hole now
offer.write(0, pattern)
seen = {"offer_before": offer.read(0, len(pattern)).hex()}
with Gntdev() as dev:
    mapping = dev.map(domid, offer.grefs)
    seen["through_map"] = bytes(mapping.page[:len(pattern)]).hex()
    seen["offer_while_mapped"] = offer.read(0, len(pattern)).hex()
    mapping.close()
seen["offer_after_unmap"] = offer.read(0, len(pattern)).hex()
with XenStore.open() as xs:
    xs.write(node, json.dumps(seen).encode())
print(json.dumps(seen), flush=True)
"""


# "guest" names the guest type, as in test_guest_types.py (conftest deselects by it).
@pytest.mark.parametrize("guest", ["pv", "pvh", "hvm"])
def test_mapping_its_own_grant_makes_the_offered_page_a_hole_in_pvh_and_hvm(guest: str) -> None:
    with guest_session(guest) as booted:
        node = booted.path("data/selfmap")
        done = booted.run(["python3", "-c", GUEST_SCRIPT, str(booted.domid), node,
                           PATTERN.hex()], timeout=600)
        with XenStore.open() as xs:
            raw = xs.read_or_none(node)
        assert raw is not None, ("the guest wrote nothing", done.rc, done.stdout[-2000:],
                                 done.stderr[-2000:], booted.xen_log(lines=10))
        seen = {key: bytes.fromhex(value) for key, value in json.loads(raw).items()}
        assert seen["offer_before"] == PATTERN
        # The grant maps and shows the page in every guest type ...
        assert seen["through_map"] == PATTERN, seen
        if guest == "pv":
            # ... and a PV guest's offer keeps its page.
            assert seen["offer_while_mapped"] == PATTERN, seen
            assert seen["offer_after_unmap"] == PATTERN, seen
        else:
            # ... but in an auto-translated guest the offer's own frame is gone from the
            # physical map while mapped, and stays gone after the unmap.
            assert seen["offer_while_mapped"] == HOLE, seen
            assert seen["offer_after_unmap"] == HOLE, seen
