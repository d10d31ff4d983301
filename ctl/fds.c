/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"
#include "fds.h"
#include "proc-parse.h"
#include "records.h"
#include "rpsup-protocol.h"
#include "sock-diag.h"
#include "socket-address.h"
#include "string-util.h"
#include "table.h"

/* One socket of the service: rpsupd's (held or closed) or one the kernel lists on its ports. */
typedef struct Sock {
        uint64_t inode;
        json_object *rec;        /* in the report's "sockets" once listed */
        size_t order;            /* where it is listed: rpsupd's order, then the kernel's others */
        bool listed;             /* closed ones are listed once a copy is found */
        bool listening;          /* the kernel lists it (a TCP listener, a bound UDP socket) */
        bool held;               /* rpsupd holds it, by either of its answers */
        bool stored;             /* in the fd store (rpsupd gave it a name), by either answer */
        pid_t last_pid;          /* the holder a copy was last added to (a process's copies come together) */
        json_object *last_holder;
} Sock;

typedef struct Proc {
        pid_t pid, ppid;
        uint64_t start_time; /* field 22 of /proc/PID/stat; 0: unknown */
        char comm[17];
        bool inspected;
        bool denied;  /* its fds are not readable as this user */
        bool fdstore; /* holds the socket bound at rpsupd's NOTIFY_SOCKET */
} Proc;

typedef struct Copy {
        pid_t pid;
        uint64_t inode;
        int fd;
} Copy;

/* A worker as rpsupd lists it (either answer: bit 0 the first, bit 1 the second). */
typedef struct WorkerRec {
        pid_t pid;
        uint64_t start_time; /* 0: unknown, not compared */
        uint64_t generation;
        unsigned slot;
        bool departing;
        unsigned answers;
} WorkerRec;

/* A listener rpsupd handed to a worker. */
typedef struct Pair {
        pid_t pid;
        uint64_t inode;
        unsigned answers;
        bool found;
} Pair;

typedef struct Scan {
        Sock *socks;
        size_t n_socks, n_foreign;
        size_t n_sorted; /* socks[0..n_sorted) are sorted by inode */
        uint64_t notify[16];
        size_t n_notify;
        Proc *procs;
        size_t n_procs;
        Copy *copies;
        size_t n_copies;
        WorkerRec *workers;
        size_t n_workers, cap_workers;
        Pair *pairs;
        size_t n_pairs, cap_pairs;
        bool truncated;  /* rpsupd left workers out of an answer (its bound) */
        pid_t rpsupd;
        uint64_t rpsupd_start_time;
        const char *notify_socket;
        json_object *limits; /* strings */
} Scan;

static void scan_done(Scan *s) {
        for (size_t i = 0; i < s->n_socks; i++)
                json_object_put(s->socks[i].rec);
        free(s->socks);
        free(s->procs);
        free(s->copies);
        free(s->workers);
        free(s->pairs);
        json_object_put(s->limits);
}

static void add_str(json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, json_object_new_string(v ?: ""));
}

static void add_int(json_object *o, const char *key, int64_t v) {
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void add_bool(json_object *o, const char *key, bool v) {
        json_object_object_add(o, key, json_object_new_boolean(v));
}

static void limit_hit(Scan *s, const char *fmt, ...) _printf_(2, 3);
static void limit_hit(Scan *s, const char *fmt, ...) {
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_object_array_add(s->limits, json_object_new_string(buf));
}

/* Room for one more of n elements of `size` in *p (of *cap). */
static int grow(void **p, size_t *cap, size_t n, size_t size) {
        void *q;
        size_t c;

        if (n < *cap)
                return 0;
        c = *cap ? *cap * 2 : 64;
        q = reallocarray(*p, c, size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = c;
        return 0;
}

static int cmp_sock(const void *a, const void *b) {
        const Sock *x = a, *y = b;
        if (x->inode != y->inode)
                return x->inode < y->inode ? -1 : 1;
        return x->order < y->order ? -1 : x->order > y->order;
}

static Sock *find_sock(Scan *s, uint64_t inode) {
        size_t lo = 0, hi = s->n_sorted;

        while (inode && lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (s->socks[mid].inode < inode)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return inode && lo < s->n_sorted && s->socks[lo].inode == inode ? &s->socks[lo] : NULL;
}

/* While the kernel's sockets are added: rpsupd's are sorted (the first n_sorted), the others (at most
 * FDS_FOREIGN_MAX) are not yet. */
static Sock *find_sock_any(Scan *s, uint64_t inode) {
        Sock *k = find_sock(s, inode);

        for (size_t i = s->n_sorted; inode && !k && i < s->n_socks; i++)
                if (s->socks[i].inode == inode)
                        k = &s->socks[i];
        return k;
}

/* Sorts the sockets by inode; of two with one inode (a closed listener's inode in use again), the first
 * listed (the held one) stays. */
static void sort_socks(Scan *s) {
        size_t n = 0;

        qsort(s->socks, s->n_socks, sizeof(Sock), cmp_sock);
        for (size_t i = 0; i < s->n_socks; i++) {
                if (n > 0 && s->socks[n - 1].inode == s->socks[i].inode) {
                        json_object_put(s->socks[i].rec);
                        continue;
                }
                s->socks[n++] = s->socks[i];
        }
        s->n_socks = s->n_sorted = n;
}

static int cmp_proc(const void *a, const void *b) {
        const Proc *x = a, *y = b;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static Proc *find_proc(Scan *s, pid_t pid) {
        Proc key = { .pid = pid };
        return s->n_procs > 0 ? bsearch(&key, s->procs, s->n_procs, sizeof(Proc), cmp_proc) : NULL;
}

/* p is rpsupd: its pid, and (where both are known) its start time. */
static bool is_rpsupd(Scan *s, const Proc *p) {
        return p && p->pid == s->rpsupd &&
               (s->rpsupd_start_time == 0 || p->start_time == 0 || p->start_time == s->rpsupd_start_time);
}

static int cmp_worker(const void *a, const void *b) {
        const WorkerRec *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->start_time < y->start_time ? -1 : x->start_time > y->start_time;
}

static int cmp_pair(const void *a, const void *b) {
        const Pair *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* The worker rpsupd listed with p's pid, if p is that process (not a later one with its pid), or NULL. */
static WorkerRec *find_worker(Scan *s, pid_t pid, const Proc *p) {
        size_t lo = 0, hi = s->n_workers;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (s->workers[mid].pid < pid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < s->n_workers && s->workers[lo].pid == pid; lo++) {
                WorkerRec *w = &s->workers[lo];
                if (w->start_time == 0 || !p || p->start_time == 0 || w->start_time == p->start_time)
                        return w;
        }
        return NULL;
}

static Pair *find_pair(Scan *s, pid_t pid, uint64_t inode) {
        Pair key = { .pid = pid, .inode = inode };
        return s->n_pairs > 0 ? bsearch(&key, s->pairs, s->n_pairs, sizeof(Pair), cmp_pair) : NULL;
}

static int add_sock(Scan *s, uint64_t inode, json_object *rec, size_t order) {
        Sock *n = reallocarray(s->socks, s->n_socks + 1, sizeof(Sock));

        if (!n) {
                json_object_put(rec);
                return -ENOMEM;
        }
        s->socks = n;
        s->socks[s->n_socks++] = (Sock) { .inode = inode, .rec = rec, .order = order };
        json_object_object_add(rec, "holders", json_object_new_array());
        return 0;
}

/* ---- what rpsupd says ---- */

/* The first answer's listeners become the sockets looked for; the second's only tell more about those
 * (a socket the kernel listed as not rpsupd's that rpsupd made meanwhile becomes rpsupd's). */
static int take_listeners(Scan *s, json_object *listeners, bool first) {
        for (size_t i = 0; i < json_object_array_length(listeners); i++) {
                json_object *l = json_object_array_get_idx(listeners, i);
                uint64_t inode = (uint64_t) record_int(l, "inode");
                bool closed = streq(record_str(l, "role"), "closed");
                bool stored = !isempty(record_str(l, "fdstore_name"));
                Sock *k;
                int r;

                if (inode == 0)
                        continue;
                if (first) {
                        r = add_sock(s, inode, json_object_get(l), i);
                        if (r < 0)
                                return r;
                        k = &s->socks[s->n_socks - 1];
                        k->listed = !closed;
                } else {
                        k = find_sock(s, inode);
                        if (!k)
                                continue; /* new since the scan: none of its copies were looked for */
                        if (streq(record_str(k->rec, "role"), "foreign")) {
                                json_object *holders = json_object_get(json_object_object_get(k->rec, "holders"));

                                json_object_put(k->rec);
                                k->rec = json_object_get(l);
                                json_object_object_add(k->rec, "holders", holders);
                        }
                }
                k->held |= !closed;
                k->stored |= stored;
        }
        return 0;
}

/* The expected holders of one answer (aa{sv}, see ListListenerHolders), read straight into s->workers and
 * s->pairs: a worker's "inodes" is an array, which records_read_array() does not read. */
static int take_workers(Scan *s, sd_bus_message *m, unsigned answer) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "a{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) > 0) {
                WorkerRec w = { .answers = answer };
                size_t first_pair = s->n_pairs;

                while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                        const char *key, *contents;
                        uint32_t u;

                        if ((r = sd_bus_message_read_basic(m, 's', &key)) < 0 ||
                            (r = sd_bus_message_peek_type(m, NULL, &contents)) < 0 ||
                            (r = sd_bus_message_enter_container(m, 'v', contents)) < 0)
                                return r;
                        if (streq(key, "pid") && streq(contents, "u")) {
                                r = sd_bus_message_read_basic(m, 'u', &u);
                                w.pid = (pid_t) u;
                        } else if (streq(key, "slot") && streq(contents, "u")) {
                                r = sd_bus_message_read_basic(m, 'u', &u);
                                w.slot = u;
                        } else if (streq(key, "start_time") && streq(contents, "t"))
                                r = sd_bus_message_read_basic(m, 't', &w.start_time);
                        else if (streq(key, "generation") && streq(contents, "t"))
                                r = sd_bus_message_read_basic(m, 't', &w.generation);
                        else if (streq(key, "departing") && streq(contents, "b")) {
                                int b;
                                r = sd_bus_message_read_basic(m, 'b', &b);
                                w.departing = b;
                        } else if (streq(key, "inodes") && streq(contents, "at")) {
                                uint64_t inode;

                                r = sd_bus_message_enter_container(m, 'a', "t");
                                while (r >= 0 && (r = sd_bus_message_read_basic(m, 't', &inode)) > 0) {
                                        r = grow((void **) &s->pairs, &s->cap_pairs, s->n_pairs, sizeof(Pair));
                                        if (r >= 0)
                                                s->pairs[s->n_pairs++] = (Pair) { .inode = inode,
                                                                                   .answers = answer };
                                }
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(m);
                        } else
                                r = sd_bus_message_skip(m, contents);
                        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 ||
                            (r = sd_bus_message_exit_container(m)) < 0)
                                return r;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
                for (size_t i = first_pair; i < s->n_pairs; i++)
                        s->pairs[i].pid = w.pid;
                if (w.pid <= 0)
                        continue;
                r = grow((void **) &s->workers, &s->cap_workers, s->n_workers, sizeof(WorkerRec));
                if (r < 0)
                        return r;
                s->workers[s->n_workers++] = w;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Both answers' workers and pairs into one sorted list each, without duplicates. */
static void merge_workers(Scan *s) {
        size_t n = 0;

        qsort(s->workers, s->n_workers, sizeof(WorkerRec), cmp_worker);
        for (size_t i = 0; i < s->n_workers; i++) {
                WorkerRec *w = &s->workers[i];

                if (n > 0 && cmp_worker(&s->workers[n - 1], w) == 0) {
                        s->workers[n - 1].answers |= w->answers;
                        s->workers[n - 1].departing |= w->departing;
                        continue;
                }
                s->workers[n++] = *w;
        }
        s->n_workers = n;

        n = 0;
        qsort(s->pairs, s->n_pairs, sizeof(Pair), cmp_pair);
        for (size_t i = 0; i < s->n_pairs; i++) {
                if (n > 0 && cmp_pair(&s->pairs[n - 1], &s->pairs[i]) == 0) {
                        s->pairs[n - 1].answers |= s->pairs[i].answers;
                        continue;
                }
                s->pairs[n++] = s->pairs[i];
        }
        s->n_pairs = n;
}

/* ---- the kernel's sockets on the service's ports (sock_diag) ---- */

typedef struct Port {
        int family, protocol;
        uint16_t port;
} Port;

typedef struct Dump {
        Scan *scan;
        const Port *port;
        size_t seen;
        int error;
} Dump;

static int each_diag(const struct inet_diag_msg *m, void *userdata) {
        Dump *d = userdata;
        Scan *s = d->scan;
        Sock *k;
        SocketAddress a = {};
        char addr[SOCKET_ADDRESS_STRING_MAX];
        json_object *rec;

        if (++d->seen > FDS_DIAG_MAX)
                return -E2BIG;
        if (ntohs(m->id.idiag_sport) != d->port->port || m->idiag_inode == 0)
                return 0;
        k = find_sock_any(s, m->idiag_inode);
        if (k) {
                k->listening = true;
                k->listed = true; /* a closed one that is still bound somewhere */
                return 0;
        }
        if (s->n_foreign >= FDS_FOREIGN_MAX) {
                d->error = -ENOBUFS;
                return 0;
        }
        a.type = d->port->protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
        if (d->port->family == AF_INET) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = m->id.idiag_sport;
                memcpy(&a.in.sin_addr, m->id.idiag_src, 4);
                a.size = sizeof(a.in);
        } else {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = m->id.idiag_sport;
                memcpy(&a.in6.sin6_addr, m->id.idiag_src, 16);
                a.size = sizeof(a.in6);
        }
        rec = json_object_new_object();
        if (!rec)
                return -ENOMEM;
        add_int(rec, "inode", (int64_t) m->idiag_inode);
        add_str(rec, "address", socket_address_format(&a, addr, sizeof(addr)));
        add_str(rec, "type", socket_type_name(a.type));
        add_str(rec, "role", "foreign");
        add_int(rec, "generation", 0);
        add_int(rec, "slot", 0);
        add_str(rec, "fdstore_name", "");
        add_int(rec, "uid", (int64_t) m->idiag_uid);
        add_bool(rec, "rpsupd_holds", false);
        /* Listed after rpsupd's, in the kernel's order. */
        if (add_sock(s, m->idiag_inode, rec, SIZE_MAX / 2 + s->n_foreign++) < 0)
                return -ENOMEM;
        s->socks[s->n_socks - 1].listed = true;
        s->socks[s->n_socks - 1].listening = true;
        return 0;
}

static void dump_port(Scan *s, const Port *p) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {};
        Dump d = { .scan = s, .port = p };
        int r;

        msg.req = (struct inet_diag_req_v2) {
                .sdiag_family = (uint8_t) p->family,
                .sdiag_protocol = (uint8_t) p->protocol,
                /* TCP: listeners only (accepted connections share the port); UDP: bound in any state. */
                .idiag_states = p->protocol == IPPROTO_TCP ? 1U << TCP_LISTEN : ~0U,
                .id.idiag_sport = htons(p->port),
        };
        msg.nlh = (struct nlmsghdr) {
                .nlmsg_len = sizeof(msg),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
        };
        r = sock_diag_dump(&msg, sizeof(msg), each_diag, &d);
        if (r == -E2BIG)
                limit_hit(s, "the kernel lists more than %u %s sockets on port %u: the rest were not looked at",
                          FDS_DIAG_MAX, p->protocol == IPPROTO_TCP ? "TCP" : "UDP", p->port);
        else if (r < 0)
                limit_hit(s, "the kernel's sockets on port %u could not be listed (%s): sockets rpsupd does not "
                          "hold are not shown", p->port, strerror(-r));
        if (d.error == -ENOBUFS)
                limit_hit(s, "more than %u sockets on the service's ports are not rpsupd's: the rest are not shown",
                          FDS_FOREIGN_MAX);
}

static void dump_ports(Scan *s, json_object *listeners) {
        Port ports[64];
        size_t n = 0;

        for (size_t i = 0; i < json_object_array_length(listeners); i++) {
                json_object *l = json_object_array_get_idx(listeners, i);
                int type = streq(record_str(l, "type"), "datagram") ? SOCK_DGRAM : SOCK_STREAM;
                SocketAddress a;
                Port p;
                bool dup = false;

                if (socket_address_parse(record_str(l, "address"), type, &a) < 0 || !socket_address_is_inet(&a))
                        continue;
                p = (Port) { .family = a.sa.sa_family, .protocol = type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP,
                             .port = ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port) };
                for (size_t j = 0; j < n && !dup; j++)
                        dup = ports[j].family == p.family && ports[j].protocol == p.protocol && ports[j].port == p.port;
                if (dup)
                        continue;
                if (n == ELEMENTSOF(ports)) {
                        limit_hit(s, "the service listens on more than %zu ports: the kernel's sockets on the "
                                  "others were not listed", ELEMENTSOF(ports));
                        break;
                }
                ports[n++] = p;
        }
        for (size_t i = 0; i < n; i++)
                dump_port(s, &ports[i]);
}

/* ---- the fd store: whoever holds the socket bound at rpsupd's NOTIFY_SOCKET ---- */

static void find_notify_socket(Scan *s) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];
        size_t want;

        if (isempty(s->notify_socket))
                return;
        want = strlen(s->notify_socket);
        f = fopen("/proc/net/unix", "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f) && s->n_notify < ELEMENTSOF(s->notify)) {
                const char *path;
                size_t len;
                uint64_t inode;

                if (parse_unix_line(line, &inode, &path, &len) < 0 || !path)
                        continue;
                if (len == want && memcmp(path, s->notify_socket, want) == 0)
                        s->notify[s->n_notify++] = inode;
        }
}

static bool is_notify(Scan *s, uint64_t inode) {
        for (size_t i = 0; i < s->n_notify; i++)
                if (s->notify[i] == inode)
                        return true;
        return false;
}

/* ---- /proc ---- */

static int add_copy(Scan *s, pid_t pid, int fd, uint64_t inode) {
        Copy *n;

        if (s->n_copies >= FDS_COPIES_MAX)
                return -E2BIG;
        n = reallocarray(s->copies, s->n_copies + 1, sizeof(Copy));
        if (!n)
                return -ENOMEM;
        s->copies = n;
        s->copies[s->n_copies++] = (Copy) { .pid = pid, .fd = fd, .inode = inode };
        return 0;
}

/* The sockets of interest among one process's fds. */
static int scan_fds(Scan *s, int proc_fd, Proc *p) {
        _cleanup_closedir_ DIR *d = NULL;
        char path[32];
        unsigned n = 0;
        int fd;

        snprintf(path, sizeof(path), "%d/fd", (int) p->pid);
        fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && (errno == ENOENT || errno == ESRCH))
                return 1; /* gone meanwhile */
        if (fd < 0 && (errno == EACCES || errno == EPERM)) {
                p->denied = true;
                return 0;
        }
        if (fd >= 0) {
                d = fdopendir(fd);
                if (!d)
                        safe_close(fd);
        }
        if (!d) {
                limit_hit(s, "the fds of pid %d (%s) could not be read (%s): its copies are not shown", (int) p->pid,
                          p->comm, strerror(errno));
                return 0;
        }
        p->inspected = true;
        for (struct dirent *de; (de = readdir(d));) {
                char target[64];
                uint64_t inode;
                ssize_t k;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                if (++n > FDS_PER_PROCESS_MAX) {
                        limit_hit(s, "pid %d (%s) has more than %u fds: the rest were not looked at", (int) p->pid,
                                  p->comm, FDS_PER_PROCESS_MAX);
                        break;
                }
                k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (k < 0)
                        continue;
                target[k] = 0;
                if (parse_socket_link(target, &inode) < 0)
                        continue;
                if (is_notify(s, inode))
                        p->fdstore = true;
                if (!find_sock(s, inode))
                        continue;
                r = add_copy(s, p->pid, atoi(de->d_name), inode);
                if (r == -E2BIG) {
                        limit_hit(s, "more than %u copies of the service's sockets: the rest are not shown",
                                  FDS_COPIES_MAX);
                        s->n_procs++;
                        return r;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int scan_proc(Scan *s) {
        _cleanup_closedir_ DIR *d = opendir("/proc");
        int r;

        if (!d)
                return -errno;
        s->procs = calloc(FDS_PROCESSES_MAX, sizeof(Proc));
        if (!s->procs)
                return -ENOMEM;
        for (struct dirent *de; (de = readdir(d));) {
                char path[32], stat[1024];
                const char *state;
                Proc *p;
                char *end;
                long pid;

                errno = 0;
                pid = strtol(de->d_name, &end, 10);
                if (errno != 0 || *end || pid <= 0 || pid > INT32_MAX)
                        continue;
                if (s->n_procs >= FDS_PROCESSES_MAX) {
                        limit_hit(s, "more than %u processes: the rest were not looked at", FDS_PROCESSES_MAX);
                        break;
                }
                p = &s->procs[s->n_procs];
                *p = (Proc) { .pid = (pid_t) pid };
                snprintf(path, sizeof(path), "%ld/stat", pid);
                if (read_small_file(dirfd(d), path, stat, sizeof(stat)) < 0 ||
                    parse_proc_stat(stat, &p->ppid, p->comm, sizeof(p->comm)) < 0)
                        continue; /* gone meanwhile */
                state = strrchr(stat, ')');
                if (state && (strncmp(state, ") Z ", 4) == 0 || strncmp(state, ") X ", 4) == 0))
                        continue; /* exited (its fds are closed), not reaped yet */
                (void) parse_proc_stat_start_time(stat, &p->start_time);
                r = scan_fds(s, dirfd(d), p);
                if (r == -E2BIG)
                        break;
                if (r < 0)
                        return r;
                if (r == 0)
                        s->n_procs++; /* else gone meanwhile: not counted */
        }
        qsort(s->procs, s->n_procs, sizeof(Proc), cmp_proc);
        return 0;
}

/* ---- who each holder is ---- */

static bool is_fdstore(Scan *s, Proc *p) {
        /* systemd's own notify socket: PID 1 holds the fd store even where its fds cannot be read. */
        return (p && p->fdstore) ||
               (p && p->pid == 1 && s->notify_socket && strncmp(s->notify_socket, "/run/systemd/", 13) == 0);
}

/* The worker `pid` is, or descends from (following parents up), or NULL. Without one, *ret_child is the
 * child of rpsupd that pid is or descends from (a worker rpsupd does not list), or 0. */
/* The cgroup2 path of pid if it is a worker cgroup of rpsupd's ("/.../gen-G/worker-I.N"): where rpsupd runs
 * each worker process, and what it starts. */
static bool worker_cgroup(pid_t pid, char *buf, size_t size) {
        char path[64], text[4096], *line, *base, *gen;
        uint64_t g, n;
        unsigned i;
        char tail;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        if (read_small_file(AT_FDCWD, path, text, sizeof(text)) < 0)
                return false;
        for (line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line += 3;
                line[strcspn(line, "\n")] = 0;
                base = strrchr(line, '/');
                if (!base || base == line)
                        return false;
                *base = 0;
                gen = strrchr(line, '/');
                *base = '/';
                if (!gen || sscanf(gen, "/gen-%" SCNu64 "/worker-%u.%" SCNu64 "%c", &g, &i, &n, &tail) != 3 ||
                    strlen(line) >= size)
                        return false;
                strcpy(buf, line);
                return true;
        }
        return false;
}

/* A process in the cgroup of a listed worker (a daemon it double-forked, which no longer descends from
 * it): the worker whose cgroup it is. */
static WorkerRec *worker_of_cgroup(Scan *s, pid_t pid) {
        char mine[1024], theirs[1024];

        if (!worker_cgroup(pid, mine, sizeof(mine)))
                return NULL;
        for (size_t i = 0; i < s->n_workers; i++)
                if (s->workers[i].pid != pid && worker_cgroup(s->workers[i].pid, theirs, sizeof(theirs)) &&
                    streq(mine, theirs))
                        return &s->workers[i];
        return NULL;
}

static WorkerRec *worker_of(Scan *s, pid_t pid, bool *ret_self, pid_t *ret_child) {
        WorkerRec *w;
        pid_t p = pid;

        *ret_child = 0;
        for (unsigned i = 0; i < FDS_ANCESTRY_MAX && p > 1; i++) {
                Proc *proc = find_proc(s, p);

                if (is_rpsupd(s, proc))
                        break;
                w = find_worker(s, p, proc);
                if (w) {
                        *ret_self = p == pid;
                        return w;
                }
                if (!proc)
                        break;
                if (proc->ppid == s->rpsupd && is_rpsupd(s, find_proc(s, proc->ppid))) {
                        *ret_self = p == pid;
                        *ret_child = p;
                        break;
                }
                p = proc->ppid;
        }
        if (*ret_child == 0 && (w = worker_of_cgroup(s, pid))) {
                *ret_self = false;
                return w;
        }
        return NULL;
}

/* A child of rpsupd that is still rpsupd's image: forked, not executed yet. */
static bool forked_unexec(Scan *s, const Proc *p) {
        Proc *d = find_proc(s, s->rpsupd);

        return p && p->ppid == s->rpsupd && is_rpsupd(s, d) && streq(p->comm, d->comm);
}

static const char *outsider_note(const char *role, bool listening, bool stream) {
        bool retired = streq(role, "retired") || streq(role, "closed");

        if (streq(role, "foreign"))
                return !listening ? "not rpsupd's socket, on the service's port" :
                       stream ? "not rpsupd's socket, listening on the service's port: if it is in a reuseport group "
                                "of the service, it gets a share of new connections" :
                                "not rpsupd's socket, bound to the service's port: if it is in a reuseport group of "
                                "the service, it gets a share of its datagrams";
        if (retired && listening)
                return stream ? "outside the service, it keeps a listener rpsupd retired open: it can still accept "
                                "what is queued on it, which no worker of the service will see" :
                                "outside the service, it keeps a socket rpsupd retired open and bound to the "
                                "service's port: datagrams that the kernel spreads by hash over the reuseport group "
                                "(no steering program, or the kernel policy) can still reach it, and no worker "
                                "sees them";
        if (retired)
                return "outside the service, it keeps a listener rpsupd retired open; it no longer listens, so it "
                       "receives nothing, but it stays open until this process closes it";
        return stream ? "outside the service, it holds a live listener: it can accept connections meant for the "
                        "service's workers" :
                        "outside the service, it holds a live socket: it can receive datagrams meant for the "
                        "service's workers";
}

static json_object *holder_new(Scan *s, Sock *k, pid_t pid, int *ret_unexpected) {
        const char *role = record_str(k->rec, "role");
        bool stream = streq(record_str(k->rec, "type"), "stream");
        json_object *h = json_object_new_object();
        Proc *p = find_proc(s, pid);
        WorkerRec *w;
        pid_t child;
        bool self = false, expected;
        const char *kind, *note = "";

        if (!h)
                return NULL;
        add_int(h, "pid", pid);
        add_str(h, "command", p ? p->comm : "");
        if (is_rpsupd(s, p)) {
                kind = "rpsupd";
                expected = k->held;
                if (!expected)
                        note = "rpsupd holds a socket it does not list as its own";
        } else if (forked_unexec(s, p)) {
                /* Between fork and exec, a worker holds copies of all of rpsupd's fds, until it closes them. */
                kind = "starting";
                add_int(h, "worker_pid", pid);
                add_bool(h, "descendant", false);
                expected = true;
                note = "a worker rpsupd forked that does not run its command yet: it holds what rpsupd holds until "
                       "then";
        } else if ((w = worker_of(s, pid, &self, &child))) {
                Pair *e = find_pair(s, w->pid, k->inode);

                kind = self ? "worker" : "worker-descendant";
                add_int(h, "worker_pid", w->pid);
                add_int(h, "generation", (int64_t) w->generation);
                add_int(h, "slot", w->slot);
                expected = e || w->departing;
                if (e)
                        e->found = true;
                if (w->departing)
                        note = "a worker replaced while it hung, on its way out";
                else if (!e)
                        note = "a process of the service, holding a socket rpsupd did not hand to its worker";
        } else if (child) {
                /* A worker that neither answer lists: started between them, or left out of a reply. */
                kind = s->truncated ? "worker-unlisted" : "starting";
                add_int(h, "worker_pid", child);
                add_bool(h, "descendant", !self);
                expected = true;
                note = s->truncated ? "a process rpsupd started, left out of its reply (its bound): which sockets "
                                      "it should hold is not known" :
                                      "a process rpsupd started while the scan ran";
        } else if (streq(role, "socket-unit") && (pid == 1 || is_fdstore(s, p))) {
                kind = "socket-unit";
                expected = true;
        } else if (is_fdstore(s, p)) {
                kind = "fdstore";
                expected = k->stored;
                if (!expected)
                        note = "the fd store holds a socket rpsupd did not store (or removed from it)";
        } else {
                kind = "other";
                expected = false;
                note = outsider_note(role, k->listening, stream);
        }
        add_str(h, "holder", kind);
        add_bool(h, "expected", expected);
        add_str(h, "note", note);
        add_int(h, "fd_count", 0);
        json_object_object_add(h, "fds", json_object_new_array());
        if (!expected)
                (*ret_unexpected)++;
        return h;
}

/* O_CLOEXEC of the copy: without it, whatever the holder executes inherits the socket. "cloexec" is that
 * of the holder's first fd whose fdinfo could be read, absent when none could; "cloexec_fds" counts the fds
 * with it. */
static void add_cloexec(json_object *h, pid_t pid, int fd) {
        char path[64], text[512];
        unsigned flags;

        snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int) pid, fd);
        if (read_small_file(AT_FDCWD, path, text, sizeof(text)) < 0 || parse_fdinfo_flags(text, &flags) < 0)
                return;
        if (!json_object_object_get_ex(h, "cloexec", NULL))
                add_bool(h, "cloexec", (flags & O_CLOEXEC) != 0);
        add_int(h, "cloexec_fds", record_int(h, "cloexec_fds") + ((flags & O_CLOEXEC) != 0));
}

/* Each copy into its socket's holders, one holder per process with its fds (a process's copies were
 * found together: its holder of a socket is the last one added to that socket). */
static int classify(Scan *s, int *ret_unexpected) {
        for (size_t i = 0; i < s->n_copies; i++) {
                Copy *c = &s->copies[i];
                Sock *k = find_sock(s, c->inode);
                json_object *h, *fds;

                if (!k)
                        continue;
                k->listed = true;
                if (!k->last_holder || k->last_pid != c->pid) {
                        h = holder_new(s, k, c->pid, ret_unexpected);
                        if (!h)
                                return -ENOMEM;
                        json_object_array_add(json_object_object_get(k->rec, "holders"), h);
                        k->last_holder = h;
                        k->last_pid = c->pid;
                }
                h = k->last_holder;
                fds = json_object_object_get(h, "fds");
                json_object_array_add(fds, json_object_new_int(c->fd));
                add_int(h, "fd_count", (int64_t) json_object_array_length(fds));
                add_cloexec(h, c->pid, c->fd);
        }
        return 0;
}

/* Workers that should hold a socket (by both answers) and, read, do not (they closed it). */
static json_object *missing(Scan *s) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < s->n_pairs; i++) {
                Pair *e = &s->pairs[i];
                Proc *p = find_proc(s, e->pid);
                WorkerRec *w = p ? find_worker(s, e->pid, p) : NULL;
                json_object *o;

                if (e->found || e->answers != 3 || !w || w->answers != 3 || w->departing || !p->inspected)
                        continue;
                o = json_object_new_object();
                add_int(o, "pid", e->pid);
                add_int(o, "inode", (int64_t) e->inode);
                add_int(o, "generation", (int64_t) w->generation);
                add_int(o, "slot", w->slot);
                json_object_array_add(a, o);
        }
        return a;
}

/* Processes of the service (rpsupd, workers, the fd store's PID 1) whose fds this user may not read: their
 * copies are unknown. Everyone else who may not be read is only counted. */
static json_object *not_inspected(Scan *s, size_t *ret_total) {
        json_object *a = json_object_new_array();

        *ret_total = 0;
        for (size_t i = 0; a && i < s->n_procs; i++) {
                Proc *p = &s->procs[i];
                const char *what = NULL;
                json_object *o;

                if (!p->denied)
                        continue;
                (*ret_total)++;
                if (is_rpsupd(s, p))
                        what = "rpsupd";
                else if (find_worker(s, p->pid, p))
                        what = "worker";
                else if (p->pid == 1)
                        what = "pid 1";
                if (!what)
                        continue;
                o = json_object_new_object();
                add_int(o, "pid", p->pid);
                add_str(o, "command", p->comm);
                add_str(o, "is", what);
                json_object_array_add(a, o);
        }
        return a;
}

/* One ListListenerHolders answer: the supervisor record, the listeners; the workers go into s. */
static int ask(sd_bus *bus, sd_bus_error *error, Scan *s, unsigned answer, json_object **ret_sup,
               json_object **ret_listeners) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "ListListenerHolders", error, &reply,
                               NULL);
        if (r < 0)
                return r;
        if ((r = records_read_dict(reply, ret_sup)) < 0 || (r = records_read_array(reply, ret_listeners)) < 0 ||
            (r = take_workers(s, reply, answer)) < 0)
                return r;
        if (record_int(*ret_sup, "expected_omitted") > 0)
                s->truncated = true;
        return 0;
}

static int cmp_order(const void *a, const void *b) {
        const Sock *x = *(Sock *const *) a, *y = *(Sock *const *) b;
        return x->order < y->order ? -1 : x->order > y->order;
}

int fds_collect(sd_bus *bus, sd_bus_error *error, json_object **ret) {
        _cleanup_json_ json_object *sup = NULL, *listeners = NULL, *sup2 = NULL, *listeners2 = NULL,
                                   *report = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error2 = SD_BUS_ERROR_NULL;
        _cleanup_free_ Sock **order = NULL;
        Scan s = { .limits = json_object_new_array() };
        json_object *sockets, *scan;
        size_t n_not, n_order = 0;
        int unexpected = 0, copies = 0, r;

        /* rpsupd says what it holds and who should hold what; the kernel and /proc are read; then rpsupd is
         * asked again: what it made or started meanwhile is known to the second answer, and only what
         * neither answer knows is unexpected. */
        r = ask(bus, error, &s, 1, &sup, &listeners);
        if (r < 0)
                goto finish;
        s.rpsupd = (pid_t) record_int(sup, "pid");
        s.rpsupd_start_time = (uint64_t) record_int(sup, "start_time");
        s.notify_socket = record_str(sup, "notify_socket");
        if (record_int(sup, "listeners_omitted") > 0)
                limit_hit(&s, "rpsupd listed %" PRIi64 " of its %" PRIi64 " listeners (its bound)",
                          record_int(sup, "listeners") - record_int(sup, "listeners_omitted"),
                          record_int(sup, "listeners"));
        if (record_int(sup, "closed_forgotten") > 0)
                limit_hit(&s, "rpsupd remembers the last %" PRIi64 " listeners it closed and has forgotten %"
                          PRIi64 " before them: copies of those still held elsewhere show as not rpsupd's sockets "
                          "while they listen, else not at all", record_int(sup, "closed_max"),
                          record_int(sup, "closed_forgotten"));
        if (strstr(s.notify_socket, "\xef\xbf\xbd"))
                limit_hit(&s, "rpsupd's NOTIFY_SOCKET is not valid UTF-8 (sent with U+FFFD in its place): the fd "
                          "store cannot be found by it, and its copies show as another process's");
        if ((r = take_listeners(&s, listeners, true)) < 0)
                goto finish;
        sort_socks(&s);
        dump_ports(&s, listeners);
        sort_socks(&s);
        find_notify_socket(&s);
        if ((r = scan_proc(&s)) < 0)
                goto finish;

        r = ask(bus, &error2, &s, 2, &sup2, &listeners2);
        if (r < 0)
                limit_hit(&s, "rpsupd did not answer a second time (%s): what it made or started during the scan "
                          "may show as unexpected", error2.message ?: strerror(-r));
        else if (record_int(sup2, "pid") != s.rpsupd ||
                 (uint64_t) record_int(sup2, "start_time") != s.rpsupd_start_time)
                limit_hit(&s, "rpsupd was restarted during the scan: what the new one holds may show as unexpected");
        else if ((r = take_listeners(&s, listeners2, false)) < 0)
                goto finish;
        if (s.truncated)
                limit_hit(&s, "rpsupd listed only part of its workers (its bound of %" PRIi64 "): a child of "
                          "rpsupd it left out shows as \"worker (not listed)\", whatever it holds",
                          record_int(sup, "workers_max"));
        merge_workers(&s);
        if ((r = classify(&s, &unexpected)) < 0)
                goto finish;

        report = json_object_new_object();
        add_str(report, "service", record_str(sup, "service"));
        add_str(report, "strategy", record_str(sup, "strategy"));
        add_int(report, "rpsupd_pid", s.rpsupd);
        add_str(report, "notify_socket", s.notify_socket);
        add_int(report, "live_generation", record_int(sup2 ?: sup, "live_generation"));
        /* In rpsupd's order (held, then closed newest first), then the kernel's others. */
        order = calloc(s.n_socks ?: 1, sizeof(Sock *));
        if (!order) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < s.n_socks; i++)
                if (s.socks[i].listed && s.socks[i].rec)
                        order[n_order++] = &s.socks[i];
        qsort(order, n_order, sizeof(Sock *), cmp_order);
        sockets = json_object_new_array();
        for (size_t i = 0; i < n_order; i++) {
                Sock *k = order[i];

                add_bool(k->rec, "listening", k->listening);
                add_bool(k->rec, "rpsupd_holds", k->held);
                copies += (int) json_object_array_length(json_object_object_get(k->rec, "holders"));
                json_object_array_add(sockets, TAKE_PTR(k->rec));
        }
        json_object_object_add(report, "sockets", sockets);
        add_int(report, "holders", copies);
        add_int(report, "unexpected", unexpected);
        json_object_object_add(report, "missing", missing(&s));
        scan = json_object_new_object();
        add_int(scan, "processes", (int64_t) s.n_procs);
        json_object_object_add(scan, "not_inspected_service", not_inspected(&s, &n_not));
        add_int(scan, "not_inspected", (int64_t) n_not);
        add_bool(scan, "complete", n_not == 0 && json_object_array_length(s.limits) == 0);
        json_object_object_add(scan, "limits", TAKE_PTR(s.limits));
        json_object_object_add(report, "scan", scan);
        *ret = TAKE_PTR(report);
        r = 0;
finish:
        scan_done(&s);
        return r;
}

/* ---- for people ---- */

static const char *role_text(json_object *k, char *buf, size_t l) {
        const char *role = record_str(k, "role");

        if (streq(role, "slot") || streq(role, "retiring"))
                snprintf(buf, l, "gen %" PRIi64 " worker %" PRIi64 "%s", record_int(k, "generation"),
                         record_int(k, "slot"), streq(role, "retiring") ? " (retiring)" : "");
        else if (streq(role, "shared"))
                snprintf(buf, l, "shared");
        else if (streq(role, "retired"))
                snprintf(buf, l, "retired");
        else if (streq(role, "closed"))
                snprintf(buf, l, "closed by rpsupd");
        else if (streq(role, "socket-unit"))
                snprintf(buf, l, "socket unit");
        else if (streq(role, "foreign"))
                snprintf(buf, l, "not rpsupd's (uid %" PRIi64 ")", record_int(k, "uid"));
        else
                snprintf(buf, l, "%s", role);
        return buf;
}

static const char *holder_text(json_object *h, char *buf, size_t l) {
        const char *kind = record_str(h, "holder");

        if (streq(kind, "worker"))
                snprintf(buf, l, "worker %" PRIi64 " (gen %" PRIi64 ")", record_int(h, "slot"),
                         record_int(h, "generation"));
        else if (streq(kind, "worker-descendant"))
                snprintf(buf, l, "child of worker %" PRIi64, record_int(h, "worker_pid"));
        else if (streq(kind, "starting") || streq(kind, "worker-unlisted")) {
                if (record_bool(h, "descendant"))
                        snprintf(buf, l, "child of %s %" PRIi64, streq(kind, "starting") ? "starting worker" :
                                 "worker (not listed)", record_int(h, "worker_pid"));
                else
                        snprintf(buf, l, "%s", streq(kind, "starting") ? "worker (starting)" : "worker (not listed)");
        } else if (streq(kind, "fdstore"))
                snprintf(buf, l, "fd store");
        else if (streq(kind, "socket-unit"))
                snprintf(buf, l, "socket unit (systemd)");
        else if (streq(kind, "other"))
                snprintf(buf, l, "UNEXPECTED");
        else
                snprintf(buf, l, "%s", kind);
        if (!record_bool(h, "expected") && !streq(kind, "other"))
                strncat(buf, " (unexpected)", l - strlen(buf) - 1);
        return buf;
}

static size_t holder_rank(json_object *h) {
        const char *kind = record_str(h, "holder");

        if (streq(kind, "rpsupd") || streq(kind, "fdstore") || streq(kind, "socket-unit"))
                return 0;
        return strncmp(kind, "worker", 6) == 0 || streq(kind, "starting") ? 1 : 2;
}

void fds_print(json_object *report) {
        json_object *sockets = json_object_object_get(report, "sockets");
        json_object *scan = json_object_object_get(report, "scan");
        json_object *limits = json_object_object_get(scan, "limits");
        json_object *service_procs = json_object_object_get(scan, "not_inspected_service");
        json_object *miss = json_object_object_get(report, "missing");
        _cleanup_(table_freep) Table *t = NULL;
        unsigned notes = 0;

        printf("%s: %zu socket%s, %" PRIi64 " holder%s, %" PRIi64 " unexpected (rpsupd pid %" PRIi64 ", %s)\n\n",
               record_str(report, "service"), json_object_array_length(sockets),
               json_object_array_length(sockets) == 1 ? "" : "s", record_int(report, "holders"),
               record_int(report, "holders") == 1 ? "" : "s", record_int(report, "unexpected"),
               record_int(report, "rpsupd_pid"), record_str(report, "strategy"));
        t = table_new(8, "ADDRESS", "TYPE", "INODE", "SOCKET", "HOLDER", "PID", "COMMAND", "FDS");
        for (size_t i = 0; t && i < json_object_array_length(sockets); i++) {
                json_object *k = json_object_array_get_idx(sockets, i);
                json_object *holders = json_object_object_get(k, "holders");
                char inode[32], role[96];

                snprintf(inode, sizeof(inode), "%" PRIi64, record_int(k, "inode"));
                role_text(k, role, sizeof(role));
                if (json_object_array_length(holders) == 0)
                        table_add(t, record_str(k, "address"), record_str(k, "type"), inode, role, "(none seen)",
                                  NULL, NULL, NULL);
                /* rpsupd, the fd store and systemd first, then the workers, then everybody else. */
                for (size_t o = 0; o < 3 * json_object_array_length(holders); o++) {
                        size_t j = o % json_object_array_length(holders);
                        json_object *h = json_object_array_get_idx(holders, j);
                        json_object *fds = json_object_object_get(h, "fds");
                        char who[96], pid[16], list[96] = "";

                        if (holder_rank(h) != o / json_object_array_length(holders))
                                continue;

                        for (size_t f = 0; f < json_object_array_length(fds); f++) {
                                size_t len = strlen(list);
                                if (len + 16 >= sizeof(list)) {
                                        strncat(list, ",...", sizeof(list) - len - 1);
                                        break;
                                }
                                snprintf(list + len, sizeof(list) - len, "%s%d", f ? "," : "",
                                         json_object_get_int(json_object_array_get_idx(fds, f)));
                        }
                        snprintf(pid, sizeof(pid), "%" PRIi64, record_int(h, "pid"));
                        table_add(t, record_str(k, "address"), record_str(k, "type"), inode, role,
                                  holder_text(h, who, sizeof(who)), pid, record_str(h, "command"), list);
                }
        }
        if (t)
                table_print(t);
        for (size_t i = 0; i < json_object_array_length(sockets); i++) {
                json_object *k = json_object_array_get_idx(sockets, i);
                json_object *holders = json_object_object_get(k, "holders");

                for (size_t j = 0; j < json_object_array_length(holders); j++) {
                        json_object *h = json_object_array_get_idx(holders, j);

                        if (record_bool(h, "expected"))
                                continue;
                        if (notes++ == 0)
                                printf("\n");
                        printf("Unexpected: pid %" PRIi64 " (%s) holds %s %s (inode %" PRIi64 "): %s.\n",
                               record_int(h, "pid"), record_str(h, "command"), record_str(k, "address"),
                               record_str(k, "type"), record_int(k, "inode"), record_str(h, "note"));
                }
        }
        for (size_t i = 0; i < json_object_array_length(miss); i++) {
                json_object *m = json_object_array_get_idx(miss, i);
                printf("Missing: worker %" PRIi64 " of generation %" PRIi64 " (pid %" PRIi64 ") no longer holds "
                       "inode %" PRIi64 ", which rpsupd handed to it.\n", record_int(m, "slot"),
                       record_int(m, "generation"), record_int(m, "pid"), record_int(m, "inode"));
        }
        if (record_int(scan, "not_inspected") > 0) {
                printf("\nNot inspected: %" PRIi64 " of %" PRIi64 " processes (their fds are not readable as this "
                       "user; run as root or as the service's user to see all)", record_int(scan, "not_inspected"),
                       record_int(scan, "processes"));
                for (size_t i = 0; i < json_object_array_length(service_procs); i++) {
                        json_object *p = json_object_array_get_idx(service_procs, i);
                        printf("%s%s pid %" PRIi64, i == 0 ? ", among them: " : ", ", record_str(p, "is"),
                               record_int(p, "pid"));
                }
                printf(".\n");
        }
        for (size_t i = 0; i < json_object_array_length(limits); i++)
                printf("Bound reached: %s.\n", json_object_get_string(json_object_array_get_idx(limits, i)));
}
