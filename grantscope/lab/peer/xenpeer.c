/*
 * xenpeer: grantscope's lab peer and C benchmark anchor.
 *
 * Built statically ("gcc -static") by 'grantscope lab build', because the domU it runs in has no
 * libc (only busybox).  It talks to XenStore over /dev/xen/xenbus with the plain wire protocol
 * (xen/include/public/io/xs_wire.h) and uses the Linux Xen devices gntalloc, gntdev and evtchn
 * through their uapi headers.
 *
 *   xenpeer                           domU mode: scenario and parameters from /proc/cmdline
 *                                     (gs_scenario=offer gs_text=hello%20there ...)
 *   xenpeer scenario NAME [k=v ...]   the same scenario, parameters from argv (e.g. in dom0)
 *   xenpeer bench-evtchn N [WARMUP]   C anchor: event-channel loopback round trips, JSON line
 *   xenpeer bench-gnt N [WARMUP]      C anchor: gntalloc self-grant map+touch+unmap, JSON line
 *   xenpeer storm SECONDS             an event storm in dom0: a sender notifies one port as fast
 *                                     as it can for SECONDS while a forked receiver unmasks it;
 *                                     JSON lines "ready" (the ports), then the rate reached
 *                                     (also when ended early by SIGTERM)
 *
 * Scenarios (all write data/status and log lines "xenpeer: ..." to the console):
 *   offer  grant a writable page and offer an unbound port to gs_remote (default 0), write
 *          gs_text into the page, publish GREF and PORT under gs_publish (default data, under
 *          the home path); on every notification write what the page holds to RESULT (and a
 *          count to NOTIFICATIONS) there, then notify back.
 *   map    wait for GREF and PORT under gs_path (default data/offer, relative to the home path),
 *          map the grant (writable if allowed), bind the port, write gs_reply into the page,
 *          publish data/seen (what was there) and data/result, notify back; then echo.
 *          With gs_hold=1 the mapping is kept (never unmapped) until the guest is destroyed.
 *   echo   bind (to gs_path's port if given, else offer data/port) and notify back on every
 *          notification, for ping-pong.  With gs_echo_max=N it closes its port after N echoes
 *          (a peer that unbinds during a ping-pong), writes status "unbound" and lives on.
 *   read   XenStore as this domU sees it: wait for data/paths (space-separated absolute
 *          paths, written by dom0), then for path number I publish data/read-I ("ok VALUE" or
 *          "error ENAME") and data/write-I (the outcome of writing "x" there), then status done.
 * Every scenario stays up for gs_life seconds (default 600) and then exits; dom0 destroys it.
 * Xen marks the binder's own port pending on every interdomain bind: each bind is followed by
 * a drain, or the first "notification" would be one nobody sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The uapi headers use these Xen types without defining them (xen/interface/xen.h does). */
typedef uint16_t domid_t;
typedef uint32_t grant_ref_t;
#include <xen/evtchn.h>
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

#define PAGE_SIZE 4096
#define MAX_PARAMS 32
#define HEAD_MAX 200

/* ---------------------------------------------------------------- logging, parameters */

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("xenpeer: ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static void die(const char *fmt, ...);

static struct { char key[64]; char value[512]; } params[MAX_PARAMS];
static int nparams;

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decoding, the inverse of grantscope.lab.cmdline.encode_value. */
static void decode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < outlen; i++) {
        if (in[i] == '%' && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[o++] = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

static void add_param(const char *word, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *eq = strchr(word, '=');
    if (strncmp(word, prefix, plen) != 0 || !eq || nparams >= MAX_PARAMS)
        return;
    size_t klen = (size_t)(eq - word) - plen;
    if (klen == 0 || klen >= sizeof(params[0].key))
        return;
    int slot = nparams;
    for (int i = 0; i < nparams; i++)      /* later words win, like the kernel */
        if (strlen(params[i].key) == klen && !strncmp(params[i].key, word + plen, klen))
            slot = i;
    memcpy(params[slot].key, word + plen, klen);
    params[slot].key[klen] = '\0';
    decode(eq + 1, params[slot].value, sizeof(params[slot].value));
    if (slot == nparams)
        nparams++;
}

static void params_from_cmdline(void)
{
    static char buf[4096];
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd < 0)
        die("cannot open /proc/cmdline: %s", strerror(errno));
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        die("cannot read /proc/cmdline: %s", strerror(errno));
    buf[n] = '\0';
    for (char *save = NULL, *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
        add_param(w, "gs_");
}

static const char *param(const char *key, const char *fallback)
{
    for (int i = 0; i < nparams; i++)
        if (!strcmp(params[i].key, key))
            return params[i].value;
    return fallback;
}

static long param_long(const char *key, long fallback)
{
    const char *v = param(key, NULL);
    if (!v || !*v)
        return fallback;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end)
        die("parameter %s=%s is not a number", key, v);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- XenStore (wire protocol) */

enum { XS_READ = 2, XS_WRITE = 11, XS_WATCH_EVENT = 15, XS_ERROR = 16 };
struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; };
#define XS_PAYLOAD_MAX 4096

static int xs_fd = -1;
static uint32_t xs_next_id = 1;
static char home[64] = "";
static int have_home;

static int read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void xs_open(void)
{
    const char *paths[] = { "/dev/xen/xenbus", "/proc/xen/xenbus" };
    for (size_t i = 0; i < 2 && xs_fd < 0; i++)
        xs_fd = open(paths[i], O_RDWR);
    if (xs_fd < 0)
        die("cannot open /dev/xen/xenbus: %s", strerror(errno));
}

/* One request; returns the reply payload (NUL-terminated, malloc'd) or NULL with *err set. */
static char *xs_request(uint32_t type, const char *path, const char *value, char *err, size_t errlen)
{
    char buf[sizeof(struct xsd_sockmsg) + XS_PAYLOAD_MAX];
    size_t plen = strlen(path) + 1, vlen = value ? strlen(value) : 0;
    if (plen + vlen > XS_PAYLOAD_MAX)
        die("XenStore request too long for %s", path);
    struct xsd_sockmsg hdr = { type, xs_next_id++, 0, (uint32_t)(plen + vlen) };
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), path, plen);
    if (vlen)
        memcpy(buf + sizeof(hdr) + plen, value, vlen);
    if (write(xs_fd, buf, sizeof(hdr) + plen + vlen) != (ssize_t)(sizeof(hdr) + plen + vlen))
        die("write to xenbus failed: %s", strerror(errno));
    for (;;) {
        struct xsd_sockmsg rep;
        if (read_exact(xs_fd, &rep, sizeof(rep)) < 0 || rep.len > XS_PAYLOAD_MAX)
            die("bad reply from xenbus: %s", strerror(errno));
        char *body = malloc(rep.len + 1);
        if (!body || read_exact(xs_fd, body, rep.len) < 0)
            die("short reply from xenbus");
        body[rep.len] = '\0';
        if (rep.type == XS_WATCH_EVENT) {       /* not ours: we set no watches */
            free(body);
            continue;
        }
        if (rep.type == XS_ERROR) {
            snprintf(err, errlen, "%s", body);
            free(body);
            return NULL;
        }
        return body;
    }
}

/* A path relative to the home path becomes absolute (xenstored would do it too, for a domU). */
static void xs_path(const char *rel, char *out, size_t outlen)
{
    if (rel[0] == '/' || !have_home)
        snprintf(out, outlen, "%s", rel);
    else
        snprintf(out, outlen, "%s/%s", home, rel);
}

static char *xs_read(const char *rel)
{
    char path[512], err[64];
    xs_path(rel, path, sizeof(path));
    return xs_request(XS_READ, path, NULL, err, sizeof(err));
}

static void xs_write(const char *rel, const char *value)
{
    char path[512], err[64];
    xs_path(rel, path, sizeof(path));
    char *r = xs_request(XS_WRITE, path, value, err, sizeof(err));
    if (!r)
        die("XenStore write %s failed: %s", path, err);
    free(r);
}

static void xs_writef(const char *rel, const char *fmt, ...)
{
    char value[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    xs_write(rel, value);
}

static int my_domid = -1;

static void xs_find_home(void)
{
    char *id = xs_request(XS_READ, "domid", NULL, (char[64]){0}, 64);
    if (id) {
        my_domid = atoi(id);
        free(id);
        snprintf(home, sizeof(home), "/local/domain/%d", my_domid);
        have_home = 1;
    }
}

static void die(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say("error: %s", msg);
    if (xs_fd >= 0 && have_home) {
        char path[128], err[64];
        snprintf(path, sizeof(path), "%s/data/status", home);
        char value[600];
        snprintf(value, sizeof(value), "error: %s", msg);
        free(xs_request(XS_WRITE, path, value, err, sizeof(err)));
    }
    exit(1);
}

/* Wait until rel exists (polling every 200 ms); returns its value or dies after timeout_s. */
static char *xs_wait(const char *rel, long timeout_s)
{
    double deadline = now_s() + (double)timeout_s;
    for (;;) {
        char *v = xs_read(rel);
        if (v)
            return v;
        if (now_s() > deadline)
            die("%s did not appear in XenStore within %lds", rel, timeout_s);
        usleep(200000);
    }
}

/* ---------------------------------------------------------------- event channels */

static int evtchn_open(void)
{
    int fd = open("/dev/xen/evtchn", O_RDWR);
    if (fd < 0)
        die("cannot open /dev/xen/evtchn: %s", strerror(errno));
    return fd;
}

static int bind_unbound(int fd, unsigned remote)
{
    struct ioctl_evtchn_bind_unbound_port op = { remote };
    int port = ioctl(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &op);
    if (port < 0)
        die("IOCTL_EVTCHN_BIND_UNBOUND_PORT(remote %u): %s", remote, strerror(errno));
    return port;
}

static int bind_interdomain(int fd, unsigned remote, unsigned rport)
{
    struct ioctl_evtchn_bind_interdomain op = { remote, rport };
    int port = ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &op);
    if (port < 0)
        die("IOCTL_EVTCHN_BIND_INTERDOMAIN(%u, %u): %s", remote, rport, strerror(errno));
    return port;
}

static void notify(int fd, int port)
{
    struct ioctl_evtchn_notify op = { (unsigned)port };
    if (ioctl(fd, IOCTL_EVTCHN_NOTIFY, &op) < 0)
        die("IOCTL_EVTCHN_NOTIFY(%d): %s", port, strerror(errno));
}

/* The next port that fires (unmasked again), or -1 after timeout_ms. */
static int wait_event(int fd, int timeout_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR)
        die("poll on evtchn: %s", strerror(errno));
    if (r <= 0)
        return -1;
    uint32_t port;
    if (read(fd, &port, sizeof(port)) != sizeof(port))
        die("read from evtchn: %s", strerror(errno));
    if (write(fd, &port, sizeof(port)) != sizeof(port))      /* unmask */
        die("unmask on evtchn: %s", strerror(errno));
    return (int)port;
}

/* Consume the event Xen raises on the binder's own port at bind time (and anything else). */
static int drain(int fd, int quiet_ms)
{
    int n = 0;
    while (wait_event(fd, quiet_ms) >= 0)
        n++;
    return n;
}

/* ---------------------------------------------------------------- grants */

struct offer { int fd; uint32_t gref; uint64_t index; char *page; };

static struct offer gnt_offer(unsigned remote, int writable)
{
    struct offer o;
    o.fd = open("/dev/xen/gntalloc", O_RDWR);
    if (o.fd < 0)
        die("cannot open /dev/xen/gntalloc: %s", strerror(errno));
    struct ioctl_gntalloc_alloc_gref op = { .domid = (uint16_t)remote,
        .flags = writable ? GNTALLOC_FLAG_WRITABLE : 0, .count = 1 };
    if (ioctl(o.fd, IOCTL_GNTALLOC_ALLOC_GREF, &op) < 0)
        die("IOCTL_GNTALLOC_ALLOC_GREF(domid %u): %s", remote, strerror(errno));
    o.gref = op.gref_ids[0];
    o.index = op.index;
    o.page = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, o.fd, (off_t)o.index);
    if (o.page == MAP_FAILED)
        die("mmap of the gntalloc page: %s", strerror(errno));
    return o;
}

struct mapping { int fd; uint64_t index; char *page; int writable; };

/* Map (domid, gref); returns 0, or -errno if the mmap (where a bad grant fails) failed. */
static int gnt_map(struct mapping *m, int fd, unsigned domid, unsigned gref, int writable)
{
    struct ioctl_gntdev_map_grant_ref op = { .count = 1 };
    op.refs[0].domid = domid;
    op.refs[0].ref = gref;
    if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &op) < 0)
        die("IOCTL_GNTDEV_MAP_GRANT_REF(%u, %u): %s", domid, gref, strerror(errno));
    m->fd = fd;
    m->index = op.index;
    m->writable = writable;
    m->page = mmap(NULL, PAGE_SIZE, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd,
                   (off_t)op.index);
    if (m->page == MAP_FAILED) {
        int e = errno;
        struct ioctl_gntdev_unmap_grant_ref un = { .index = op.index, .count = 1 };
        ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &un);
        return -e;
    }
    return 0;
}

static void gnt_unmap(struct mapping *m)
{
    if (munmap(m->page, PAGE_SIZE) < 0)
        die("munmap of a grant mapping: %s", strerror(errno));
    struct ioctl_gntdev_unmap_grant_ref un = { .index = m->index, .count = 1 };
    if (ioctl(m->fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &un) < 0)
        die("IOCTL_GNTDEV_UNMAP_GRANT_REF: %s", strerror(errno));
}

/* The text at the start of a page: up to the first NUL, non-printables as '.'. */
static void page_head(const char *page, char *out, size_t outlen)
{
    size_t i;
    for (i = 0; i + 1 < outlen && i < HEAD_MAX && page[i]; i++)
        out[i] = (page[i] >= 32 && page[i] < 127) ? page[i] : '.';
    out[i] = '\0';
}

/* ---------------------------------------------------------------- scenarios */

static void echo_loop(int efd, int port, double deadline, const char *what)
{
    long count = 0;
    while (now_s() < deadline) {
        if (wait_event(efd, 1000) < 0)
            continue;
        notify(efd, port);
        count++;
    }
    say("%s: %ld notifications echoed; life is over", what, count);
}

static int scenario_offer(void)
{
    unsigned remote = (unsigned)param_long("remote", 0);
    double deadline = now_s() + (double)param_long("life", 600);
    char greeting[512];
    snprintf(greeting, sizeof(greeting), "%s", param("text", ""));
    if (!greeting[0])
        snprintf(greeting, sizeof(greeting), "hello from domU %d", my_domid);

    /* Where gref/port/result go: data/ under the home path unless gs_publish says otherwise
     * (dom0 running this scenario publishes under the guest's home, where the guest can read). */
    const char *base = param("publish", "data");
    char key[600];

    struct offer o = gnt_offer(remote, 1);
    memset(o.page, 0, PAGE_SIZE);
    memcpy(o.page, greeting, strlen(greeting));
    int efd = evtchn_open();
    int port = bind_unbound(efd, remote);
    snprintf(key, sizeof(key), "%s/gref", base);
    xs_writef(key, "%u", o.gref);
    snprintf(key, sizeof(key), "%s/port", base);
    xs_writef(key, "%d", port);
    xs_write("data/status", "ready");
    say("offer: gref=%u port=%d to domain %u under %s, page says '%s'", o.gref, port, remote,
        base, greeting);

    long count = 0;
    while (now_s() < deadline) {
        if (wait_event(efd, 1000) < 0)
            continue;
        char head[HEAD_MAX + 1];
        page_head(o.page, head, sizeof(head));
        count++;
        snprintf(key, sizeof(key), "%s/result", base);
        xs_write(key, head);
        snprintf(key, sizeof(key), "%s/notifications", base);
        xs_writef(key, "%ld", count);
        notify(efd, port);
        say("offer: notification %ld, page says '%s', notified back", count, head);
    }
    say("offer: life is over after %ld notifications", count);
    return 0;
}

static int scenario_map(void)
{
    unsigned remote = (unsigned)param_long("remote", 0);
    long wait = param_long("wait", 120);
    double deadline = now_s() + (double)param_long("life", 600);
    const char *base = param("path", "data/offer");
    char reply[512], key[600];
    snprintf(reply, sizeof(reply), "%s", param("reply", ""));
    if (!reply[0])
        snprintf(reply, sizeof(reply), "reply from domU %d", my_domid);

    xs_write("data/status", "waiting");
    snprintf(key, sizeof(key), "%s/gref", base);
    char *gref_s = xs_wait(key, wait);
    snprintf(key, sizeof(key), "%s/port", base);
    char *port_s = xs_wait(key, wait);
    unsigned gref = (unsigned)strtoul(gref_s, NULL, 10), rport = (unsigned)strtoul(port_s, NULL, 10);
    say("map: found gref=%u port=%u of domain %u under %s", gref, rport, remote, base);

    int gfd = open("/dev/xen/gntdev", O_RDWR);
    if (gfd < 0)
        die("cannot open /dev/xen/gntdev: %s", strerror(errno));
    struct mapping m;
    int r = gnt_map(&m, gfd, remote, gref, 1);
    if (r < 0) {
        say("map: writable map failed (%s); trying read-only", strerror(-r));
        r = gnt_map(&m, gfd, remote, gref, 0);
        if (r < 0)
            die("map of gref %u from domain %u failed: %s", gref, remote, strerror(-r));
    }
    int efd = evtchn_open();
    int lport = bind_interdomain(efd, remote, rport);
    int drained = drain(efd, 200);
    char seen[HEAD_MAX + 1];
    page_head(m.page, seen, sizeof(seen));
    if (m.writable)
        memcpy(m.page, reply, strlen(reply) + 1);
    /* gs_hold=1 keeps the mapping until the guest is destroyed: a domU that never unmaps,
     * which is what a leak looks like from dom0 once the offering process is gone. */
    int hold = (int)param_long("hold", 0);
    if (!hold) {
        gnt_unmap(&m);
        close(gfd);
    }
    xs_write("data/seen", seen);
    xs_write("data/result", reply);
    xs_write("data/status", m.writable ? "replied" : "replied-readonly");
    notify(efd, lport);
    say("map: saw '%s', wrote '%s' (%s), notified port %d (drained %d bind event%s)",
        seen, reply, m.writable ? "into the page" : "to XenStore only: read-only grant",
        lport, drained, drained == 1 ? "" : "s");
    if (hold)
        say("map: holding the mapping of gref %u until this guest is destroyed (gs_hold=1)", gref);
    echo_loop(efd, lport, deadline, "map");
    return 0;
}

static int scenario_echo(void)
{
    unsigned remote = (unsigned)param_long("remote", 0);
    double deadline = now_s() + (double)param_long("life", 600);
    const char *base = param("path", NULL);
    int efd = evtchn_open(), port;
    if (base) {
        char key[600];
        snprintf(key, sizeof(key), "%s/port", base);
        char *rport = xs_wait(key, param_long("wait", 120));
        port = bind_interdomain(efd, remote, (unsigned)strtoul(rport, NULL, 10));
        int drained = drain(efd, 200);
        say("echo: bound to port %s of domain %u as %d (drained %d)", rport, remote, port, drained);
    } else {
        port = bind_unbound(efd, remote);
        xs_writef("data/port", "%d", port);
        say("echo: offering port %d to domain %u", port, remote);
    }
    xs_write("data/status", "ready");
    long echo_max = param_long("echo_max", 0);
    if (echo_max > 0) {
        long count = 0;
        while (count < echo_max && now_s() < deadline) {
            if (wait_event(efd, 1000) < 0)
                continue;
            notify(efd, port);
            count++;
        }
        struct ioctl_evtchn_unbind op = { (unsigned)port };
        if (ioctl(efd, IOCTL_EVTCHN_UNBIND, &op) < 0)
            die("IOCTL_EVTCHN_UNBIND(%d): %s", port, strerror(errno));
        say("echo: unbound port %d after %ld echoes", port, count);
        xs_write("data/status", "unbound");
        while (now_s() < deadline)
            sleep(1);
        return 0;
    }
    echo_loop(efd, port, deadline, "echo");
    return 0;
}

static int scenario_read(void)
{
    char *paths = xs_wait("data/paths", param_long("wait", 120));
    int i = 0;
    for (char *save = NULL, *path = strtok_r(paths, " ", &save); path;
         path = strtok_r(NULL, " ", &save), i++) {
        char key[64], err[64];
        char *value = xs_request(XS_READ, path, NULL, err, sizeof(err));
        snprintf(key, sizeof(key), "data/read-%d", i);
        if (value)
            xs_writef(key, "ok %s", value);
        else
            xs_writef(key, "error %s", err);
        free(value);
        char *wrote = xs_request(XS_WRITE, path, "x", err, sizeof(err));
        snprintf(key, sizeof(key), "data/write-%d", i);
        xs_writef(key, wrote ? "ok" : "error %s", err);
        free(wrote);
        say("read: %s -> %s", path, value ? "ok" : err);
    }
    free(paths);
    xs_write("data/status", "done");
    /* Stay up like every scenario: the guest's home (and what it published) goes with it. */
    for (double deadline = now_s() + (double)param_long("life", 600); now_s() < deadline;)
        sleep(1);
    return 0;
}

static int run_scenario(const char *name)
{
    xs_open();
    xs_find_home();
    say("scenario %s, domid %d, home %s", name, my_domid, have_home ? home : "(none)");
    if (!strcmp(name, "offer"))
        return scenario_offer();
    if (!strcmp(name, "map"))
        return scenario_map();
    if (!strcmp(name, "echo"))
        return scenario_echo();
    if (!strcmp(name, "read"))
        return scenario_read();
    die("unknown scenario '%s' (offer, map, echo, read)", name);
    return 2;
}

/* ---------------------------------------------------------------- C benchmark anchors */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *bench, double *us, long n, long retakes)
{
    qsort(us, (size_t)n, sizeof(double), cmp_double);
    printf("{\"bench\": \"%s\", \"n\": %ld, \"unit\": \"us\", \"min\": %.1f, \"p50\": %.1f, "
           "\"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f, \"retaken\": %ld}\n",
           bench, n, us[0], us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[n - 1], retakes);
    fflush(stdout);
}

/* Time on one vCPU whose clock is seen to advance.  Under TCG the vCPUs' Xen clocks drift
 * apart, and Linux keeps the clock from going backwards with one system-wide "last value": a
 * vCPU whose clock runs behind reads that last value again and again, so an interval measured
 * there reads 0 (seen: gnt-selfmap p50 = 0.0 us, once unpinned and again pinned to CPU 0).
 * Which vCPU is ahead changes as Xen recalibrates, so the choice is checked per sample too. */
static void pin_to(long cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        say("warning: cannot pin to CPU %ld (%s); timings may read 0", cpu, strerror(errno));
}

static int clock_advances_here(void)
{
    for (int i = 0; i < 200; i++) {
        double a = now_s();
        for (volatile int spin = 0; spin < 200; spin++)
            ;
        if (now_s() <= a)
            return 0;
    }
    return 1;
}

static void pin_to_a_steady_cpu(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int round = 0; round < 20; round++)
        for (long cpu = 0; cpu < (ncpu > 0 ? ncpu : 1); cpu++) {
            pin_to(cpu);
            if (clock_advances_here())
                return;
        }
    say("warning: no CPU's clock advanced steadily; timings may read 0");
}

/* One timed sample must be longer than 0: a hypercall is never free.  A 0 means the clock was
 * held at the system-wide last value, so the sample is taken again on a steady CPU. */
static int sample_is_clamped(double us, long *retakes, long n)
{
    if (us > 0)
        return 0;
    if (++*retakes > 10 * n)
        die("the clock did not advance across %ld samples; no timing can be trusted", *retakes);
    pin_to_a_steady_cpu();
    return 1;
}

static int bench_evtchn(long n, long warmup)
{
    pin_to_a_steady_cpu();
    long retakes = 0;
    int a = evtchn_open(), b = evtchn_open();
    int pa = bind_unbound(a, 0);
    int pb = bind_interdomain(b, 0, (unsigned)pa);
    drain(a, 50);
    drain(b, 50);
    double *us = calloc((size_t)n, sizeof(double));
    for (long i = -warmup; i < n; i++) {
        double t0 = now_s();
        notify(b, pb);
        int got = wait_event(a, 5000);
        if (got != pa)
            die("bench-evtchn: expected port %d, got %d", pa, got);
        notify(a, pa);
        got = wait_event(b, 5000);
        if (got != pb)
            die("bench-evtchn: expected port %d, got %d", pb, got);
        if (i >= 0) {
            us[i] = (now_s() - t0) * 1e6;
            if (sample_is_clamped(us[i], &retakes, n))
                i--;
        }
    }
    report("evtchn-loopback-roundtrip", us, n, retakes);
    return 0;
}

static int bench_gnt(long n, long warmup)
{
    pin_to_a_steady_cpu();
    long retakes = 0;
    struct offer o = gnt_offer(0, 1);
    int gfd = open("/dev/xen/gntdev", O_RDWR);
    if (gfd < 0)
        die("cannot open /dev/xen/gntdev: %s", strerror(errno));
    double *us = calloc((size_t)n, sizeof(double));
    for (long i = -warmup; i < n; i++) {
        struct mapping m;
        double t0 = now_s();
        int r = gnt_map(&m, gfd, 0, o.gref, 1);
        if (r < 0)
            die("bench-gnt: map of own gref %u: %s", o.gref, strerror(-r));
        m.page[0] = (char)(i & 0x7f);
        gnt_unmap(&m);
        if (o.page[0] != (char)(i & 0x7f))
            die("bench-gnt: write through gntdev not seen through gntalloc");
        if (i >= 0) {
            us[i] = (now_s() - t0) * 1e6;
            if (sample_is_clamped(us[i], &retakes, n))
                i--;
        }
    }
    report("gnt-selfmap-map-unmap", us, n, retakes);
    return 0;
}

/* An event storm on one port: dom0 loopback, the sender (this process) notifies PB as fast as it
 * can, a forked receiver unmasks PA after each event so the next notification can fire.  Xen
 * coalesces notifications that arrive while PA is pending, so the receiver sees fewer events
 * (and /proc/interrupts counts fewer interrupts) than were sent.  SIGTERM ends it early, still
 * reporting what it reached. */
static volatile sig_atomic_t storm_stop;

static void storm_on_term(int sig)
{
    (void)sig;
    storm_stop = 1;
}

static int storm(long seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = storm_on_term;      /* no SA_RESTART: a waiting poll() returns at once */
    sigaction(SIGTERM, &sa, NULL);
    int a = evtchn_open(), b = evtchn_open();
    int pa = bind_unbound(a, 0);
    int pb = bind_interdomain(b, 0, (unsigned)pa);
    drain(a, 50);
    drain(b, 50);
    int pipefd[2];
    if (pipe(pipefd) < 0)
        die("pipe: %s", strerror(errno));
    double start = now_s();
    pid_t sender = getpid();
    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {                       /* the receiver: unmask until the sender is done */
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* a killed sender takes its receiver (and port) along */
        if (getppid() != sender)            /* it died before prctl() took effect */
            _exit(0);
        close(b);
        close(pipefd[0]);
        long received = 0;
        while (!storm_stop && now_s() < start + (double)seconds + 0.5)
            if (wait_event(a, 100) >= 0)
                received++;
        if (write(pipefd[1], &received, sizeof(received)) != sizeof(received))
            die("storm: reporting the receiver's count: %s", strerror(errno));
        _exit(0);
    }
    close(pipefd[1]);
    printf("{\"ready\": true, \"receiver_port\": %d, \"sender_port\": %d, "
           "\"receiver_pid\": %d}\n", pa, pb, (int)child);
    fflush(stdout);
    long sent = 0;
    double end = start + (double)seconds;
    while (!storm_stop && now_s() < end) {
        notify(b, pb);
        sent++;
    }
    double took = now_s() - start;
    kill(child, SIGTERM);
    long received = -1;
    if (read(pipefd[0], &received, sizeof(received)) != sizeof(received))
        received = -1;
    waitpid(child, NULL, 0);
    printf("{\"storm\": \"evtchn-notify\", \"seconds\": %.2f, \"notifies\": %ld, "
           "\"notify_rate\": %.1f, \"received\": %ld}\n", took, sent, sent / took, received);
    fflush(stdout);
    return 0;
}

static long count_arg(const char *s, const char *what, long min)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*end || n < min || n > 10000000) {
        fprintf(stderr, "xenpeer: %s must be a number in range, not '%s'\n", what, s);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 1) {
        params_from_cmdline();
        const char *scenario = param("scenario", NULL);
        if (!scenario)
            die("no gs_scenario=... on the kernel command line");
        return run_scenario(scenario);
    }
    if (!strcmp(argv[1], "scenario") && argc >= 3) {
        for (int i = 3; i < argc; i++) {
            char word[600];
            snprintf(word, sizeof(word), "gs_%s", argv[i]);
            add_param(word, "gs_");
        }
        return run_scenario(argv[2]);
    }
    if ((!strcmp(argv[1], "bench-evtchn") || !strcmp(argv[1], "bench-gnt")) && argc >= 3) {
        long n = count_arg(argv[2], "N", 1);
        long warmup = argc >= 4 ? count_arg(argv[3], "WARMUP", 0) : 10;
        return !strcmp(argv[1], "bench-evtchn") ? bench_evtchn(n, warmup) : bench_gnt(n, warmup);
    }
    if (!strcmp(argv[1], "storm") && argc == 3)
        return storm(count_arg(argv[2], "SECONDS", 1));
    fprintf(stderr,
            "usage: xenpeer                          (domU: gs_scenario=... from /proc/cmdline)\n"
            "       xenpeer scenario offer|map|echo [key=value ...]\n"
            "       xenpeer bench-evtchn N [WARMUP]\n"
            "       xenpeer bench-gnt N [WARMUP]\n"
            "       xenpeer storm SECONDS\n");
    return 2;
}
