"""The lab: a disposable Xen host under QEMU (see shared/xenlab/NOTES.md for the facts it rests on).

``grantscope lab build`` fetches Xen and a Debian kernel and builds the dom0/domU initramfs images
and the static domU peer into a cache directory (:mod:`grantscope.lab.build`);
``grantscope lab run -- CMD`` boots Xen + dom0 under QEMU and runs CMD as root in dom0
(:mod:`grantscope.lab.runner`).  Inside dom0, :mod:`grantscope.lab.domu` starts PV domU peers
for the real-Xen tests.  Nothing in this package imports Textual.
"""
