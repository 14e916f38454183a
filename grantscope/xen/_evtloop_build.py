"""Build the C inner loop of ``pingpong`` (cffi API mode): ``grantscope.xen._evtloop``.

The install builds it when a compiler and the Python headers are there (``hatch_build.py``);
``python -m grantscope.xen._evtloop_build`` builds it in place in a checkout.  Without it
``pingpong`` runs the pure-Python loop and says so (:mod:`grantscope.xen.evtloop`).

It also holds the fast paths of :meth:`EventChannel.wait`, ``gs_wait_once`` (poll, read, write
back in one call instead of three from Python), and of a gntdev map and unmap,
``gs_map_grants`` (MAP_GRANT_REF, mmap) and ``gs_unmap_grants`` (munmap, UNMAP_GRANT_REF).

The loop does what :func:`grantscope.probing.steps.round_trips` does, syscall for syscall:
notify (IOCTL_EVTCHN_NOTIFY), poll the fd for the answer up to the timeout, read the ports
that fired and write them back (unmask), and time each round trip on CLOCK_MONOTONIC (what
``time.perf_counter`` reads).  With an echo fd it answers each ping in-process first, as the
loopback pair does.  It returns to Python at every EINTR so a signal is handled there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MODULE = "grantscope.xen._evtloop"

CDEF = """
int gs_wait_once(int fd, double timeout_s, unsigned int *fired, int max, int *err);
int gs_round_trips(int send_fd, unsigned int send_port, int recv_fd, unsigned int recv_port,
                   int echo_fd, unsigned int echo_port, unsigned long notify_request,
                   int count, double timeout_s, double *samples, int *failure, int *err);
void *gs_map_grants(int fd, unsigned long map_request, unsigned int domid,
                    const unsigned int *grefs, int count, int prot, uint64_t *out);
int gs_unmap_grants(int fd, unsigned long unmap_request, void *addr, uint64_t index, int count);
"""

# failure codes (the Python side names them): 0 done, 1 the loopback end got nothing,
# 2 no answer on recv_port, 3 interrupted (EINTR), 4 a syscall failed (err = errno, and
# which one: 10 + index into notify/poll/read/write).
SOURCE = r"""
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double gs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1: port fired (any port when any != 0); 0: deadline; -1: EINTR; -2: syscall failed. */
static int gs_wait_port(int fd, unsigned int port, int any, double first_s, double deadline,
                        int *err)
{
    uint32_t fired[1024];
    struct pollfd p;
    double left = first_s;
    for (;;) {
        int ms = left <= 0 ? 0 : (int)(left * 1000 + 0.999);
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        int r = poll(&p, 1, ms);
        if (r < 0) {
            if (errno == EINTR)
                return -1;
            *err = 11 * 1000 + errno;
            return -2;
        }
        if (r > 0) {
            ssize_t got = read(fd, fired, sizeof fired);
            if (got < 0 && errno != EAGAIN && errno != EINTR) {
                *err = 12 * 1000 + errno;
                return -2;
            }
            if (got > 0) {
                if (write(fd, fired, (size_t)got) < 0) {  /* unmask what was consumed */
                    *err = 13 * 1000 + errno;
                    return -2;
                }
                for (ssize_t i = 0; i < got / 4; i++)
                    if (any || fired[i] == port)
                        return 1;
            }
        }
        left = deadline - gs_now();
        if (left <= 0)
            return 0;
    }
}

/* EventChannel.wait's fast path in one call: poll ``fd`` up to ``timeout_s`` (rounded up to
   a millisecond; <= 0: do not block; from 2e6 s, infinity included: no limit), read the
   ports that fired into ``fired`` (at most ``max``) and write them back (unmask).
   Returns the number of ports read; 0: poll timed out; -1: EINTR (Python runs the signal
   handler, then waits again); -3: woke with nothing to read; -4: the fd is closed (< 0);
   -2: a syscall failed (*err as in gs_wait_port). */
int gs_wait_once(int fd, double timeout_s, unsigned int *fired, int max, int *err)
{
    if (fd < 0)
        return -4;
    int ms = timeout_s >= 2e6 ? -1 : (timeout_s > 0 ? (int)(timeout_s * 1000 + 0.999) : 0);
    struct pollfd p = { fd, POLLIN, 0 };
    int r = poll(&p, 1, ms);
    if (r < 0) {
        if (errno == EINTR)
            return -1;
        *err = 11 * 1000 + errno;
        return -2;
    }
    if (r == 0)
        return 0;
    ssize_t got = read(fd, fired, (size_t)max * 4);
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return -3;
        *err = 12 * 1000 + errno;
        return -2;
    }
    if (got < 4)
        return -3;
    if (write(fd, fired, (size_t)got) < 0) {
        *err = 13 * 1000 + errno;
        return -2;
    }
    return (int)(got / 4);
}

/* Gntdev's map in one call: IOCTL_GNTDEV_MAP_GRANT_REF of ``count`` (domid, gref) pairs, then
   mmap of their pages through the same fd at the offset the ioctl gave (out[0]).  Returns the
   address; NULL on failure with out[1] = 20 * 1000 + errno (the ioctl failed, nothing to
   undo) or 21 * 1000 + errno (mmap failed: the grants are mapped at out[0], for the caller
   to diagnose and unmap).  One out array: one allocation on the Python side. */
void *gs_map_grants(int fd, unsigned long map_request, unsigned int domid,
                    const unsigned int *grefs, int count, int prot, uint64_t *out)
{
    /* struct ioctl_gntdev_map_grant_ref: count, pad, index (OUT), then (domid, ref) pairs */
    uint32_t one[6];
    uint32_t *op = count == 1 ? one : malloc(16 + (size_t)count * 8);
    if (op == NULL) {
        out[1] = 20 * 1000 + ENOMEM;
        return NULL;
    }
    op[0] = (uint32_t)count;
    op[1] = op[2] = op[3] = 0;
    for (int i = 0; i < count; i++) {
        op[4 + 2 * i] = domid;
        op[5 + 2 * i] = grefs[i];
    }
    int r = ioctl(fd, map_request, op);
    int saved = errno;
    uint64_t offset = (uint64_t)op[2] | ((uint64_t)op[3] << 32);
    if (op != one)
        free(op);
    if (r < 0) {
        out[1] = 20 * 1000 + saved;
        return NULL;
    }
    out[0] = offset;
    void *addr = mmap(NULL, (size_t)count * 4096, prot, MAP_SHARED, fd, (off_t)offset);
    if (addr == MAP_FAILED) {
        out[1] = 21 * 1000 + errno;
        return NULL;
    }
    return addr;
}

/* Gntdev's unmap in one call: munmap ``count`` pages at ``addr`` (skipped when NULL), then
   IOCTL_GNTDEV_UNMAP_GRANT_REF of the grants at ``index``.  0, or 22 * 1000 + errno (munmap
   failed, nothing else done) or 23 * 1000 + errno (the ioctl failed). */
int gs_unmap_grants(int fd, unsigned long unmap_request, void *addr, uint64_t index, int count)
{
    if (addr != NULL && munmap(addr, (size_t)count * 4096) != 0)
        return 22 * 1000 + errno;
    /* struct ioctl_gntdev_unmap_grant_ref: index, count, pad */
    struct { uint64_t index; uint32_t count, pad; } op = { index, (uint32_t)count, 0 };
    if (ioctl(fd, unmap_request, &op) < 0)
        return 23 * 1000 + errno;
    return 0;
}

static int gs_notify(int fd, unsigned long request, unsigned int port, int *err)
{
    struct { uint32_t port; } arg = { port };
    if (ioctl(fd, request, &arg) < 0) {
        *err = 10 * 1000 + errno;
        return -1;
    }
    return 0;
}

int gs_round_trips(int send_fd, unsigned int send_port, int recv_fd, unsigned int recv_port,
                   int echo_fd, unsigned int echo_port, unsigned long notify_request,
                   int count, double timeout_s, double *samples, int *failure, int *err)
{
    *failure = 0;
    *err = 0;
    for (int i = 0; i < count; i++) {
        double started = gs_now(), deadline = started + timeout_s;
        if (gs_notify(send_fd, notify_request, send_port, err) < 0) {
            *failure = 4;
            return i;
        }
        if (echo_fd >= 0) {
            int r = gs_wait_port(echo_fd, 0, 1, timeout_s, deadline, err);
            if (r <= 0) {
                *failure = r == 0 ? 1 : (r == -1 ? 3 : 4);
                return i;
            }
            if (gs_notify(echo_fd, notify_request, echo_port, err) < 0) {
                *failure = 4;
                return i;
            }
        }
        int r = gs_wait_port(recv_fd, recv_port, 0, timeout_s, deadline, err);
        if (r <= 0) {
            *failure = r == 0 ? 2 : (r == -1 ? 3 : 4);
            return i;
        }
        samples[i] = gs_now() - started;
    }
    return count;
}
"""


def ffibuilder() -> Any:
    """The cffi builder of the loop (API mode: compiled against the headers, no cdef guesses)."""
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE, SOURCE, extra_compile_args=["-O2"])
    return ffi


def build(target_dir: str | Path) -> Path:
    """Compile the module into ``target_dir`` (the directory holding ``grantscope/``); its path."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gs-evtloop-") as tmp:
        built = Path(ffibuilder().compile(tmpdir=tmp, verbose=False))
        dest = Path(target_dir) / built.relative_to(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(built.read_bytes())
    return dest


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    print(build(root))
    sys.exit(0)
