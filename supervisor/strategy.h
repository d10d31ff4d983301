/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How listeners change hands: the one interface behind which handoff, drain and migrate live. The
 * generation logic (service.c) calls these hooks and never asks which strategy runs.
 *
 *  handoff  one listener per address, held by rpsupd, inherited by every worker of every generation.
 *  drain    one SO_REUSEPORT listener per worker slot, steered by BPF; retiring = out of the active set,
 *           then the worker keeps accepting what is queued and finishes what is open, until it is idle
 *           (slot_drain_state()) or the drain window ends; once it is gone, rpsupd shuts its copy down and
 *           whatever is left migrates to the serving workers.
 *  migrate  retires the same way; a hung worker's (evacuate()) queue moves to the serving workers at once,
 *           where drain leaves it for the replacement. */

#include <systemd/sd-event.h>

#include "config.h"
#include "service.h"

#define FD_LIST_MAX 64

typedef struct FdList {
        int fds[FD_LIST_MAX];
        const char *names[FD_LIST_MAX];
        size_t n;
} FdList;

typedef enum MigrationKind {
        MIGRATION_ACCEPT_QUEUE, /* an established connection moved out of a closing listener's queue */
        MIGRATION_REQUEST_ACK,  /* a handshake in flight moved when the client's final ACK came */
        MIGRATION_REQUEST_TIMER,/* a handshake in flight moved when its SYN-ACK timer fired */
        _MIGRATION_KIND_MAX,
} MigrationKind;

typedef struct SlotStats {
        int64_t accept_queue;   /* connections waiting to be accepted; -1: unknown */
        bool queue_shared;      /* the queue is shared by all workers (handoff) */
        uint64_t syns;          /* new connections steered to the slot */
        uint64_t probes;        /* readiness probe connections aimed at the slot (not client traffic) */
        uint64_t projected;     /* new connections the shadow policy would have steered to the slot */
        uint64_t migrations[_MIGRATION_KIND_MAX]; /* connections migrated into the slot's listeners */
        uint64_t flow_hits;     /* datagrams the flow table steered to the slot (flows it had served) */
        uint64_t flow_new;      /* flows whose first datagram the slot took (entered in the flow table) */
} SlotStats;

typedef struct SlotDrainState {
        int64_t accept_queue;     /* connections waiting in the slot's listeners; -1: unknown */
        int64_t open_connections; /* connections the worker (and its children) still have open on them; -1:
                                   * unknown */
        bool flows;               /* it has datagram listeners and the flow table is on: flows may still reach
                                   * them; then: */
        bool flows_busy;          /* a flow's datagram reached them within FlowIdleSec=: not idle */
        usec_t flow_quiet;        /* since the last flow datagram seen reaching them (USEC_INFINITY: none) */
} SlotDrainState;

/* What the steering program did that no slot's counters show. */
typedef struct SteeringStats {
        uint64_t kernel;        /* new connections left to the kernel's choice (steering policy kernel) */
        int64_t foreign;        /* TCP listeners in the reuseport groups that are not rpsupd's; -1: unknown */
        /* The datagram flow table: */
        bool flows_on;          /* datagrams of known flows go to their listener (FlowTableSize= > 0, policy not
                                 * kernel) */
        uint32_t flow_max;      /* its size, fixed when it was created */
        int64_t flows;          /* flows in it at the last complete count; -1: none yet */
        usec_t flows_counted_at; /* when that count ended (CLOCK_MONOTONIC; 0: none yet) */
        uint64_t flow_hits;     /* datagrams steered by it (of listeners open now, and of those gone) */
        uint64_t flow_new;      /* flows entered in it */
        uint64_t flow_lost;     /* datagrams of a flow whose listener was gone: steered afresh, re-entered */
} SteeringStats;

typedef struct StrategyOps {
        /* A generation is created from a config: acquire what it needs (listeners for its addresses).
         * On failure sets *ret_error to what went wrong (caller frees). */
        int (*generation_open)(Strategy *st, Generation *g, char **ret_error);
        void (*generation_close)(Strategy *st, Generation *g);
        /* A slot is created (on start, reload, scale-out, adoption) or is gone for good. */
        int (*slot_open)(Strategy *st, Slot *slot, char **ret_error);
        void (*slot_close)(Strategy *st, Slot *slot);
        /* What a worker of this slot gets as LISTEN_FDS/LISTEN_FDNAMES (borrowed). */
        int (*slot_fds)(Strategy *st, Slot *slot, FdList *ret);
        /* Make the kernel's steering match the service: new connections go to the serving slots of the
         * live generation (slot_is_serving()); during a canary (Service.warm and Service.canary > 0),
         * Service.canary percent of them, and the rest to the warm generation's slots (slot_is_warm()).
         * Migrated connections go to the serving slots. Called after anything changed which slots serve. */
        int (*steer)(Strategy *st, Service *s);
        /* The slot takes no new connections from now on (steer() already ran; when the service stops,
         * steer() sends new connections where the next rpsupd finds them, if it can). Returns how long its
         * worker may keep accepting and serving before it is asked to stop (the drain deadline; with
         * slot_drain_state(), it is asked as soon as it is idle): 0 for at once. A listener a worker still
         * holds is never shut down under it (its accept() would fail): that waits for slot_close(). */
        usec_t (*retire)(Strategy *st, Slot *slot);
        /* The slot's generation is rolled back (optional): its worker is not to be trusted with what is
         * queued for it: move that to the serving workers now where the strategy can (migrate); the worker
         * is stopped now. Called after steer() took the slot out. */
        void (*abandon)(Strategy *st, Slot *slot);
        /* The slot's worker is replaced because it hangs (stall, watchdog): move what is queued for it to
         * the serving workers where the strategy can (migrate), and give the slot fresh listeners, named
         * by new_id (the service makes it the slot's id then). Returns > 0 if that happened. Called after
         * steer() took the slot out. */
        int (*evacuate)(Strategy *st, Slot *slot, uint64_t new_id);
        /* ReadyProbe= (optional): from now on (on) or no longer (!on), a connection to the address of the
         * config's listen[listen_index] from local port `port` (host byte order) reaches this slot's worker,
         * whichever slots take new connections. -EOPNOTSUPP: connections cannot be aimed at one worker
         * (handoff: any worker may take it). */
        int (*probe_aim)(Strategy *st, Slot *slot, size_t listen_index, uint16_t port, bool on);
        /* Whether new connections can be shared out between two generations by a percentage (a canary;
         * optional: without it, they cannot). */
        bool (*can_weigh)(Strategy *st);
        /* A retiring slot's worker drains (optional): what it still has to serve, so that it is asked to stop
         * as soon as it is idle. -EOPNOTSUPP: the strategy cannot tell per worker (handoff). */
        int (*slot_drain_state)(Strategy *st, Slot *slot, pid_t pid, SlotDrainState *ret);
        /* The steering program's own counts (optional; -EOPNOTSUPP without the program). */
        int (*steering_stats)(Strategy *st, SteeringStats *ret);
        /* What the kernel says about the slot's listeners: accept queue, connections steered to it. */
        int (*slot_stats)(Strategy *st, Slot *slot, SlotStats *ret);
        /* rpsupd is about to exit after a stop (optional): leave the listeners as the next rpsupd (or
         * systemd, which keeps a socket unit's listener) should find them. */
        void (*stopped)(Strategy *st);
        /* A listening socket from the fd store that no slot claimed (its slot is gone): retire it the way
         * the strategy retires a slot's listener (optional). Returns > 0 if it took the fd. */
        int (*orphan)(Strategy *st, int fd);
        /* Work the strategy has scheduled itself (optional): the earliest deadline, and running it. */
        usec_t (*next_deadline)(Strategy *st);
        void (*tick)(Strategy *st, usec_t now);
        void (*free)(Strategy *st);
} StrategyOps;

struct Strategy {
        StrategyKind kind;
        const StrategyOps *ops;
        void *data;   /* the implementation's state */
        char *reason; /* why this strategy runs (for status) */
        sd_event *event; /* rpsupd's event loop, for work the strategy spreads over its turns (NULL: none) */
        /* The workers' fd store: the sockets in it are handed on to a slot's next worker, not connections a
         * retiring worker must finish (NULL: none). */
        struct WorkerFdStore *fdstore;
        /* The steering program and its maps, counters included, are the previous rpsupd's (from the fd
         * store); false: loaded afresh (its counters start from 0), or none. */
        bool steering_restored;
};

Strategy *strategy_free(Strategy *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(Strategy *, strategy_free);

static inline int fd_list_add(FdList *l, int fd, const char *name) {
        if (l->n >= FD_LIST_MAX)
                return -E2BIG;
        l->fds[l->n] = fd;
        l->names[l->n] = name;
        l->n++;
        return 0;
}
