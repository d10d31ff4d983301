/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fd-util.h"
#include "listener.h"
#include "log.h"
#include "parse-util.h"
#include "rpsup-limits.h"
#include "worker-fdstore.h"
#include "worker-notify.h"

/* kcmp(2)'s KCMP_FILE, without <linux/kcmp.h>, which not every libc ships. */
#define KCMP_FILE_TYPE 0

typedef struct SlotStoredFd {
        WorkerFdStore *store;
        int fd;
        unsigned index;         /* the slot */
        uint64_t seq;           /* unique in the service (and across rpsupd restarts): the order of storing */
        bool poll;              /* dropped when it hangs up */
        dev_t dev;
        ino_t ino;
        bool socket;
        char *name;             /* FDNAME= */
        char *store_name;       /* its name in systemd's fd store (and in rpsupd's copies): always set, and
                                 * removed there when the fd goes, whatever systemd answered when it came */
        sd_event_source *watch; /* the hang-up watch; NULL: none (FDPOLL=0, or not pollable) */
} SlotStoredFd;

struct WorkerFdStore {
        sd_event *event;
        SlotStoredFd **fds;         /* every slot's, in the order they were stored */
        size_t n, allocated;
        uint64_t next_seq;
        bool armed;             /* prune: the generations are built */
        int fd_ceiling;         /* RLIMIT_NOFILE less FD_RESERVE: rpsupd's own work needs those */
        const ListenerSet *listeners; /* rpsupd's: a worker may not store one */
        /* Their dev/inode, read once per turn of the loop at most (worker_fdstore_listeners_changed()), not
         * per fd a worker sends. */
        struct { dev_t dev; ino_t ino; } *listener_ids;
        size_t n_listener_ids, listener_ids_of; /* ... of a set of this many */
        bool listener_ids_valid;
        /* Each slot's fds, and the bytes of their FDNAMEs with a separator each (its next worker's
         * LISTEN_FDNAMES); the bytes of all store names with a separator each (rpsupd's LISTEN_FDNAMES). */
        size_t count[WORKERS_MAX];
        size_t name_bytes[WORKERS_MAX];
        size_t store_name_bytes;
        /* FileDescriptorStoreMax=0: the worker (by pid) of each slot that was told once. */
        pid_t refused_told[WORKERS_MAX];
        /* Each slot's fds below this number went to the worker of the slot started last. */
        uint64_t handed_upto[WORKERS_MAX];
};

/* ---- names ---- */

int worker_fdstore_name(unsigned index, uint64_t seq, bool poll, const char *name, char **ret) {
        char *s;

        if (!notify_fdname_is_valid(name))
                return -EINVAL;
        if (asprintf(&s, WORKER_FDSTORE_PREFIX "%u.%" PRIu64 ".%c.%s", index, seq, poll ? 'p' : 'n', name) < 0)
                return -ENOMEM;
        /* systemd takes no longer name. */
        if (strlen(s) > NOTIFY_FDNAME_MAX) {
                free(s);
                return -ENAMETOOLONG;
        }
        *ret = s;
        return 0;
}

/* The decimal number in s up to `end` (exclusive). */
static int parse_field(const char *s, const char *end, uint64_t *ret) {
        char buf[24];
        size_t n = (size_t) (end - s);

        if (n == 0 || n >= sizeof(buf) || (n > 1 && s[0] == '0'))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = 0;
        return parse_uint64(buf, ret);
}

int worker_fdstore_name_parse(const char *store_name, unsigned *ret_index, uint64_t *ret_seq, bool *ret_poll,
                              const char **ret_name) {
        const char *p, *dot;
        uint64_t index, seq;

        if (!store_name || strncmp(store_name, WORKER_FDSTORE_PREFIX, strlen(WORKER_FDSTORE_PREFIX)) != 0)
                return -EINVAL;
        p = store_name + strlen(WORKER_FDSTORE_PREFIX);
        dot = strchr(p, '.');
        if (!dot || parse_field(p, dot, &index) < 0 || index >= WORKERS_MAX)
                return -EINVAL;
        p = dot + 1;
        dot = strchr(p, '.');
        if (!dot || parse_field(p, dot, &seq) < 0)
                return -EINVAL;
        p = dot + 1;
        if ((p[0] != 'p' && p[0] != 'n') || p[1] != '.' || !notify_fdname_is_valid(p + 2))
                return -EINVAL;
        *ret_index = (unsigned) index;
        *ret_seq = seq;
        *ret_poll = p[0] == 'p';
        *ret_name = p + 2;
        return 0;
}

/* ---- the store ---- */

int worker_fdstore_new(sd_event *e, WorkerFdStore **ret) {
        WorkerFdStore *s = calloc(1, sizeof(WorkerFdStore));
        struct rlimit rl;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->fd_ceiling = INT_MAX;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX)
                s->fd_ceiling = rl.rlim_cur > FD_RESERVE ? (int) (rl.rlim_cur - FD_RESERVE) : 0;
        *ret = s;
        return 0;
}

static SlotStoredFd *stored_fd_free(SlotStoredFd *f) {
        if (!f)
                return NULL;
        sd_event_source_disable_unref(f->watch);
        safe_close(f->fd);
        free(f->name);
        free(f->store_name);
        free(f);
        return NULL;
}

WorkerFdStore *worker_fdstore_free(WorkerFdStore *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                stored_fd_free(s->fds[i]);
        free(s->fds);
        free(s->listener_ids);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

static void account(WorkerFdStore *s, const SlotStoredFd *f, bool add) {
        size_t name = strlen(f->name) + 1, store_name = strlen(f->store_name) + 1;

        if (add) {
                s->count[f->index]++;
                s->name_bytes[f->index] += name;
                s->store_name_bytes += store_name;
        } else {
                s->count[f->index]--;
                s->name_bytes[f->index] -= name;
                s->store_name_bytes -= store_name;
        }
}

/* Forgets f, in systemd's store and rpsupd's copies too. */
static void forget(WorkerFdStore *s, SlotStoredFd *f) {
        account(s, f, false);
        (void) fdstore_remove(f->store_name);
        stored_fd_free(f);
}

/* Drops the i-th fd. */
static void drop_at(WorkerFdStore *s, size_t i) {
        SlotStoredFd *f = s->fds[i];

        memmove(s->fds + i, s->fds + i + 1, (s->n - i - 1) * sizeof(SlotStoredFd *));
        s->n--;
        forget(s, f);
}

/* Drops the slot's fds (all of them if name is NULL, else those so named) in one pass; returns how many. */
static size_t drop_slot(WorkerFdStore *s, unsigned index, const char *name) {
        size_t j = 0, n = 0;

        for (size_t i = 0; i < s->n; i++) {
                SlotStoredFd *f = s->fds[i];

                if (f->index == index && (!name || streq(f->name, name))) {
                        forget(s, f);
                        n++;
                } else
                        s->fds[j++] = f;
        }
        s->n = j;
        return n;
}

static void drop(WorkerFdStore *s, SlotStoredFd *f) {
        for (size_t i = 0; i < s->n; i++)
                if (s->fds[i] == f) {
                        drop_at(s, i);
                        return;
                }
}

static int on_hangup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        SlotStoredFd *f = userdata;

        log_debug("The fd \"%s\" stored by slot %u hung up: dropped (its next worker does not get it).", f->name,
                  f->index);
        drop(f->store, f);
        return 0;
}

size_t worker_fdstore_count(const WorkerFdStore *s, unsigned index) {
        return s && index < WORKERS_MAX ? s->count[index] : 0;
}

void worker_fdstore_set_listeners(WorkerFdStore *s, const ListenerSet *listeners) {
        s->listeners = listeners;
}

size_t worker_fdstore_total(const WorkerFdStore *s) {
        return s ? s->n : 0;
}

/* Whether the slot holds this file already (systemd too keeps one copy of a file). */
static bool slot_has(const WorkerFdStore *s, unsigned index, int fd, const struct stat *st) {
        pid_t pid = getpid();

        for (size_t i = 0; i < s->n; i++) {
                const SlotStoredFd *f = s->fds[i];

                if (f->index != index || f->dev != st->st_dev || f->ino != st->st_ino)
                        continue;
                /* A socket's inode is its one file; else the same open file (kcmp), if the kernel says. */
                if (S_ISSOCK(st->st_mode) || syscall(SYS_kcmp, pid, pid, KCMP_FILE_TYPE, f->fd, fd) == 0)
                        return true;
        }
        return false;
}

static int append(WorkerFdStore *s, SlotStoredFd *f) {
        if (s->n == s->allocated) {
                size_t a = MAX(s->allocated * 2, (size_t) 16);
                SlotStoredFd **p = reallocarray(s->fds, a, sizeof(SlotStoredFd *));
                if (!p)
                        return -ENOMEM;
                s->fds = p;
                s->allocated = a;
        }
        s->fds[s->n++] = f;
        return 0;
}

/* Keeps fd and store_name (both owned, both released on failure) for the slot, and watches it; puts it in
 * systemd's store if `push` (else it is there already). Whatever systemd answers, the name is kept, and
 * removed there (and from rpsupd's copies) when the fd goes. */
static int keep(WorkerFdStore *s, int fd, unsigned index, uint64_t seq, bool poll, const char *name,
                const struct stat *st, char *store_name, bool push) {
        SlotStoredFd *f;
        int r;

        f = calloc(1, sizeof(SlotStoredFd));
        if (!f) {
                safe_close(fd);
                free(store_name);
                return -ENOMEM;
        }
        *f = (SlotStoredFd) { .store = s, .fd = fd, .index = index, .seq = seq, .poll = poll, .dev = st->st_dev,
                          .ino = st->st_ino, .socket = S_ISSOCK(st->st_mode), .store_name = store_name };
        f->name = strdup(name);
        if (!f->name) {
                stored_fd_free(f);
                return -ENOMEM;
        }
        if (poll) {
                /* No events asked for: hang-ups and errors are what epoll always reports. */
                r = sd_event_add_io(s->event, &f->watch, fd, 0, on_hangup, f);
                if (r == -EPERM)
                        f->watch = NULL; /* a regular file or a directory: it cannot hang up */
                else if (r < 0) {
                        stored_fd_free(f);
                        return r;
                }
        }
        r = append(s, f);
        if (r < 0) {
                stored_fd_free(f);
                return r;
        }
        account(s, f, true);
        if (push) {
                r = fdstore_add(fd, f->store_name);
                if (r < 0)
                        log_ratelimit(LOG_WARNING, "Failed to put the fd \"%s\" of slot %u in systemd's fd store, it "
                                      "does not survive an rpsupd restart: %s", name, index, strerror(-r));
        }
        return 0;
}

/* A listening socket (SO_ACCEPTCONN), or one of rpsupd's listeners (a datagram one): kept for a next worker,
 * a retired generation's listener would stay open, in its reuseport group, queueing connections. */
static bool is_listener(WorkerFdStore *s, int fd, const struct stat *st) {
        struct sockaddr_storage peer;
        socklen_t l = sizeof(peer);
        int v = 0;

        if (!S_ISSOCK(st->st_mode))
                return false;
        l = sizeof(v);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) >= 0 && v)
                return true;
        /* rpsupd's listeners have no peer: a connection is none of them, without a look at each. */
        l = sizeof(peer);
        if (!s->listeners || getpeername(fd, (struct sockaddr *) &peer, &l) >= 0)
                return false;
        if (!s->listener_ids_valid || s->listener_ids_of != s->listeners->n) {
                size_t n = 0;
                for (const Listener *li = s->listeners->listeners; li; li = li->next)
                        n++;
                free(s->listener_ids);
                s->listener_ids = calloc(n ?: 1, sizeof(*s->listener_ids));
                s->n_listener_ids = 0;
                if (!s->listener_ids)
                        return true; /* refused when it cannot be told: out of memory */
                for (const Listener *li = s->listeners->listeners; li; li = li->next) {
                        struct stat ls;
                        if (li->fd >= 0 && fstat(li->fd, &ls) >= 0) {
                                s->listener_ids[s->n_listener_ids].dev = ls.st_dev;
                                s->listener_ids[s->n_listener_ids++].ino = ls.st_ino;
                        }
                }
                s->listener_ids_valid = true;
                s->listener_ids_of = s->listeners->n;
        }
        for (size_t i = 0; i < s->n_listener_ids; i++)
                if (s->listener_ids[i].ino == st->st_ino && s->listener_ids[i].dev == st->st_dev)
                        return true;
        return false;
}

void worker_fdstore_listeners_changed(WorkerFdStore *s) {
        if (s)
                s->listener_ids_valid = false;
}

void worker_fdstore_add(WorkerFdStore *s, unsigned index, pid_t pid, unsigned slot_max, const char *name, bool poll,
                        int *fds, size_t n_fds) {
        size_t in_slot = worker_fdstore_count(s, index), kept_now = 0;
        int top = -1;

        if (!name)
                name = "stored";
        /* The highest fd the message brought: each fd kept costs a second one (rpsupd's copy, for a reexec),
         * at worst above it. */
        for (size_t i = 0; i < n_fds; i++)
                top = MAX(top, fds[i]);
        for (size_t i = 0; i < n_fds; i++) {
                _cleanup_free_ char *store_name = NULL;
                struct stat st;
                int r;

                if (fds[i] < 0)
                        continue;
                if (index >= WORKERS_MAX) {
                        log_ratelimit(LOG_WARNING, "Worker %d of slot %u sent fds with FDSTORE=1, but no slot "
                                      "beyond %u keeps any: closed.", (int) pid, index, WORKERS_MAX - 1);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (slot_max == 0) {
                        if (s->refused_told[index] != pid) {
                                log_notice("Worker %d of slot %u sent fds with FDSTORE=1, but FileDescriptorStoreMax= "
                                           "is 0: they are closed, not kept for the slot's next worker.",
                                           (int) pid, index);
                                s->refused_told[index] = pid;
                        }
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                /* The cheap refusals first: what follows looks at the store and the listeners. */
                if (in_slot >= slot_max) {
                        log_ratelimit(LOG_WARNING, "Slot %u keeps %zu fds, FileDescriptorStoreMax=%u: the fd \"%s\" "
                                      "of worker %d is refused and closed.", index, in_slot, slot_max, name, (int) pid);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (fstat(fds[i], &st) < 0) {
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (is_listener(s, fds[i], &st)) {
                        log_ratelimit(LOG_WARNING, "Worker %d (slot %u) sent a listening socket with FDSTORE=1 (\"%s\"): "
                                      "refused and closed. Kept, it would stay open after the worker's generation "
                                      "retires and go on queueing connections; a worker gets its listeners anew.",
                                      (int) pid, index, name);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (slot_has(s, index, fds[i], &st)) {
                        log_debug("Worker %d stored the fd \"%s\" again: slot %u keeps it once.", (int) pid, name,
                                  index);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                /* Fds are numbered lowest first: a high one means few are left below the limit. */
                if ((int64_t) top + (int64_t) kept_now + 1 >= s->fd_ceiling) {
                        log_ratelimit(LOG_WARNING, "rpsupd is within %u fds of its limit (RLIMIT_NOFILE, LimitNOFILE=): "
                                      "the fd \"%s\" of worker %d (slot %u) is refused and closed.", FD_RESERVE, name,
                                      (int) pid, index);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (s->n >= WORKER_FDSTORE_SERVICE_MAX) {
                        log_ratelimit(LOG_WARNING, "The workers keep %zu fds, as many as a service may (%u): the fd "
                                      "\"%s\" of worker %d (slot %u) is refused and closed.", s->n,
                                      WORKER_FDSTORE_SERVICE_MAX, name, (int) pid, index);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                r = worker_fdstore_name(index, s->next_seq, poll, name, &store_name);
                if (r == -ENAMETOOLONG) {
                        log_ratelimit(LOG_WARNING, "The fd \"%s\" of worker %d (slot %u) is refused and closed: its "
                                      "name is too long to be kept in systemd's fd store with the slot and a number "
                                      "(at most %u bytes there).", name, (int) pid, index, NOTIFY_FDNAME_MAX);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (r < 0) {
                        log_oom();
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (s->name_bytes[index] + strlen(name) + 1 > WORKER_FDSTORE_SLOT_NAMES_MAX) {
                        log_ratelimit(LOG_WARNING, "The names of the fds slot %u keeps take %zu bytes, at most %u (its "
                                      "next worker gets them in LISTEN_FDNAMES): the fd \"%s\" of worker %d is "
                                      "refused and closed.", index, s->name_bytes[index],
                                      WORKER_FDSTORE_SLOT_NAMES_MAX, name, (int) pid);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                if (s->store_name_bytes + strlen(store_name) + 1 > WORKER_FDSTORE_SERVICE_NAMES_MAX) {
                        log_ratelimit(LOG_WARNING, "The names of the fds the workers keep take %zu bytes in systemd's "
                                      "fd store, at most %u (systemd passes them to rpsupd in LISTEN_FDNAMES): the fd "
                                      "\"%s\" of worker %d (slot %u) is refused and closed.", s->store_name_bytes,
                                      WORKER_FDSTORE_SERVICE_NAMES_MAX, name, (int) pid, index);
                        fds[i] = safe_close(fds[i]);
                        continue;
                }
                r = keep(s, fds[i], index, s->next_seq++, poll, name, &st, TAKE_PTR(store_name), true);
                fds[i] = -EBADF;
                if (r < 0) {
                        log_warning_errno(r, "Failed to keep the fd \"%s\" of worker %d (slot %u), closed it: %m",
                                          name, (int) pid, index);
                        continue;
                }
                in_slot++;
                kept_now++;
                log_debug("Slot %u keeps the fd \"%s\" of worker %d (%zu in the slot).", index, name, (int) pid,
                          in_slot);
        }
}

void worker_fdstore_remove(WorkerFdStore *s, unsigned index, const char *name) {
        size_t n = worker_fdstore_count(s, index) > 0 ? drop_slot(s, index, name) : 0;

        log_debug("Slot %u dropped %zu fd%s named \"%s\" (FDSTOREREMOVE=1).", index, n, n == 1 ? "" : "s", name);
}

void worker_fdstore_notify(WorkerFdStore *s, Worker *w, const NotifyMessage *msg) {
        unsigned index = w->slot->index;
        size_t n = 0;

        for (size_t i = 0; i < msg->n_fds; i++)
                if (msg->fds[i] >= 0)
                        n++;
        if (msg->fdstore_remove) {
                if (msg->fdname)
                        worker_fdstore_remove(s, index, msg->fdname);
                else
                        log_ratelimit(LOG_NOTICE, "Worker %d sent FDSTOREREMOVE=1 without a valid FDNAME=: ignored.",
                                      (int) w->pid);
        }
        if (n == 0)
                return;
        if (!msg->fdstore) {
                log_ratelimit(LOG_DEBUG, "Closing the %zu fd%s worker %d sent without FDSTORE=1.", n,
                              n == 1 ? "" : "s", (int) w->pid);
                return;
        }
        if (msg->fdname_invalid)
                log_ratelimit(LOG_NOTICE, "Worker %d sent FDSTORE=1 with an FDNAME= that is no valid name (1 to %u "
                              "printable ASCII characters, no ':'): its fds are stored as \"stored\".", (int) w->pid,
                              NOTIFY_FDNAME_MAX);
        worker_fdstore_add(s, index, w->pid, w->slot->generation->config->fdstore_max, msg->fdname, !msg->fdpoll_off,
                           msg->fds, msg->n_fds);
}

size_t worker_fdstore_slot_fds(WorkerFdStore *s, unsigned index, int *fds, const char **names, size_t max) {
        size_t n = 0;

        for (size_t i = 0; s && i < s->n && n < max && n < worker_fdstore_count(s, index); i++) {
                if (s->fds[i]->index != index)
                        continue;
                if (fds)
                        fds[n] = s->fds[i]->fd;
                if (names)
                        names[n] = s->fds[i]->name;
                n++;
        }
        return n;
}

uint64_t worker_fdstore_next_seq(const WorkerFdStore *s) {
        return s ? s->next_seq : 0;
}

void worker_fdstore_handed(WorkerFdStore *s, unsigned index, uint64_t upto) {
        if (!s || index >= WORKERS_MAX)
                return;
        s->handed_upto[index] = upto;
        /* Carried over from an earlier rpsupd (the state file): no fd stored from now on counts as handed. */
        s->next_seq = MAX(s->next_seq, upto);
}

uint64_t worker_fdstore_handed_upto(const WorkerFdStore *s, unsigned index) {
        return s && index < WORKERS_MAX ? s->handed_upto[index] : 0;
}

static int compare_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

/* The inodes of the slot's sockets stored before `below`, sorted. */
static int inodes_below(const WorkerFdStore *s, unsigned index, uint64_t below, uint32_t **ret, size_t *ret_n) {
        uint32_t *inodes = NULL;
        size_t n = 0, k = 0;

        for (size_t i = 0; s && i < s->n; i++)
                if (s->fds[i]->index == index && s->fds[i]->socket)
                        n++;
        if (n > 0) {
                inodes = calloc(n, sizeof(uint32_t));
                if (!inodes)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n; i++)
                        if (s->fds[i]->index == index && s->fds[i]->socket && s->fds[i]->seq < below &&
                            s->fds[i]->ino <= UINT32_MAX)
                                inodes[k++] = (uint32_t) s->fds[i]->ino;
                qsort(inodes, k, sizeof(uint32_t), compare_u32);
        }
        if (k == 0)
                inodes = mfree(inodes);
        *ret = inodes;
        *ret_n = k;
        return 0;
}

int worker_fdstore_slot_inodes(const WorkerFdStore *s, unsigned index, uint32_t **ret, size_t *ret_n) {
        return inodes_below(s, index, UINT64_MAX, ret, ret_n);
}

int worker_fdstore_handed_on(const WorkerFdStore *s, const Slot *slot, uint32_t **ret, size_t *ret_n) {
        if (s && s->n > 0 && slot->index < WORKERS_MAX)
                FOREACH_GENERATION(g, slot->generation->service)
                        for (size_t i = 0; g != slot->generation && i < g->n_slots; i++)
                                if (g->slots[i]->index == slot->index && !g->slots[i]->retiring)
                                        return inodes_below(s, slot->index, s->handed_upto[slot->index], ret, ret_n);
        *ret = NULL;
        *ret_n = 0;
        return 0;
}

int worker_fdstore_slots(const WorkerFdStore *s, unsigned **ret, size_t **ret_counts, size_t *ret_n) {
        _cleanup_free_ unsigned *slots = NULL;
        _cleanup_free_ size_t *counts = NULL;
        size_t n = 0, k = 0;

        for (unsigned i = 0; s && i < WORKERS_MAX; i++)
                if (s->count[i] > 0)
                        n++;
        if (n > 0) {
                slots = calloc(n, sizeof(unsigned));
                counts = calloc(n, sizeof(size_t));
                if (!slots || !counts)
                        return -ENOMEM;
                for (unsigned i = 0; i < WORKERS_MAX; i++)
                        if (s->count[i] > 0) {
                                slots[k] = i;
                                counts[k++] = s->count[i];
                        }
        }
        *ret = TAKE_PTR(slots);
        *ret_counts = TAKE_PTR(counts);
        *ret_n = n;
        return 0;
}

static int compare_seq(const void *a, const void *b) {
        const SlotStoredFd *x = *(SlotStoredFd *const *) a, *y = *(SlotStoredFd *const *) b;

        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void worker_fdstore_restore(WorkerFdStore *s, InheritedFds *inherited) {
        size_t n = 0;

        for (size_t i = 0; i < inherited->n; i++) {
                InheritedFd *in = &inherited->fds[i];
                const char *name;
                struct stat st;
                unsigned index;
                uint64_t seq;
                bool poll;
                int r;

                if (in->fd < 0 || worker_fdstore_name_parse(in->name, &index, &seq, &poll, &name) < 0)
                        continue;
                if (fstat(in->fd, &st) < 0)
                        continue; /* left to the inherited fds' clean-up */
                /* Within the same bounds as when it was stored: else the slot's next worker could not start. */
                if (s->n >= WORKER_FDSTORE_SERVICE_MAX ||
                    s->name_bytes[index] + strlen(name) + 1 > WORKER_FDSTORE_SLOT_NAMES_MAX ||
                    s->store_name_bytes + strlen(in->name) + 1 > WORKER_FDSTORE_SERVICE_NAMES_MAX)
                {
                        log_warning("Slot %u stored more fds or longer names than a slot or service may keep: the "
                                    "fd \"%s\" is closed.", index, name);
                        r = -E2BIG;
                } else {
                        char *store_name = strdup(in->name);

                        r = store_name ? keep(s, TAKE_FD(in->fd), index, seq, poll, name, &st, store_name, false)
                                       : -ENOMEM;
                        if (r < 0)
                                log_warning_errno(r, "Failed to take over the fd \"%s\" that slot %u stored: %m", name,
                                                  index);
                }
                if (r < 0) {
                        in->fd = safe_close(in->fd);
                        (void) fdstore_remove(in->name);
                        continue;
                }
                s->next_seq = MAX(s->next_seq, seq + 1);
                n++;
        }
        if (n == 0)
                return;
        qsort(s->fds, s->n, sizeof(SlotStoredFd *), compare_seq);
        log_info("Took over %zu fd%s that workers stored (FDSTORE=1) from systemd's fd store.", n, n == 1 ? "" : "s");
}

void worker_fdstore_arm(WorkerFdStore *s) {
        s->armed = true;
}

/* Cheap when nothing is to drop: one look at each slot, no allocation. */
void worker_fdstore_prune(WorkerFdStore *s, Service *svc) {
        bool present[WORKERS_MAX] = {};

        if (!s || !s->armed || s->n == 0)
                return;
        FOREACH_GENERATION(g, svc)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->index < WORKERS_MAX)
                                present[g->slots[i]->index] = true;
        for (unsigned k = 0; k < WORKERS_MAX; k++) {
                size_t n;

                if (s->count[k] == 0 || present[k])
                        continue;
                n = drop_slot(s, k, NULL);
                log_info("Slot %u is gone: dropping the %zu fd%s its workers stored (FDSTORE=1).", k, n,
                         n == 1 ? "" : "s");
                s->refused_told[k] = 0;
        }
}
