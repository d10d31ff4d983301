/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* drain and migrate: one SO_REUSEPORT listener per worker slot and address, held by rpsupd, in one
 * reuseport group per address, steered by rpsup's BPF program (bpf/). steer() writes each group's set:
 * the listeners of the live generation's serving workers (active), of its workers that are coming back
 * or starting (standby), and during a canary, of the warm generation's serving workers (previous, with
 * the share the canary leaves them). A readiness probe reaches one worker through the probe map (its
 * source port names the slot's listener).
 * A slot that retires (reload, scale-in, rollback, stop) leaves the set first, so nothing new reaches it
 * (when the service stops, new connections go to the socket unit's listener or to one rpsupd opens for
 * them and leaves in the fd store: stop_hold()); its worker keeps accepting what is queued for it and
 * finishes its open connections, for at most the drain window (DrainSec=). slot_drain_state() tells the service when it has nothing left (queue empty, no
 * connection open: worker-connections.c), and the service asks it to stop then. rpsupd never shuts a
 * listener down under a running worker (its accept() would fail with EINVAL): only once the worker is gone
 * (slot_close()) are the listeners shut down, so that whatever is still queued, and the handshakes still in
 * flight, migrate to the serving workers, and they linger for those handshakes. drain and migrate retire
 * alike; they differ when a worker hangs (evacuate(): migrate moves its queue to the serving workers at
 * once, drain leaves it for the replacement) and in what auto picks them for (drain: datagrams).
 * A listener handed over by a socket unit (ReusePort=yes) joins the group too: every worker gets it as well,
 * so whatever it queued while the service was down is served, and when the service stops, the slots'
 * queues migrate into it. */

#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "listener.h"
#include "log.h"
#include "reuseport-group.h"
#include "rpsup-limits.h"
#include "steer.h"
#include "strategy-reuseport.h"
#include "systemd-notify.h"
#include "worker-connections.h"
#include "worker-fdstore.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

typedef struct Group {
        struct steer_group_key key;
        bool attached;              /* the program is attached to the group */
        bool written;               /* `last` is what the map holds */
        struct steer_set last;
} Group;

typedef struct SlotListeners {
        size_t n;
        Listener *listeners[LISTEN_MAX];
        uint32_t index[LISTEN_MAX];
        bool shut;                  /* shut down (migrated away): out of every set */
        /* Retiring with the flow table on: its datagram listeners' flow datagrams (flow_hits + flow_new) at
         * the last look, and when a look last saw them move. */
        bool flow_looked;
        uint64_t flow_count;
        usec_t flow_seen_at;        /* 0: never */
} SlotListeners;

/* A generation's listeners from the socket unit (Generation.strategy_data), shared by every slot. */
typedef struct SocketUnitListeners {
        size_t n;
        Listener *listeners[LISTEN_MAX]; /* from the socket unit; NULL where it passed none */
        uint32_t index[LISTEN_MAX];
} SocketUnitListeners;

/* A retired listener rpsupd keeps after its worker is gone: shut down (not listening, out of every set),
 * but open, because handshakes that were in flight on it migrate only when their final ACK or their
 * SYN-ACK timer comes, and only while the listener still exists. */
typedef struct Lingering {
        Listener *listener;
        usec_t until;
} Lingering;

/* DrainSec=auto for TCP: a retiring worker is asked to stop as soon as it is idle, so the window only
 * bounds what stays open: long requests, and keep-alive connections that the daemon itself closes when
 * asked to stop. 30 s is a request timeout common servers use by default (gunicorn's --timeout) and the
 * default StopTimeoutSec=; bounded by StopTimeoutSec= (a service that wants its workers gone quickly says so
 * there). */
#define DRAIN_AUTO_USEC (30ULL * USEC_PER_SEC)

typedef struct Reuseport {
        ListenerSet *set;
        Steering *steering;
        bool migrate;
        Group groups[STEER_GROUPS_MAX];
        size_t n_groups;
        uint8_t used[STEER_LISTENERS_MAX]; /* sockarray indices in use (0 is never used) */
        bool stop_steered;
        /* While the service stops: one listener per stream address that no socket unit's listener covers
         * takes the new connections, so that the workers finish what they have and nothing new reaches
         * them. They are in the fd store: a restarted rpsupd serves what queued on them (release_unclaimed()
         * in manager.c hands them to orphan()). */
        Listener *held[STEER_GROUPS_MAX];
        uint32_t held_index[STEER_GROUPS_MAX];
        size_t n_held;
        bool stop_drains;           /* every stream address is held: the workers drain as when replaced */
        Lingering *lingering;
        size_t n_lingering;
        /* The datagram flow table: on in the sets written last; its counts of listeners that are gone
         * (their counters are reset when the index is reused); the flow count, cached; the FlowTableSize=
         * last said to wait for a restart. */
        bool flows_on;
        uint64_t flow_hits_gone, flow_new_gone;
        uint32_t flow_size_noted;
        /* The flow count: the last complete walk's, when it ended; the walk going on (a step per turn of
         * the event loop while walk_source is on). */
        uint32_t flow_count;
        bool flow_counted;
        usec_t flow_counted_at;
        SteeringFlowWalk walk;
        sd_event_source *walk_source;
} Reuseport;

/* ---- indices and groups ---- */

/* An index no listener of ours has, and none in the sockarray either: after a restart, the sockarray holds
 * the previous rpsupd's listeners at their indices until their slots are adopted. */
static int index_alloc(Reuseport *rp, uint32_t *ret) {
        for (uint32_t i = 1; i < STEER_LISTENERS_MAX; i++)
                if (!rp->used[i] && steering_index_vacant(rp->steering, i)) {
                        rp->used[i] = 1;
                        (void) steering_counters_reset(rp->steering, i);
                        *ret = i;
                        return 0;
                }
        return -E2BIG;
}

static Group *group_find(Reuseport *rp, const struct steer_group_key *key) {
        for (size_t i = 0; i < rp->n_groups; i++)
                if (memcmp(&rp->groups[i].key, key, sizeof(*key)) == 0)
                        return &rp->groups[i];
        return NULL;
}

/* A group seen for the first time gets a set (standby: this listener) before the program is attached, so
 * the program never runs without one. */
static int group_ensure(Reuseport *rp, const struct steer_group_key *key, uint32_t index, int fd) {
        struct steer_set existing;
        Group *g = group_find(rp, key);
        int r;

        if (g && g->attached)
                return 0;
        if (!g) {
                if (rp->n_groups >= STEER_GROUPS_MAX)
                        return -E2BIG;
                g = &rp->groups[rp->n_groups++];
                *g = (Group) { .key = *key };
        }
        if (steering_get_group(rp->steering, key, &existing) < 0) {
                r = steering_set_group(rp->steering, key, NULL, 0, &index, 1, NULL, 0, 0);
                if (r < 0)
                        return r;
        }
        r = steering_attach(rp->steering, fd);
        if (r < 0)
                return r;
        g->attached = true;
        return 0;
}

/* ---- one listener ---- */

static int listener_join(Reuseport *rp, Listener *l, uint32_t *ret_index, char **ret_error) {
        struct steer_group_key key;
        char addr[SOCKET_ADDRESS_STRING_MAX];
        uint32_t index;
        int r;

        if (!rp->steering) {
                /* Migration through net.ipv4.tcp_migrate_req alone: nothing to steer with. */
                *ret_index = 0;
                return 0;
        }
        socket_address_format(&l->address, addr, sizeof(addr));
        r = steering_group_key(l->fd, &key);
        if (r < 0)
                goto fail;

        /* Restored from the fd store: it may still be in the sockarray where the previous rpsupd put it. */
        if ((l->restored || l->socket_unit) && steering_find(rp->steering, l->fd, &index) >= 0 && !rp->used[index]) {
                rp->used[index] = 1;
        } else {
                r = index_alloc(rp, &index);
                if (r < 0)
                        goto fail;
                r = steering_insert(rp->steering, index, l->fd);
                if (r < 0) {
                        rp->used[index] = 0;
                        goto fail;
                }
        }
        r = group_ensure(rp, &key, index, l->fd);
        if (r < 0) {
                (void) steering_remove(rp->steering, index);
                rp->used[index] = 0;
                goto fail;
        }
        *ret_index = index;
        return 0;

fail:
        if (asprintf(ret_error, "cannot put the listener on %s under BPF steering: %s%s", addr, strerror(-r),
                     r == -EBUSY ? " (it is in a steering map this rpsupd cannot reach)" : "") < 0)
                *ret_error = NULL;
        return r;
}

/* A listener leaves the sockarray: what the flow table steered to it stays in the totals. */
static void flow_counts_keep(Reuseport *rp, uint32_t index) {
        struct steer_counters c;

        if (rp->steering && index > 0 && index < STEER_LISTENERS_MAX && rp->used[index] &&
            steering_counters(rp->steering, index, &c) >= 0) {
                rp->flow_hits_gone += c.flow_hits;
                rp->flow_new_gone += c.flow_new;
        }
}

static void listener_leave(Reuseport *rp, Listener *l, uint32_t index, bool in_map) {
        flow_counts_keep(rp, index);
        if (in_map && rp->steering)
                (void) steering_remove(rp->steering, index);
        if (index > 0 && index < STEER_LISTENERS_MAX)
                rp->used[index] = 0;
        listener_unref(l);
}

/* ---- generations: the socket unit's listeners ---- */

static void socket_unit_listeners_release(Reuseport *rp, SocketUnitListeners *h) {
        if (!h)
                return;
        for (size_t i = 0; i < h->n; i++) {
                Listener *l = h->listeners[i];
                if (!l)
                        continue;
                /* The socket unit keeps the socket open: the last generation using it takes it out of the
                 * sockarray itself (unless stopping: then it is where the queues migrate to). */
                if (l->n_ref == 1 && l->steer_joined && !rp->set->keep && rp->steering) {
                        (void) steering_remove(rp->steering, l->steer_index);
                        rp->used[l->steer_index] = 0;
                        l->steer_joined = false;
                }
                listener_unref(l);
        }
        free(h);
}

static int reuseport_generation_open(Strategy *st, Generation *g, char **ret_error) {
        Reuseport *rp = st->data;
        Config *c = g->config;
        SocketUnitListeners *h;
        int r;

        h = calloc(1, sizeof(SocketUnitListeners));
        if (!h)
                return -ENOMEM;
        h->n = c->n_listen;
        for (size_t i = 0; i < c->n_listen; i++) {
                Listener *l = NULL;
                int one = 0;
                socklen_t len = sizeof(one);

                r = listener_adopt_socket_unit(rp->set, &c->listen[i], c->backlog, c->fdname, &l);
                if (r <= 0)
                        continue;
                if (getsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, &len) < 0 || !one) {
                        if (asprintf(ret_error, "the socket unit's listener on %s has no SO_REUSEPORT: set "
                                     "ReusePort=yes in the .socket unit, or use Strategy=handoff", c->listen[i].text) < 0)
                                *ret_error = NULL;
                        listener_unref(l);
                        r = -EINVAL;
                        goto fail;
                }
                if (!l->steer_joined) {
                        r = listener_join(rp, l, &l->steer_index, ret_error);
                        if (r < 0) {
                                listener_unref(l);
                                goto fail;
                        }
                        l->steer_joined = true;
                }
                h->listeners[i] = l;
                h->index[i] = l->steer_index;
        }
        g->strategy_data = h;
        return 0;

fail:
        socket_unit_listeners_release(rp, h);
        return r;
}

static void reuseport_generation_close(Strategy *st, Generation *g) {
        socket_unit_listeners_release(st->data, g->strategy_data);
        g->strategy_data = NULL;
}

/* ---- slots ---- */

static void slot_listeners_release(Reuseport *rp, SlotListeners *sl) {
        for (size_t i = 0; i < sl->n; i++)
                /* shutdown() takes a stream listener out of the sockarray, not a datagram one. */
                listener_leave(rp, sl->listeners[i], sl->index[i],
                               !sl->shut || sl->listeners[i]->address.type != SOCK_STREAM);
        sl->n = 0;
}

static int slot_listeners_open(Reuseport *rp, Slot *slot, uint64_t id, SlotListeners *sl, char **ret_error) {
        Config *c = slot->generation->config;
        int r;

        for (size_t i = 0; i < c->n_listen; i++) {
                Listener *l;
                r = listener_acquire(rp->set, &c->listen[i], c->backlog, NULL, id, true, &l, ret_error);
                if (r < 0)
                        goto fail;
                r = listener_join(rp, l, &sl->index[i], ret_error);
                if (r < 0) {
                        listener_unref(l);
                        goto fail;
                }
                sl->listeners[i] = l;
                sl->n++;
        }
        return 0;
fail:
        slot_listeners_release(rp, sl);
        return r;
}

static int reuseport_slot_open(Strategy *st, Slot *slot, char **ret_error) {
        Reuseport *rp = st->data;
        SlotListeners *sl;
        int r;

        sl = calloc(1, sizeof(SlotListeners));
        if (!sl)
                return -ENOMEM;
        r = slot_listeners_open(rp, slot, slot->id, sl, ret_error);
        if (r < 0) {
                free(sl);
                return r;
        }
        slot->strategy_data = sl;
        return 0;
}

static void shut_down(SlotListeners *sl);

/* The slot is gone: its stream listeners stop listening now (what is queued migrates at once) and linger for
 * the handshakes still in flight on them. Its datagram listeners leave the sockarray now: shutdown() does
 * not take a datagram socket out of it, and one left there would still be chosen, a flow of the gone worker
 * included, with nobody to read it; without it, such a flow misses (flow_lost) and is steered afresh. */
static void slot_listeners_linger(Reuseport *rp, SlotListeners *sl, usec_t linger) {
        Lingering *l;
        usec_t until = usec_add(now_usec(CLOCK_MONOTONIC), linger);

        if (!sl->shut)
                shut_down(sl);
        l = realloc(rp->lingering, sizeof(Lingering) * (rp->n_lingering + sl->n));
        if (!l) {
                slot_listeners_release(rp, sl);
                return;
        }
        rp->lingering = l;
        for (size_t i = 0; i < sl->n; i++) {
                if (sl->listeners[i]->address.type != SOCK_STREAM) {
                        listener_leave(rp, sl->listeners[i], sl->index[i], true);
                        continue;
                }
                flow_counts_keep(rp, sl->index[i]);
                if (sl->index[i] > 0 && sl->index[i] < STEER_LISTENERS_MAX)
                        rp->used[sl->index[i]] = 0; /* shut down: the kernel took it out of the sockarray */
                rp->lingering[rp->n_lingering++] = (Lingering) { .listener = sl->listeners[i], .until = until };
        }
        sl->n = 0;
}

static bool slot_has_stream(const SlotListeners *sl) {
        for (size_t i = 0; i < sl->n; i++)
                if (sl->listeners[i]->address.type == SOCK_STREAM)
                        return true;
        return false;
}

static void reuseport_slot_close(Strategy *st, Slot *slot) {
        Reuseport *rp = st->data;
        SlotListeners *sl = slot->strategy_data;

        if (!sl)
                return;
        if (rp->set->keep) {
                /* Stopping: the listeners stay open, in the sockarray and in the fd store; what is queued on
                 * them waits for the next rpsupd (or migrates into the socket unit's listener). */
                for (size_t i = 0; i < sl->n; i++)
                        listener_unref(sl->listeners[i]);
        } else if (slot_has_stream(sl))
                /* The worker is gone: what is still queued migrates now, the handshakes in flight when they
                 * complete (drain and migrate alike: nothing is left to be reset); its datagram listeners
                 * leave the steering at once. */
                slot_listeners_linger(rp, sl, reuseport_handshake_window());
        else
                slot_listeners_release(rp, sl); /* datagrams only: out of the sockarray now */
        free(sl);
        slot->strategy_data = NULL;
}

/* The service stopped. Without a socket unit, the slots' listeners stay as they are, in the fd store: a
 * restarted rpsupd takes them over with their queues (systemd 252 keeps the store across a restart, not
 * across stop + start). With a socket unit owning the address, everything goes to its listener, which
 * systemd keeps in any case: the slots' listeners are shut down (their queues migrate into it), the program
 * is detached from the group and the socket unit's listener taken out of the sockarray, so that nothing
 * refers to this rpsupd's maps any more and the next rpsupd finds a plain listener. */
static void reuseport_stopped(Strategy *st) {
        Reuseport *rp = st->data;
        Listener *held = NULL;

        if (!rp->steering)
                return;
        for (Listener *l = rp->set->listeners; l; l = l->next)
                if (l->socket_unit && l->steer_joined)
                        held = l;
        if (!held)
                return;
        for (Listener *l = rp->set->listeners; l; l = l->next)
                if (!l->socket_unit && l->slot_id != 0 && l->address.type == SOCK_STREAM)
                        (void) shutdown(l->fd, SHUT_RD);
        for (Listener *l = rp->set->listeners; l; l = l->next) {
                if (!l->socket_unit || !l->steer_joined)
                        continue;
                (void) setsockopt(l->fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &(int) { 0 }, sizeof(int));
                (void) steering_remove(rp->steering, l->steer_index);
                l->steer_joined = false;
        }
        log_info("Handed every queued connection to the socket unit's listener, which systemd keeps open.");
}

static int reuseport_orphan(Strategy *st, int fd) {
        Reuseport *rp = st->data;
        SocketAddress a;
        Listener *l;
        Lingering *ll;

        if (rp->set->keep || socket_address_from_fd(fd, &a) < 0 || a.type != SOCK_STREAM || !socket_address_is_inet(&a))
                return 0;
        l = listener_wrap(rp->set, fd, &a);
        if (!l)
                return 0;
        ll = realloc(rp->lingering, sizeof(Lingering) * (rp->n_lingering + 1));
        if (!ll) {
                l->fd = -EBADF; /* the caller still owns it */
                listener_unref(l);
                return 0;
        }
        rp->lingering = ll;
        /* Its queue migrates (through the program, to the new generation) at once; handshakes in flight
         * follow while it lingers. */
        (void) shutdown(fd, SHUT_RD);
        rp->lingering[rp->n_lingering++] = (Lingering) {
                .listener = l,
                .until = usec_add(now_usec(CLOCK_MONOTONIC), reuseport_handshake_window()),
        };
        return 1;
}

static usec_t reuseport_next_deadline(Strategy *st) {
        Reuseport *rp = st->data;
        usec_t next = USEC_INFINITY;

        for (size_t i = 0; i < rp->n_lingering; i++)
                next = MIN(next, rp->lingering[i].until);
        return next;
}

static void reuseport_tick(Strategy *st, usec_t now) {
        Reuseport *rp = st->data;

        for (size_t i = 0; i < rp->n_lingering;) {
                if (rp->lingering[i].until > now) {
                        i++;
                        continue;
                }
                listener_unref(rp->lingering[i].listener);
                rp->lingering[i] = rp->lingering[--rp->n_lingering];
        }
}

static int reuseport_slot_fds(Strategy *st, Slot *slot, FdList *ret) {
        SlotListeners *sl = slot->strategy_data;
        SocketUnitListeners *h = slot->generation->strategy_data;
        const char *name = slot->generation->config->fdname;
        int r;

        for (size_t i = 0; sl && i < sl->n; i++) {
                r = fd_list_add(ret, sl->listeners[i]->fd, name);
                if (r < 0)
                        return r;
        }
        /* The socket unit's listener too: what it queued while no worker ran is served. */
        for (size_t i = 0; h && i < h->n; i++)
                if (h->listeners[i]) {
                        r = fd_list_add(ret, h->listeners[i]->fd, name);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* ---- steering ---- */

typedef enum SetKind {
        SET_ACTIVE,
        SET_STANDBY,
        SET_PREVIOUS,
} SetKind;

/* Puts a listener into its group's set (sets[] is parallel to rp->groups[]). */
static void set_add(Reuseport *rp, struct steer_set *sets, Listener *l, uint32_t index, SetKind kind) {
        struct steer_group_key key;
        struct steer_set *set;
        uint32_t *list, *n;
        Group *g;

        if (!l || steering_group_key(l->fd, &key) < 0 || !(g = group_find(rp, &key)))
                return;
        set = &sets[g - rp->groups];
        list = kind == SET_ACTIVE ? set->active : kind == SET_STANDBY ? set->standby : set->previous;
        n = kind == SET_ACTIVE ? &set->n_active : kind == SET_STANDBY ? &set->n_standby : &set->n_previous;
        for (uint32_t i = 0; i < *n; i++)
                if (list[i] == index)
                        return;
        if (*n < STEER_SET_MAX)
                list[(*n)++] = index;
}

static void add_slot(Reuseport *rp, struct steer_set *sets, Slot *slot, SetKind kind) {
        SlotListeners *sl = slot->strategy_data;

        for (size_t i = 0; sl && !sl->shut && i < sl->n; i++)
                set_add(rp, sets, sl->listeners[i], sl->index[i], kind);
}

static void add_socket_unit(Reuseport *rp, struct steer_set *sets, Generation *g, SetKind kind) {
        SocketUnitListeners *h = g ? g->strategy_data : NULL;

        for (size_t i = 0; h && i < h->n; i++)
                set_add(rp, sets, h->listeners[i], h->index[i], kind);
}

static bool held_covers(Reuseport *rp, const SocketAddress *a) {
        for (size_t i = 0; i < rp->n_held; i++)
                if (socket_address_equal(&rp->held[i]->address, a))
                        return true;
        return false;
}

/* The service stops: opens the listeners that take new connections while the workers finish (Reuseport.held),
 * named by a slot id of their own. Returns whether every stream address of every generation is covered
 * (by one of them or by the socket unit's listener). */
static bool stop_hold(Reuseport *rp, Service *s) {
        uint64_t id = 0;
        bool all = true;

        FOREACH_GENERATION(g, s) {
                SocketUnitListeners *h = g->strategy_data;
                const Config *c = g->config;

                for (size_t i = 0; i < c->n_listen; i++) {
                        const ListenSpec *spec = &c->listen[i];
                        _cleanup_free_ char *error = NULL;
                        Listener *l = NULL;
                        uint32_t index;
                        int r;

                        if (spec->address.type != SOCK_STREAM || (h && i < h->n && h->listeners[i]) ||
                            held_covers(rp, &spec->address))
                                continue;
                        if (rp->n_held >= STEER_GROUPS_MAX) {
                                all = false;
                                continue;
                        }
                        if (id == 0)
                                id = service_new_slot_id(s);
                        r = listener_acquire(rp->set, spec, c->backlog, NULL, id, true, &l, &error);
                        if (r >= 0) {
                                r = listener_join(rp, l, &index, &error);
                                if (r < 0)
                                        listener_unref(l);
                        }
                        if (r < 0) {
                                log_warning("Cannot open a listener on %s to take new connections while the workers "
                                            "finish (%s); they are asked to stop at once.", spec->text,
                                            error ?: strerror(-r));
                                all = false;
                                continue;
                        }
                        rp->held[rp->n_held] = l;
                        rp->held_index[rp->n_held++] = index;
                }
        }
        return all;
}

static bool set_equal(const struct steer_set *a, const struct steer_set *b) {
        return a->n_active == b->n_active && a->n_standby == b->n_standby && a->n_previous == b->n_previous &&
               a->previous_percent == b->previous_percent && a->policy == b->policy && a->shadow == b->shadow &&
               a->flows == b->flows &&
               memcmp(a->active, b->active, sizeof(uint32_t) * a->n_active) == 0 &&
               memcmp(a->standby, b->standby, sizeof(uint32_t) * a->n_standby) == 0 &&
               memcmp(a->previous, b->previous, sizeof(uint32_t) * a->n_previous) == 0;
}

static uint32_t steer_policy(SteeringPolicy p) {
        switch (p) {
        case STEERING_HASH:
                return STEER_POLICY_HASH;
        case STEERING_KERNEL:
                return STEER_POLICY_KERNEL;
        default:
                return STEER_POLICY_ROUND_ROBIN;
        }
}

static bool config_has_datagram(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type != SOCK_STREAM)
                        return true;
        return false;
}

/* Whether datagrams of known flows go to their listener: FlowTableSize= of the generation that takes new
 * connections is not 0, and the program chooses (not under the kernel policy). The table's size was fixed
 * when it was created: another FlowTableSize= is said once to wait for the service's next fresh start. */
static bool flows_wanted(Reuseport *rp, Service *s, Generation *target) {
        const Config *c = target ? target->config : NULL;
        uint32_t max = steering_flow_max(rp->steering);

        /* Without a datagram listener there is nothing to keep (and the table was created with 1 entry). */
        if (!c || c->flow_table_size == 0 || s->steering == STEERING_KERNEL || !config_has_datagram(c))
                return false;
        if (c->flow_table_size != max && c->flow_table_size != rp->flow_size_noted) {
                log_notice("FlowTableSize=%" PRIu32 " applies once the service is stopped and started again: the "
                           "flow table was created with %" PRIu32 " entr%s%s and is kept across reloads and rpsupd "
                           "restarts.", c->flow_table_size, max, max == 1 ? "y" : "ies",
                           max == 1 ? " (the service had no datagram listener then): flows are not kept until "
                                      "then" : "");
                rp->flow_size_noted = c->flow_table_size;
        }
        /* A table of one entry keeps no flow: every new flow would push the last one out. */
        return max > 1;
}

/* While the service stops, the policy is round-robin whatever it was: new connections must reach the
 * listeners held for them (stop_hold()), which the kernel's own choice would not prefer to the workers'. */
static int reuseport_steer(Strategy *st, Service *s) {
        Reuseport *rp = st->data;
        struct steer_set *builds;
        Generation *target = s->live ?: s->pending, *newest;
        bool stopping = s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED;
        /* A canary: the warm generation keeps the share the soaking one does not take. */
        bool canary = s->warm && s->canary > 0 && s->canary < 100;
        int r = 0;

        if (!rp->steering)
                return 0; /* the kernel hashes over every listener of the group */
        if (stopping && rp->stop_steered)
                return 0; /* keep what was set when the stop began: slots are going away one by one */

        builds = calloc(rp->n_groups ?: 1, sizeof(struct steer_set));
        if (!builds)
                return -ENOMEM;

        if (stopping) {
                /* New connections go to the socket unit's listener where there is one (systemd keeps it, and
                 * the slots' queues migrate into it at the end: stopped()), else to a listener rpsupd opens
                 * now and leaves in the fd store for the next rpsupd (stop_hold()): either way nothing new
                 * reaches the workers, which drain. The slots stay standby: for datagrams, and wherever no
                 * listener could be opened (the workers are then stopped at once, and new connections
                 * queue on their listeners, in the fd store). */
                rp->stop_drains = stop_hold(rp, s);
                FOREACH_GENERATION(g, s) {
                        add_socket_unit(rp, builds, g, SET_ACTIVE);
                        for (size_t i = 0; i < g->n_slots; i++)
                                add_slot(rp, builds, g->slots[i], SET_STANDBY);
                }
                for (size_t i = 0; i < rp->n_held; i++)
                        set_add(rp, builds, rp->held[i], rp->held_index[i], SET_ACTIVE);
                rp->stop_steered = true;
                /* Flows keep their workers while they drain (the newest generation's FlowTableSize=). */
                newest = target;
                if (!newest)
                        FOREACH_GENERATION(g, s)
                                newest = g;
                rp->flows_on = flows_wanted(rp, s, newest);
        } else {
                FOREACH_GENERATION(g, s)
                        for (size_t i = 0; i < g->n_slots; i++) {
                                Slot *slot = g->slots[i];
                                if (slot_is_serving(slot))
                                        add_slot(rp, builds, slot, SET_ACTIVE);
                                else if (canary && g == s->warm && slot_is_warm(slot))
                                        add_slot(rp, builds, slot, SET_PREVIOUS);
                                else if (g == target && !slot->retiring)
                                        add_slot(rp, builds, slot, SET_STANDBY);
                        }
                add_socket_unit(rp, builds, target, SET_STANDBY);
                rp->flows_on = flows_wanted(rp, s, target);
                for (size_t i = 0; i < rp->n_groups; i++) {
                        builds[i].previous_percent = builds[i].n_previous > 0 ? 100 - s->canary : 0;
                        /* The policy travels with the sets: a switch is this same one update per group. So
                         * does a shadow policy (computed, counted, not enforced). */
                        builds[i].policy = steer_policy(s->steering);
                        builds[i].shadow = s->shadow_runs ? steer_policy(s->shadow) + 1 : 0;
                }
        }

        for (size_t i = 0; i < rp->n_groups; i++) {
                Group *g = &rp->groups[i];
                struct steer_set *set = &builds[i];
                int k;

                /* A flow keeps its listener while the listener's worker lives, whatever the sets say. */
                set->flows = rp->flows_on;

                if (g->written && set_equal(&g->last, set))
                        continue;
                k = steering_write_group(rp->steering, &g->key, set);
                if (k < 0) {
                        r = k;
                        /* The workers would go on getting new connections: they are stopped at once. */
                        if (stopping)
                                rp->stop_drains = false;
                        continue;
                }
                g->last = *set;
                g->written = true;
        }
        free(builds);
        return r;
}

/* The time a handshake in flight may take: until the listener's last SYN-ACK retransmission has been
 * answered. With net.ipv4.tcp_synack_retries = r the retransmissions go out until 1 + 2 + ... + 2^(r-1)
 * seconds (31 s for the default 5), and the request lives until 2^(r+1) - 1 seconds (63 s): an ACK to the
 * last retransmission still completes the handshake, so the window is the latter. (A listener's own
 * TCP_SYNCNT cannot be told apart from the default through getsockopt(); rpsupd never sets it.) A shut
 * down listener lingers this long, so that they migrate instead of being reset. */
usec_t reuseport_handshake_window(void) {
        FILE *f;
        int retries = 5;

        f = fopen("/proc/sys/net/ipv4/tcp_synack_retries", "re");
        if (f) {
                if (fscanf(f, "%d", &retries) != 1)
                        retries = 5;
                fclose(f);
        }
        retries = MAX(1, MIN(retries, 10));
        return ((1ULL << (retries + 1)) - 1) * USEC_PER_SEC;
}

static bool config_has_stream(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type == SOCK_STREAM)
                        return true;
        return false;
}

usec_t reuseport_drain_window(const Config *c, bool flows) {
        bool stream = config_has_stream(c);

        if (c->drain != USEC_INFINITY)
                return c->drain;
        /* Datagrams only, without the flow table: what is already in the socket buffers. With it, flows
         * keep reaching the worker, which is asked to stop once they are quiet (FlowIdleSec=): as for TCP,
         * the window only bounds flows that never end. */
        if (!stream && !flows)
                return USEC_PER_SEC;
        return MAX(MIN(DRAIN_AUTO_USEC, c->stop_timeout), USEC_PER_SEC);
}

static void shut_down(SlotListeners *sl) {
        for (size_t i = 0; i < sl->n; i++)
                if (sl->listeners[i]->address.type == SOCK_STREAM)
                        /* Stops listening on the socket itself (not just our fd): it leaves the sockarray and
                         * the kernel migrates its queue through the program. Only ever once no worker holds
                         * it: a worker's accept() on it would fail with EINVAL. */
                        (void) shutdown(sl->listeners[i]->fd, SHUT_RD);
        sl->shut = true;
}

/* steer() took the slot out already: nothing new reaches it. Its worker keeps its listeners, serving what
 * is queued and what is open, until it is idle (slot_drain_state()) or the window ends. */
static usec_t reuseport_retire(Strategy *st, Slot *slot) {
        Reuseport *rp = st->data;

        const Config *c = slot->generation->config;

        /* Stopping without a listener to take the new connections: they would keep reaching the worker. */
        if (!slot->strategy_data || (rp->set->keep && !rp->stop_drains))
                return 0;
        /* A stop drains for StopTimeoutSec= at most, whatever DrainSec= says: with the SIGKILL bound after it,
         * a stop takes at most twice StopTimeoutSec=, which the unit's TimeoutStopSec= must allow. No
         * generation follows to keep datagram flows apart from: datagrams only get what they got without
         * the flow table (slot_drain_state() does not count flows then). */
        if (rp->set->keep)
                return MIN(reuseport_drain_window(c, false), c->stop_timeout);
        /* Whether flows keep reaching it is what the sets say now (a policy switched at run time included),
         * not what the config said. */
        return reuseport_drain_window(c, rp->flows_on && rp->steering);
}

/* A retiring slot's datagram listeners under the flow table: flows that reached them keep reaching them
 * while the worker lives. They are busy while their flow counters move: a flow datagram came within
 * FlowIdleSec= (a look reads one counter per listener; it never walks the table). The first look counts
 * any flow the listener ever took as just seen, so a worker that served flows gets FlowIdleSec= to show
 * they are over. */
static void slot_flows_look(Reuseport *rp, Slot *slot, SlotListeners *sl, SlotDrainState *ds) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        uint64_t count = 0;

        for (size_t i = 0; i < sl->n; i++) {
                struct steer_counters c;

                if (sl->listeners[i]->address.type != SOCK_STREAM &&
                    steering_counters(rp->steering, sl->index[i], &c) >= 0)
                        count += c.flow_hits + c.flow_new;
        }
        if (!sl->flow_looked || count != sl->flow_count) {
                if (count > 0)
                        sl->flow_seen_at = now;
                sl->flow_count = count;
                sl->flow_looked = true;
        }
        ds->flows = true;
        ds->flow_quiet = sl->flow_seen_at == 0 ? USEC_INFINITY : now > sl->flow_seen_at ? now - sl->flow_seen_at : 0;
        ds->flows_busy = ds->flow_quiet < slot->generation->config->flow_idle;
}

static int reuseport_slot_drain_state(Strategy *st, Slot *slot, pid_t pid, SlotDrainState *ret) {
        Reuseport *rp = st->data;
        SlotListeners *sl = slot->strategy_data;
        SocketUnitListeners *h = slot->generation->strategy_data;
        SlotDrainState ds = { .accept_queue = 0, .open_connections = 0 };
        int fds[2 * LISTEN_MAX];
        size_t n = 0, n_stream;
        bool datagrams = false;
        uint64_t open;
        int r;

        if (!sl) {
                *ret = ds; /* its listeners are gone: nothing waits for it there */
                return 0;
        }
        for (size_t i = 0; i < sl->n; i++) {
                uint32_t depth;

                if (sl->listeners[i]->address.type != SOCK_STREAM) {
                        /* Datagrams have no connections to count, and a request being answered cannot be
                         * seen: the drain window decides; with the flow table, its flows do. */
                        if (!rp->flows_on || !rp->steering || rp->set->keep)
                                ds.accept_queue = -1;
                        datagrams = true;
                        continue;
                }
                fds[n++] = sl->listeners[i]->fd;
                /* Shut down (its queue was moved away): nothing waits there; its connections still count. */
                if (sl->shut)
                        continue;
                if (ds.accept_queue >= 0) {
                        if (listener_accept_queue(sl->listeners[i], &depth, NULL) >= 0)
                                ds.accept_queue += depth;
                        else
                                ds.accept_queue = -1;
                }
        }
        /* Every other socket rpsupd gave the worker is not a connection either: its datagram listeners and
         * the socket unit's listeners (then a worker that holds nothing else needs no look at the kernel's
         * table). The workers looked at in this turn of the loop share that look. */
        n_stream = n;
        for (size_t i = 0; i < sl->n; i++)
                if (sl->listeners[i]->address.type != SOCK_STREAM)
                        fds[n++] = sl->listeners[i]->fd;
        for (size_t i = 0; h && i < h->n; i++)
                if (h->listeners[i])
                        fds[n++] = h->listeners[i]->fd;
        if (n_stream > 0) {
                /* Connections stored for the slot's next worker (FDSTORE=1) are served on by it. */
                _cleanup_free_ uint32_t *handed_on = NULL;
                size_t n_handed_on = 0;

                r = worker_fdstore_handed_on(st->fdstore, slot, &handed_on, &n_handed_on);
                if (r >= 0)
                        r = worker_connections_count_except(pid, fds, n, handed_on, n_handed_on,
                                                            DRAIN_CHECK_SHARE_USEC, &open);
        } else
                r = 0;
        if (r < 0) {
                if (r != -ESRCH && r != -E2BIG)
                        log_debug_errno(r, "Cannot count the open connections of pid %d: %m", (int) pid);
                ds.open_connections = -1; /* unknown: the drain window decides */
        } else
                ds.open_connections = n_stream > 0 ? (int64_t) open : 0;
        if (datagrams && rp->flows_on && rp->steering && !rp->set->keep)
                slot_flows_look(rp, slot, sl, &ds);
        *ret = ds;
        return 0;
}

static void set_remove(uint32_t *list, uint32_t *n, uint32_t index) {
        for (uint32_t i = 0; i < *n;)
                if (list[i] == index)
                        list[i] = list[--*n];
                else
                        i++;
}

/* Before a hung worker's listeners are shut down, its replacement's take their place in the sets (as
 * standby: the replacement is starting), so that what migrates out of them has somewhere to go even when
 * no other worker serves (one worker, or all of them hung); the next steer() recomputes every set. */
static void sets_swap(Reuseport *rp, const SlotListeners *old, const SlotListeners *fresh) {
        for (size_t i = 0; rp->steering && i < fresh->n && i < old->n; i++) {
                struct steer_group_key key;
                struct steer_set set;
                Group *g;

                if (steering_group_key(fresh->listeners[i]->fd, &key) < 0 || !(g = group_find(rp, &key)))
                        continue;
                if (g->written)
                        set = g->last;
                else if (steering_get_group(rp->steering, &key, &set) < 0)
                        continue;
                set_remove(set.active, &set.n_active, old->index[i]);
                set_remove(set.standby, &set.n_standby, old->index[i]);
                set_remove(set.previous, &set.n_previous, old->index[i]);
                set_remove(set.standby, &set.n_standby, fresh->index[i]);
                if (set.n_standby < STEER_SET_MAX)
                        set.standby[set.n_standby++] = fresh->index[i];
                if (steering_write_group(rp->steering, &key, &set) < 0)
                        continue;
                g->last = set;
                g->written = true;
        }
}

static int reuseport_evacuate(Strategy *st, Slot *slot, uint64_t new_id) {
        Reuseport *rp = st->data;
        SlotListeners *sl = slot->strategy_data, *fresh;
        _cleanup_free_ char *error = NULL;
        int r;

        if (!rp->migrate || !sl)
                return 0; /* drain: the queue waits for the replacement worker */

        /* Listeners of their own for the replacement, before the queue moves away from the old ones. They
         * get a new slot id: the old listeners' fd store entries go by the old one. */
        fresh = calloc(1, sizeof(SlotListeners));
        if (!fresh)
                return -ENOMEM;
        r = slot_listeners_open(rp, slot, new_id, fresh, &error);
        if (r < 0) {
                log_warning("Cannot give worker %u new listeners (%s); its queue waits for its replacement.",
                            slot->index, error ?: strerror(-r));
                free(fresh);
                return r;
        }
        /* The queue moves to the serving workers now (or, with none, to the replacement's listeners);
         * handshakes in flight follow when they complete. */
        sets_swap(rp, sl, fresh);
        slot_listeners_linger(rp, sl, reuseport_handshake_window());
        free(sl);
        slot->strategy_data = fresh;
        return 1;
}

/* A rolled-back generation's worker, or a retiring one that takes nothing: what is queued for it moves to
 * the serving workers now (its accept() fails with EINVAL from here on: it is being stopped). */
static void reuseport_abandon(Strategy *st, Slot *slot) {
        SlotListeners *sl = slot->strategy_data;

        if (sl && !sl->shut)
                shut_down(sl);
}

static bool reuseport_can_weigh(Strategy *st) {
        Reuseport *rp = st->data;

        /* A share per generation is the steering program's: without it the kernel picks by hash. */
        return rp->steering != NULL;
}

static int reuseport_probe_aim(Strategy *st, Slot *slot, size_t listen_index, uint16_t port, bool on) {
        Reuseport *rp = st->data;
        SlotListeners *sl = slot->strategy_data;

        if (!on)
                return rp->steering ? steering_probe_clear(rp->steering, port) : 0;
        /* Without the program the kernel picks any listener of the group; a datagram has no handshake to
         * aim (the program aims SYNs only). */
        if (!rp->steering || !sl || listen_index >= sl->n ||
            sl->listeners[listen_index]->address.type != SOCK_STREAM)
                return -EOPNOTSUPP;
        if (sl->shut)
                return -ESHUTDOWN;
        return steering_probe_aim(rp->steering, port, sl->index[listen_index]);
}

static int reuseport_slot_stats(Strategy *st, Slot *slot, SlotStats *ret) {
        Reuseport *rp = st->data;
        SlotListeners *sl = slot->strategy_data;
        SlotStats stats = { .accept_queue = -1 };

        for (size_t i = 0; sl && i < sl->n; i++) {
                struct steer_counters c;
                uint32_t depth;

                if (!sl->shut && listener_accept_queue(sl->listeners[i], &depth, NULL) >= 0)
                        stats.accept_queue = (stats.accept_queue < 0 ? 0 : stats.accept_queue) + depth;
                if (rp->steering && steering_counters(rp->steering, sl->index[i], &c) >= 0) {
                        stats.syns += c.syns; /* probes are not client traffic: counted apart */
                        stats.probes += c.probes;
                        stats.projected += c.shadow;
                        stats.migrations[MIGRATION_ACCEPT_QUEUE] += c.migrated_queue;
                        stats.migrations[MIGRATION_REQUEST_ACK] += c.migrated_ack;
                        stats.migrations[MIGRATION_REQUEST_TIMER] += c.migrated_timer;
                        stats.flow_hits += c.flow_hits;
                        stats.flow_new += c.flow_new;
                }
        }
        *ret = stats;
        return 0;
}

/* One step of the flow count: at most FLOW_COUNT_STEP entries (a few ms); at the end of the table the
 * count is published and the walk stops. */
static bool flow_walk_step(Reuseport *rp) {
        uint32_t count = 0;
        bool done = false;
        int r;

        r = steering_flow_count_step(rp->steering, &rp->walk, FLOW_COUNT_STEP, &count, &done);
        if (r < 0) {
                log_debug_errno(r, "Cannot count the flows in the flow table: %m");
                rp->walk = (SteeringFlowWalk) {};
                return true;
        }
        if (done) {
                rp->flow_count = count;
                rp->flow_counted = true;
                rp->flow_counted_at = now_usec(CLOCK_MONOTONIC);
        }
        return done;
}

static int on_flow_walk(sd_event_source *source, void *userdata) {
        if (flow_walk_step(userdata))
                (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
        return 0;
}

/* Status or metrics asked for the flow count. A walk of a large table takes long (a million entries: about
 * 0.3 s), so it never runs in one go: the first step runs now (a table of up to FLOW_COUNT_STEP entries is
 * counted at once), the rest one step per turn of the event loop, at idle priority (anything else pending
 * goes first). A walk starts only when the last count is older than FLOW_COUNT_USEC; nothing runs once it
 * is done until someone asks again. */
static void flow_count_ask(Reuseport *rp, sd_event *event) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        int r;

        if (rp->walk_source && sd_event_source_get_enabled(rp->walk_source, NULL) > 0)
                return; /* a walk is going on */
        if (rp->flow_counted && now - rp->flow_counted_at < FLOW_COUNT_USEC)
                return;
        if (flow_walk_step(rp) || !event)
                return;
        if (!rp->walk_source) {
                r = sd_event_add_defer(event, &rp->walk_source, on_flow_walk, rp);
                if (r < 0) {
                        log_debug_errno(r, "Cannot count the flows in the flow table: %m");
                        rp->walk = (SteeringFlowWalk) {};
                        return;
                }
                (void) sd_event_source_set_priority(rp->walk_source, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_description(rp->walk_source, "flow-count");
        }
        (void) sd_event_source_set_enabled(rp->walk_source, SD_EVENT_ON);
}

/* The flow table for status and metrics: its totals (a counter read per listener held), and the last
 * complete count of the flows it holds (flow_count_ask()). */
static void flow_stats(Reuseport *rp, sd_event *event, SteeringStats *stats) {
        stats->flows_on = rp->flows_on;
        stats->flow_max = steering_flow_max(rp->steering);
        stats->flow_hits = rp->flow_hits_gone;
        stats->flow_new = rp->flow_new_gone;
        for (uint32_t i = 1; i < STEER_LISTENERS_MAX; i++) {
                struct steer_counters c;

                if (rp->used[i] && steering_counters(rp->steering, i, &c) >= 0) {
                        stats->flow_hits += c.flow_hits;
                        stats->flow_new += c.flow_new;
                }
        }
        flow_count_ask(rp, event);
        stats->flows = rp->flow_counted ? (int64_t) rp->flow_count : -1;
        stats->flows_counted_at = rp->flow_counted ? rp->flow_counted_at : 0;
}

static int reuseport_steering_stats(Strategy *st, SteeringStats *ret) {
        Reuseport *rp = st->data;
        struct steer_counters c;
        SteeringStats stats = { .foreign = 0 };
        uint64_t own[STEER_LISTENERS_MAX];
        size_t n_own = 0;
        int r;

        if (!rp->steering)
                return -EOPNOTSUPP;
        if (steering_counters(rp->steering, 0, &c) >= 0) {
                stats.kernel = c.kernel;
                stats.flow_lost = c.flow_lost;
        }
        flow_stats(rp, st->event, &stats);
        for (Listener *l = rp->set->listeners; l && n_own < ELEMENTSOF(own); l = l->next) {
                struct stat sb;
                if (fstat(l->fd, &sb) >= 0)
                        own[n_own++] = (uint64_t) sb.st_ino;
        }
        for (size_t i = 0; i < rp->n_groups; i++) {
                unsigned foreign;

                if (rp->groups[i].key.protocol != IPPROTO_TCP)
                        continue;
                r = reuseport_group_foreign(&rp->groups[i].key, own, n_own, &foreign);
                if (r < 0) {
                        stats.foreign = -1;
                        break;
                }
                stats.foreign += foreign;
        }
        *ret = stats;
        return 0;
}

static void reuseport_free(Strategy *st) {
        Reuseport *rp = st->data;

        if (!rp)
                return;
        for (size_t i = 0; i < rp->n_lingering; i++)
                listener_unref(rp->lingering[i].listener);
        free(rp->lingering);
        sd_event_source_disable_unref(rp->walk_source);
        for (size_t i = 0; i < rp->n_held; i++)
                listener_unref(rp->held[i]);
        steering_free(rp->steering);
        free(rp);
}

/* drain and migrate differ only in evacuate(), which looks at Reuseport.migrate. */
static const StrategyOps reuseport_ops = {
        .generation_open = reuseport_generation_open,
        .generation_close = reuseport_generation_close,
        .slot_open = reuseport_slot_open,
        .slot_close = reuseport_slot_close,
        .slot_fds = reuseport_slot_fds,
        .steer = reuseport_steer,
        .retire = reuseport_retire,
        .evacuate = reuseport_evacuate,
        .probe_aim = reuseport_probe_aim,
        .can_weigh = reuseport_can_weigh,
        .abandon = reuseport_abandon,
        .slot_stats = reuseport_slot_stats,
        .steering_stats = reuseport_steering_stats,
        .slot_drain_state = reuseport_slot_drain_state,
        .stopped = reuseport_stopped,
        .orphan = reuseport_orphan,
        .next_deadline = reuseport_next_deadline,
        .tick = reuseport_tick,
        .free = reuseport_free,
};


int strategy_reuseport_new(StrategyKind kind, ListenerSet *set, InheritedFds *inherited, bool without_bpf,
                           uint32_t flow_max, const char *reason, Strategy **ret, char **ret_error) {
        int fds[_STEERING_FD_MAX], old_listeners = -EBADF;
        bool have_all = true, have_any = false, restored = false;
        Reuseport *rp;
        Strategy *st;
        _cleanup_free_ char *error = NULL;
        int r;

        rp = calloc(1, sizeof(Reuseport));
        if (!rp)
                return -ENOMEM;
        rp->set = set;
        rp->migrate = kind == STRATEGY_MIGRATE;
        rp->used[0] = 1; /* index 0 holds the "refused" counter */

        /* After a restart: the program and maps the previous rpsupd stored, with every listener and set
         * still in them. */
        for (int i = 0; i < _STEERING_FD_MAX; i++) {
                fds[i] = inherited ? inherited_fds_claim(inherited, steering_fd_names[i]) : -EBADF;
                have_all = have_all && fds[i] >= 0;
                have_any = have_any || fds[i] >= 0;
        }
        if (without_bpf) {
                for (int i = 0; i < _STEERING_FD_MAX; i++)
                        safe_close(fds[i]);
                goto done;
        }
        /* An older rpsupd's sockarray holds the listeners it steered: kept, to take them out of it. */
        if (fds[STEERING_LISTENERS] >= 0)
                old_listeners = fcntl(fds[STEERING_LISTENERS], F_DUPFD_CLOEXEC, 3);
        if (have_all) {
                r = steering_restore(fds, &rp->steering, &error);
                if (r < 0)
                        log_warning_errno(r, "Loading the steering program afresh: %s.", error ?: strerror(-r));
        } else {
                if (old_listeners >= 0)
                        log_warning("Loading the steering program afresh: the fd store holds an older rpsupd's.");
                for (int i = 0; i < _STEERING_FD_MAX; i++)
                        safe_close(fds[i]);
        }
        if (!rp->steering) {
                /* FlowTableSize=0: the table is off (steer() says so in every set), and as small as can be. */
                r = steering_load(&rp->steering, MAX(flow_max, 1u), ret_error);
                if (r < 0) {
                        safe_close(old_listeners);
                        free(rp);
                        return r;
                }
                if (old_listeners >= 0)
                        (void) steering_take_over_from(rp->steering, TAKE_FD(old_listeners));
                for (int i = 0; i < _STEERING_FD_MAX; i++) {
                        /* An older rpsupd's under the same name would be restored next time. */
                        if (have_any)
                                (void) fdstore_remove(steering_fd_names[i]);
                        r = fdstore_add(steering_fd(rp->steering, i), steering_fd_names[i]);
                        if (r < 0)
                                log_warning_errno(r, "Failed to store the steering program's %s in systemd's fd "
                                                  "store; a restarted rpsupd will load it afresh: %m",
                                                  steering_fd_names[i]);
                }
        } else {
                log_info("Took over the steering program and its maps from the previous rpsupd.");
                restored = true;
        }
        safe_close(old_listeners);

done:
        st = calloc(1, sizeof(Strategy));
        if (!st) {
                reuseport_free(&(Strategy) { .data = rp });
                return -ENOMEM;
        }
        st->kind = kind;
        st->ops = &reuseport_ops;
        st->data = rp;
        st->steering_restored = restored;
        st->reason = strdup(reason);
        if (!st->reason) {
                reuseport_free(st);
                free(st);
                return -ENOMEM;
        }
        *ret = st;
        return 0;
}
