"""``grantscope --demo doctor``: the doctor's report of the simulated host.

The same :class:`~grantscope.sources.doctor.DoctorReport` the real checks build, with the
facts the demo host has (dom0 of a PV host, its devices and its in-memory XenStore), every
check saying it is simulated, and the capabilities the real doctor lists for a PV dom0.
"""

from __future__ import annotations

from grantscope.host.sim import SimHost
from grantscope.sources.doctor import INFO, OK, REQUIRED_NODES, Check, DoctorReport
from grantscope.sources.guest_caps import capabilities

__all__ = ["sim_doctor"]


def sim_doctor(host: SimHost) -> DoctorReport:
    """The doctor's checks as they come out on the simulated dom0."""
    info = host.info()
    role = "dom0" if info.is_dom0 else "domU"
    nodes = len(host.xenstore_snapshot("/"))
    checks = [
        Check("hypervisor", OK, "running on Xen (simulated)", "the demo host: nothing is real"),
        Check("xen version", INFO, info.xen_version),
        Check("guest type", INFO, info.guest_type),
        Check("role", INFO, role, "simulated"),
    ]
    checks.extend(Check(f"/dev/xen/{node}", OK, "simulated device", "SimDevices")
                  for node in REQUIRED_NODES)
    checks.append(Check("xenstore", OK, "XenStore reachable (sim)",
                        f"in-memory store, {nodes} nodes"))
    checks.append(Check("domid", INFO, f"own domid {info.domid}", "simulated"))
    for cap in capabilities(role, info.guest_type):
        checks.append(Check("can" if cap.can else "cannot", INFO, cap.summary, cap.detail))
    return DoctorReport(checks=tuple(checks), xen=True, domid=info.domid, role=role,
                        guest_type=info.guest_type, xen_version=info.xen_version,
                        xenstore="sim", xenstored=None, facts={"simulated": True})
