/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control-entry.h"
#include "control-listeners.h"
#include "log.h"
#include "string-util.h"
#include "worker-process.h"
#include "worker-spawn.h"

static uint64_t listener_inode(const Listener *l) {
        struct stat st;

        return fstat(l->fd, &st) < 0 ? 0 : (uint64_t) st.st_ino;
}

/* rpsupd's fds and their inodes, sorted by fd: what slot_fds() gives is looked up here. */
typedef struct FdInode {
        int fd;
        uint64_t inode;
} FdInode;

static int cmp_fd(const void *a, const void *b) {
        const FdInode *x = a, *y = b;
        return (x->fd > y->fd) - (x->fd < y->fd);
}

static uint64_t inode_of_fd(const FdInode *t, size_t n, int fd) {
        FdInode key = { .fd = fd };
        const FdInode *f = n > 0 ? bsearch(&key, t, n, sizeof(FdInode), cmp_fd) : NULL;

        return f ? f->inode : 0;
}

static int cmp_slot(const void *a, const void *b) {
        const Slot *x = *(Slot *const *) a, *y = *(Slot *const *) b;
        return (x->id > y->id) - (x->id < y->id);
}

/* Every slot of every generation, sorted by id (*ret: NULL without any). */
static int slots_sorted(Service *s, Slot ***ret, size_t *ret_n) {
        Slot **a = NULL;
        size_t n = 0, k = 0;

        FOREACH_GENERATION(g, s)
                n += g->n_slots;
        if (n > 0) {
                a = calloc(n, sizeof(Slot *));
                if (!a)
                        return -ENOMEM;
                FOREACH_GENERATION(g, s)
                        for (size_t i = 0; i < g->n_slots; i++)
                                a[k++] = g->slots[i];
                qsort(a, n, sizeof(Slot *), cmp_slot);
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

static Slot *slot_by_id(Slot **slots, size_t n, uint64_t id) {
        Slot key = { .id = id }, *k = &key, **f;

        f = n > 0 ? bsearch(&k, slots, n, sizeof(Slot *), cmp_slot) : NULL;
        return f ? *f : NULL;
}

/* rpsupd's own start time (field 22 of /proc/self/stat), read once; 0 when unknown. */
static uint64_t own_start_time(void) {
        static uint64_t t;

        if (t == 0 && process_start_time(getpid(), &t) < 0)
                t = 0;
        return t;
}

static int append_supervisor(sd_bus_message *m, const StatusView *v, size_t n_listeners, size_t n_expected) {
        TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
        TRY(entry_str(m, "service", v->service_name));
        TRY(entry_str(m, "strategy", strategy_kind_to_string(v->strategy->kind)));
        TRY(entry_u32(m, "pid", (uint32_t) getpid()));
        TRY(entry_u64(m, "start_time", own_start_time()));
        /* Where rpsupd sends FDSTORE=1: whoever holds the socket bound there is the fd store (PID 1 under
         * systemd). Empty: no fd store. */
        TRY(entry_str(m, "notify_socket", getenv("NOTIFY_SOCKET")));
        TRY(entry_bool(m, "stopping", v->listeners->keep));
        TRY(entry_u64(m, "live_generation", v->service->live ? v->service->live->id : 0));
        TRY(entry_u64(m, "listeners", n_listeners));
        TRY(entry_u64(m, "listeners_omitted", n_listeners > LISTENER_HOLDERS_LISTENERS_MAX ?
                                                      n_listeners - LISTENER_HOLDERS_LISTENERS_MAX : 0));
        TRY(entry_u64(m, "closed_forgotten", v->listeners->closed ? v->listeners->closed->forgotten : 0));
        TRY(entry_u64(m, "closed_max", LISTENER_HISTORY_MAX));
        TRY(entry_u64(m, "expected", n_expected));
        TRY(entry_u64(m, "workers_max", LISTENER_HOLDERS_WORKERS_MAX));
        TRY(entry_u64(m, "expected_omitted", n_expected > LISTENER_HOLDERS_WORKERS_MAX ?
                                                     n_expected - LISTENER_HOLDERS_WORKERS_MAX : 0));
        return sd_bus_message_close_container(m);
}

static int append_listeners(sd_bus_message *m, const StatusView *v) {
        const ListenerHistory *h = v->listeners->closed;
        _cleanup_free_ Slot **slots = NULL;
        size_t n = 0, n_slots;

        TRY(slots_sorted(v->service, &slots, &n_slots));

        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (Listener *l = v->listeners->listeners; l && n < LISTENER_HOLDERS_LISTENERS_MAX; l = l->next, n++) {
                char addr[SOCKET_ADDRESS_STRING_MAX];
                Slot *slot = l->slot_id ? slot_by_id(slots, n_slots, l->slot_id) : NULL;
                const char *role = l->socket_unit ? "socket-unit" : l->slot_id == 0 ? "shared" :
                                   slot && slot->retiring ? "retiring" : slot ? "slot" : "retired";

                TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                TRY(entry_u64(m, "inode", listener_inode(l)));
                TRY(entry_str(m, "address", socket_address_format(&l->address, addr, sizeof(addr))));
                TRY(entry_str(m, "type", socket_type_name(l->address.type)));
                TRY(entry_str(m, "role", role));
                TRY(entry_u64(m, "generation", slot ? slot->generation->id : 0));
                TRY(entry_u32(m, "slot", slot ? slot->index : 0));
                TRY(entry_str(m, "fdstore_name", l->store_name));
                TRY(entry_u64(m, "closed_usec", 0));
                TRY(sd_bus_message_close_container(m));
        }
        /* Closed by rpsupd, newest first: only their copies elsewhere, if any, are still open. */
        for (size_t i = 0; h && i < h->n; i++) {
                const ClosedListener *c = &h->entries[(h->next + LISTENER_HISTORY_MAX - 1 - i) % LISTENER_HISTORY_MAX];
                char addr[SOCKET_ADDRESS_STRING_MAX];

                TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                TRY(entry_u64(m, "inode", c->inode));
                TRY(entry_str(m, "address", socket_address_format(&c->address, addr, sizeof(addr))));
                TRY(entry_str(m, "type", socket_type_name(c->address.type)));
                TRY(entry_str(m, "role", "closed"));
                TRY(entry_u64(m, "generation", 0));
                TRY(entry_u32(m, "slot", 0));
                TRY(entry_str(m, "fdstore_name", NULL));
                TRY(entry_u64(m, "closed_usec", c->closed_at));
                TRY(sd_bus_message_close_container(m));
        }
        return sd_bus_message_close_container(m);
}

typedef struct Expected {
        sd_bus_message *m;
        const StatusView *v;
        const FdInode *fds;
        size_t n_fds;
        size_t n;       /* worker records counted, appended or not */
        bool append;
} Expected;

/* One record per worker: its pid and start time (so that a reused pid is not taken for it) and the inodes
 * of the listeners it was handed (none for a departing worker: what it holds is what it had). */
static int expect(Expected *e, const Worker *w, const FdList *fds, bool departing) {
        if (e->n++ >= LISTENER_HOLDERS_WORKERS_MAX || !e->append)
                return 0;
        TRY(sd_bus_message_open_container(e->m, 'a', "{sv}"));
        TRY(entry_u32(e->m, "pid", (uint32_t) w->pid));
        TRY(entry_u64(e->m, "start_time", worker_process_start_time((Worker *) w)));
        TRY(entry_u64(e->m, "generation", w->slot->generation->id));
        TRY(entry_u32(e->m, "slot", w->slot->index));
        TRY(entry_str(e->m, "worker_state", worker_state_to_string(w->state)));
        TRY(entry_bool(e->m, "departing", departing));
        TRY(sd_bus_message_open_container(e->m, 'e', "sv"));
        TRY(sd_bus_message_append_basic(e->m, 's', "inodes"));
        TRY(sd_bus_message_open_container(e->m, 'v', "at"));
        TRY(sd_bus_message_open_container(e->m, 'a', "t"));
        for (size_t j = 0; fds && j < fds->n; j++) {
                uint64_t inode = inode_of_fd(e->fds, e->n_fds, fds->fds[j]);

                if (inode != 0)
                        TRY(sd_bus_message_append_basic(e->m, 't', &inode));
        }
        TRY(sd_bus_message_close_container(e->m));
        TRY(sd_bus_message_close_container(e->m));
        TRY(sd_bus_message_close_container(e->m));
        return sd_bus_message_close_container(e->m);
}

/* Each worker with the listeners its slot hands it (slot_fds()), then the departing workers (replaced
 * while they hung). */
static int walk_expected(Expected *e) {
        Service *s = e->v->service;
        Strategy *st = e->v->strategy;
        Worker *w;

        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        FdList fds = {};
                        int r;

                        if (!slot->worker || slot->worker->pid <= 0)
                                continue;
                        if (e->append) {
                                r = st->ops->slot_fds(st, slot, &fds);
                                if (r < 0)
                                        return log_warning_errno(r, "Cannot tell which listeners worker %u of "
                                                                 "generation %" PRIu64 " holds, for "
                                                                 "ListListenerHolders: %m", slot->index, g->id);
                        }
                        TRY(expect(e, slot->worker, &fds, false));
                }
        LIST_FOREACH(w, &s->departing, departing_link)
                if (w->pid > 0)
                        TRY(expect(e, w, NULL, true));
        return 0;
}

int control_append_listener_holders(sd_bus_message *m, const StatusView *v) {
        _cleanup_free_ FdInode *fds = calloc(v->listeners->n ?: 1, sizeof(FdInode));
        size_t n_fds = 0;
        Expected e;

        if (!fds)
                return -ENOMEM;
        for (Listener *l = v->listeners->listeners; l && n_fds < v->listeners->n; l = l->next)
                fds[n_fds++] = (FdInode) { .fd = l->fd, .inode = listener_inode(l) };
        qsort(fds, n_fds, sizeof(FdInode), cmp_fd);

        e = (Expected) { .m = m, .v = v, .fds = fds, .n_fds = n_fds };
        TRY(walk_expected(&e)); /* counted first: the supervisor record says what was left out */
        TRY(append_supervisor(m, v, v->listeners->n, e.n));
        TRY(append_listeners(m, v));
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        e = (Expected) { .m = m, .v = v, .fds = fds, .n_fds = n_fds, .append = true };
        TRY(walk_expected(&e));
        return sd_bus_message_close_container(m);
}
