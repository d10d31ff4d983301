/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Which connections a worker still serves. A connection accepted from a listener keeps the listener's local
 * address and port, so the kernel's socket list filtered by that port holds them all (with those of every
 * other worker of the address, and the ones still waiting in accept queues, which no process holds yet:
 * inode 0). The worker's own fds, and those of its children (forking daemons serve in a child), name the
 * inodes that are its. First the walk of a few /proc directories: an idle worker holds no socket but its
 * listeners, and then that is all. Else one netlink dump per address family of the listeners, shared by
 * the workers looked at in the same turn of the loop (a dump walks the kernel's whole connection table).
 * Bounded, and cheap enough to run every DRAIN_CHECK_USEC while a worker retires. */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "parse-util.h"
#include "proc-parse.h"
#include "rpsup-limits.h"
#include "sock-diag.h"
#include "time-util.h"
#include "worker-connections.h"

typedef struct Endpoint {
        int family;
        uint8_t addr[16]; /* network byte order; all zero: any address */
        uint16_t port;    /* host byte order */
} Endpoint;

/* The sockets on the listeners' ports that some process holds (inodes; sorted once complete). */
typedef struct Candidates {
        uint32_t *inodes;
        size_t n, allocated;
} Candidates;

/* The last dump, for the workers looked at in the same turn of the event loop: they retire from the same
 * listeners' ports, and a dump walks the kernel's whole connection table, whatever the filter. */
static struct {
        Endpoint endpoints[LISTEN_MAX];
        size_t n_endpoints;
        usec_t at;
        uint32_t *inodes; /* sorted */
        size_t n;
} last_dump;

static uint32_t *inodes_dup(const uint32_t *inodes, size_t n) {
        uint32_t *copy = malloc(n * sizeof(uint32_t));

        if (copy)
                memcpy(copy, inodes, n * sizeof(uint32_t));
        return copy;
}

static bool endpoints_equal(const Endpoint *a, size_t n_a, const Endpoint *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (a[i].family != b[i].family || a[i].port != b[i].port || memcmp(a[i].addr, b[i].addr, 16) != 0)
                        return false;
        return true;
}

/* ---- the filter ---- */

int worker_connections_filter(const uint16_t *ports, size_t n_ports, void *buf, size_t size) {
        uint16_t unique[LISTEN_MAX];
        size_t n = 0, len, off = 0;
        uint8_t *p = buf;

        for (size_t i = 0; i < n_ports; i++) {
                bool dup = false;
                for (size_t k = 0; k < n; k++)
                        dup = dup || unique[k] == ports[i];
                if (dup)
                        continue;
                if (n >= ELEMENTSOF(unique))
                        return -E2BIG;
                unique[n++] = ports[i];
        }
        /* port >= p and port <= p, and, but for the last alternative, a jump to the end (accept) when both
         * held; a failed comparison goes on to the next alternative, or past the end (reject). */
        len = n == 0 ? 0 : n * 20 - 4;
        if (len > size)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                bool last = i + 1 == n;
                size_t rest = len - off; /* from this alternative's first op to the end */
                struct inet_diag_bc_op ops[5] = {
                        { .code = INET_DIAG_BC_S_GE, .yes = 8, .no = last ? rest + 4 : 20 },
                        { .no = unique[i] },
                        { .code = INET_DIAG_BC_S_LE, .yes = 8, .no = last ? rest - 8 + 4 : 12 },
                        { .no = unique[i] },
                        { .code = INET_DIAG_BC_JMP, .yes = 4, .no = rest - 16 },
                };
                size_t sz = last ? 16 : 20;

                memcpy(p + off, ops, sz);
                off += sz;
        }
        return (int) len;
}

/* ---- the listeners ---- */

static int endpoints_from_fds(const int *fds, size_t n_fds, Endpoint *ret, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; i < n_fds && n < LISTEN_MAX; i++) {
                struct sockaddr_storage sa;
                socklen_t len = sizeof(sa);
                int type = 0;
                socklen_t tl = sizeof(type);
                Endpoint *e = &ret[n];

                if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
                    getsockname(fds[i], (struct sockaddr *) &sa, &len) < 0)
                        continue;
                *e = (Endpoint) { .family = sa.ss_family };
                if (sa.ss_family == AF_INET) {
                        const struct sockaddr_in *in = (const struct sockaddr_in *) &sa;
                        memcpy(e->addr, &in->sin_addr, 4);
                        e->port = ntohs(in->sin_port);
                } else if (sa.ss_family == AF_INET6) {
                        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &sa;
                        memcpy(e->addr, &in6->sin6_addr, 16);
                        e->port = ntohs(in6->sin6_port);
                } else
                        continue;
                n++;
        }
        *ret_n = n;
        return 0;
}

static bool endpoint_matches(const Endpoint *e, const struct inet_diag_msg *m) {
        static const uint8_t any[16] = {};
        size_t alen = e->family == AF_INET ? 4 : 16;

        if (m->idiag_family != e->family || ntohs(m->id.idiag_sport) != e->port)
                return false;
        /* A wildcard listener's connections have whatever local address the client reached (on an IPv6
         * wildcard, IPv4 ones too, as v4-mapped addresses). */
        return memcmp(e->addr, any, alen) == 0 || memcmp(e->addr, m->id.idiag_src, alen) == 0;
}

/* ---- the kernel's socket list ---- */

static int candidates_add(Candidates *c, uint32_t inode) {
        if (c->n >= c->allocated) {
                size_t a = MAX(c->allocated * 2, (size_t) 64);
                uint32_t *p;

                if (c->allocated >= DRAIN_SOCKETS_MAX)
                        return -E2BIG;
                a = MIN(a, (size_t) DRAIN_SOCKETS_MAX);
                p = realloc(c->inodes, a * sizeof(uint32_t));
                if (!p)
                        return -ENOMEM;
                c->inodes = p;
                c->allocated = a;
        }
        c->inodes[c->n++] = inode;
        return 0;
}

typedef struct DumpMatch {
        const Endpoint *endpoints;
        size_t n_endpoints;
        Candidates *c;
} DumpMatch;

static int dump_match(const struct inet_diag_msg *m, void *userdata) {
        DumpMatch *d = userdata;

        if (m->idiag_inode == 0) /* queued, not accepted yet: no process holds it */
                return 0;
        for (size_t i = 0; i < d->n_endpoints; i++)
                if (endpoint_matches(&d->endpoints[i], m))
                        return candidates_add(d->c, m->idiag_inode);
        return 0;
}

static int dump_family(int family, const Endpoint *endpoints, size_t n_endpoints, Candidates *c) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
                struct nlattr attr;
                uint8_t bytecode[LISTEN_MAX * 20];
        } msg = {};
        uint16_t ports[LISTEN_MAX];
        size_t n_ports = 0;
        int len;

        for (size_t i = 0; i < n_endpoints; i++)
                if (endpoints[i].family == family)
                        ports[n_ports++] = endpoints[i].port;
        if (n_ports == 0)
                return 0;
        len = worker_connections_filter(ports, n_ports, msg.bytecode, sizeof(msg.bytecode));
        if (len < 0)
                return len;

        msg.req = (struct inet_diag_req_v2) {
                .sdiag_family = family,
                .sdiag_protocol = IPPROTO_TCP,
                /* Connections: not listeners, not the ones past their close, not handshakes in flight. */
                .idiag_states = ((1U << 12) - 1) & ~((1U << TCP_LISTEN) | (1U << TCP_TIME_WAIT) |
                                                     (1U << TCP_CLOSE) | (1U << TCP_SYN_RECV)),
        };
        msg.attr = (struct nlattr) { .nla_type = INET_DIAG_REQ_BYTECODE, .nla_len = NLA_HDRLEN + len };
        msg.nlh = (struct nlmsghdr) {
                .nlmsg_len = NLMSG_LENGTH(sizeof(msg.req)) + NLA_ALIGN(NLA_HDRLEN + len),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
        };

        return sock_diag_dump(&msg, msg.nlh.nlmsg_len, dump_match,
                              &(DumpMatch) { .endpoints = endpoints, .n_endpoints = n_endpoints, .c = c });
}

static int compare_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

/* ---- the worker's fds ---- */

typedef struct Walk {
        const uint32_t *listeners;  /* the listeners' own inodes, sorted: not connections */
        size_t n_listeners;
        const uint32_t *handed_on;  /* sockets held for the slot's next worker, sorted: not the worker's to finish */
        size_t n_handed_on;
        uint32_t *held;             /* socket inodes the worker and its descendants hold */
        size_t n_held, allocated;
        size_t fds;
} Walk;

static int walk_fds(Walk *w, pid_t pid) {
        char path[64], target[64];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                uint64_t v;
                uint32_t inode;
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                if (++w->fds > DRAIN_FDS_MAX)
                        return -E2BIG;
                k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (k < 0)
                        continue; /* closed meanwhile */
                target[k] = 0;
                /* sock_diag's inodes are 32 bits wide: a larger one matches no connection it lists. */
                if (parse_socket_link(target, &v) < 0 || v > UINT32_MAX)
                        continue;
                inode = (uint32_t) v;
                if (bsearch(&inode, w->listeners, w->n_listeners, sizeof(uint32_t), compare_u32) ||
                    (w->n_handed_on > 0 && bsearch(&inode, w->handed_on, w->n_handed_on, sizeof(uint32_t), compare_u32)))
                        continue;
                if (w->n_held == w->allocated) {
                        size_t a = MAX(w->allocated * 2, (size_t) 64);
                        uint32_t *p = reallocarray(w->held, a, sizeof(uint32_t));
                        if (!p)
                                return -ENOMEM;
                        w->held = p;
                        w->allocated = a;
                }
                w->held[w->n_held++] = inode;
        }
        return 0;
}

/* Appends pid's children (of every thread) to the queue. Threads count as fds do: one read each. */
static int add_children(Walk *w, pid_t pid, pid_t *queue, size_t *n) {
        char path[64];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? 0 : -errno; /* gone meanwhile */
        while ((de = readdir(d))) {
                _cleanup_fclose_ FILE *f = NULL;
                int child;

                if (de->d_name[0] == '.')
                        continue;
                if (++w->fds > DRAIN_FDS_MAX)
                        return -E2BIG;
                snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children", (int) pid, de->d_name);
                f = fopen(path, "re");
                if (!f) {
                        /* The task is gone, or the kernel has no children files (CONFIG_PROC_CHILDREN):
                         * then the descendants cannot be told. */
                        if (errno == ENOENT && access("/proc/thread-self/children", F_OK) < 0)
                                return -EOPNOTSUPP;
                        continue;
                }
                while (fscanf(f, "%d", &child) == 1) {
                        if (*n >= DRAIN_PROCESSES_MAX)
                                return -E2BIG;
                        queue[(*n)++] = child;
                }
        }
        return 0;
}

/* The sockets on the endpoints' ports that some process holds, sorted: from the last dump if it is no older
 * than max_age and was of the same endpoints, else from a new one (kept for the next caller). */
static int candidates_get(const Endpoint *endpoints, size_t n_endpoints, usec_t max_age, Candidates *c) {
        usec_t t = now_usec(CLOCK_MONOTONIC);
        int r;

        if (max_age > 0 && last_dump.at > 0 && t - last_dump.at <= max_age &&
            endpoints_equal(endpoints, n_endpoints, last_dump.endpoints, last_dump.n_endpoints)) {
                if (last_dump.n > 0) {
                        c->inodes = inodes_dup(last_dump.inodes, last_dump.n);
                        if (!c->inodes)
                                return -ENOMEM;
                }
                c->n = c->allocated = last_dump.n;
                return 0;
        }
        r = dump_family(AF_INET, endpoints, n_endpoints, c);
        if (r >= 0)
                r = dump_family(AF_INET6, endpoints, n_endpoints, c);
        if (r < 0)
                return r;
        if (c->n > 0)
                qsort(c->inodes, c->n, sizeof(uint32_t), compare_u32);
        if (max_age > 0) {
                uint32_t *copy = c->n > 0 ? inodes_dup(c->inodes, c->n) : NULL;

                free(last_dump.inodes);
                last_dump.inodes = copy;
                last_dump.n = copy ? c->n : 0;
                last_dump.at = copy || c->n == 0 ? t : 0;
                memcpy(last_dump.endpoints, endpoints, n_endpoints * sizeof(Endpoint));
                last_dump.n_endpoints = n_endpoints;
        }
        return 0;
}

/* How many of the sorted inodes in held (duplicates allowed: a socket shared by a parent and its child)
 * are among the sorted, unique candidates. */
static uint64_t count_common(const uint32_t *held, size_t n_held, const uint32_t *cand, size_t n_cand) {
        uint64_t n = 0;

        for (size_t i = 0, k = 0; i < n_held && k < n_cand;) {
                if (i > 0 && held[i] == held[i - 1])
                        i++;
                else if (held[i] < cand[k])
                        i++;
                else if (held[i] > cand[k])
                        k++;
                else {
                        n++;
                        i++;
                        k++;
                }
        }
        return n;
}

int worker_connections_count(pid_t pid, const int *listener_fds, size_t n_fds, usec_t max_age, uint64_t *ret) {
        return worker_connections_count_except(pid, listener_fds, n_fds, NULL, 0, max_age, ret);
}

int worker_connections_count_except(pid_t pid, const int *listener_fds, size_t n_fds, const uint32_t *handed_on,
                                    size_t n_handed_on, usec_t max_age, uint64_t *ret) {
        Endpoint endpoints[LISTEN_MAX];
        uint32_t listeners[2 * LISTEN_MAX + 3];
        size_t n_endpoints = 0, n_listeners = 0, n_queue = 0;
        Candidates c = {};
        Walk w = {};
        _cleanup_free_ pid_t *queue = NULL;
        int r;

        if (pid <= 0)
                return -ESRCH;
        r = endpoints_from_fds(listener_fds, n_fds, endpoints, &n_endpoints);
        if (r < 0)
                return r;
        /* Not connections: the sockets given (the listeners), and rpsupd's own standard output and error
         * (a journal stream socket under systemd), which workers inherit. */
        for (size_t i = 0; i < n_fds + 3 && n_listeners < ELEMENTSOF(listeners); i++) {
                struct stat st;
                int fd = i < n_fds ? listener_fds[i] : (int) (i - n_fds);
                if (fstat(fd, &st) >= 0 && S_ISSOCK(st.st_mode) && st.st_ino > 0 && st.st_ino <= UINT32_MAX)
                        listeners[n_listeners++] = (uint32_t) st.st_ino;
        }
        qsort(listeners, n_listeners, sizeof(uint32_t), compare_u32);
        w = (Walk) { .listeners = listeners, .n_listeners = n_listeners, .handed_on = handed_on,
                     .n_handed_on = n_handed_on };

        /* First the sockets the worker holds (a few /proc directories): an idle worker holds none but its
         * listeners, and then the kernel's table need not be read at all. */
        queue = calloc(DRAIN_PROCESSES_MAX, sizeof(pid_t));
        if (!queue)
                return -ENOMEM;
        queue[n_queue++] = pid;
        for (size_t i = 0; i < n_queue; i++) {
                r = walk_fds(&w, queue[i]);
                if (r == -ENOENT) {
                        if (i == 0) {
                                r = -ESRCH;
                                goto finish;
                        }
                        continue; /* a child that exited meanwhile */
                }
                if (r < 0)
                        goto finish;
                r = add_children(&w, queue[i], queue, &n_queue);
                if (r < 0)
                        goto finish;
        }
        if (w.n_held == 0) {
                *ret = 0;
                r = 0;
                goto finish;
        }
        /* Which of them are connections on the listeners' ports. */
        r = candidates_get(endpoints, n_endpoints, max_age, &c);
        if (r < 0)
                goto finish;
        qsort(w.held, w.n_held, sizeof(uint32_t), compare_u32);
        *ret = count_common(w.held, w.n_held, c.inodes, c.n);
        r = 0;
finish:
        free(c.inodes);
        free(w.held);
        return r;
}
