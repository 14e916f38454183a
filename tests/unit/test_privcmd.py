"""The privcmd binding off Xen: what it sends, and how each failure is told.

On real Xen (tests/xen/test_metrics.py) its answer is compared with ``xen-diag``'s."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from grantscope.errors import UsageError
from grantscope.xen import abi
from grantscope.xen.errors import XenError, XenUnavailableError
from grantscope.xen.privcmd import Privcmd


def test_the_hypercall_is_grant_table_op_query_size_on_the_page(tmp_path: Path) -> None:
    node = tmp_path / "privcmd"
    node.write_bytes(b"")
    with Privcmd(str(node), str(tmp_path / "no-hypercall-node")) as p:
        with pytest.raises(XenError) as err:
            p.query_size(7)  # a regular file has no ioctls: ENOTTY, explained
        assert err.value.errno == errno.ENOTTY and err.value.call == "GNTTABOP_query_size"
        assert err.value.arguments == {"domid": 7}
        call = p._call
        assert (call.op, call.arg[0], call.arg[2]) == (abi.HYPERVISOR_grant_table_op,
                                                      abi.GNTTABOP_query_size, 1)
        assert call.arg[1] == p._arg_addr and p._arg.dom == 7
    p.close()  # idempotent


def test_a_domid_outside_domid_t_is_a_usage_error(tmp_path: Path) -> None:
    node = tmp_path / "privcmd"
    node.write_bytes(b"")
    with Privcmd(str(node), str(tmp_path / "none")) as p, pytest.raises(UsageError):
        p.query_size(70000)


def test_no_privcmd_off_xen_is_exit_2_naming_xen(tmp_path: Path) -> None:
    with pytest.raises(XenUnavailableError) as err:
        Privcmd(str(tmp_path / "privcmd"))
    assert err.value.exit_code == 2  # off Xen: "not running on Xen"; on Xen: the node is missing
    assert "not running on Xen" in err.value.message or "missing" in err.value.message
