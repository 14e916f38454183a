#!/usr/bin/env bash
# Install every Debian package grantscope's tests and its Xen lab need (Debian 12, as root).
#
# Python itself: python3 + venv to create .venv.  The lab (grantscope/lab): QEMU to boot Xen,
# the Xen tools and xenstore-utils that dom0 runs from the host's own filesystem, busybox-static
# and kmod/cpio to build the initramfs images, gcc + libc6-dev (which brings the Xen uapi
# headers through linux-libc-dev) to build the static domU peer, qemu-system-xen for the HVM
# guests' device model (dom0 runs it from the host's files).  tmux for the UI tier's
# real-terminal test. strace for the real-Xen tier's --readonly proof (tests/xen/test_safety.py).
# prometheus for promtool, which the unit tier runs on `grantscope metrics` output and on the
# example alert rules (tests/unit/test_metrics_promtool.py), and whose server the real-Xen tier
# runs in dom0 to scrape `grantscope metrics --listen`; prometheus-node-exporter, whose textfile
# collector the same test points at `grantscope metrics --output` (tests/xen/test_metrics.py).
# mmdebstrap (and the archive keyring) build the Debian 13 dom0 root of the lab's trixie
# configuration (grantscope/lab/release.py).
# Idempotent: apt-get skips what is already installed.
set -euo pipefail

PACKAGES=(
    python3 python3-venv python3-dev
    qemu-system-x86 qemu-system-xen
    xen-utils-4.17 xenstore-utils
    busybox-static kmod cpio
    gcc libc6-dev linux-libc-dev
    tmux
    strace
    prometheus prometheus-node-exporter
    mmdebstrap debian-archive-keyring
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root (it calls apt-get install)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
apt-get update -q
echo "install-deps: apt-get install ${PACKAGES[*]}"
# xen-utils may pull systemd/udev upgrades; keep the existing config files unattended.
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${PACKAGES[@]}"
echo "install-deps: done"
