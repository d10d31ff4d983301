/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* handoff: one listener per configured address, held by rpsupd and inherited by every worker of every
 * generation. Nothing ever closes it while the service runs, so nothing queued on it is lost; the
 * generations take turns by starting and stopping their workers: once the new generation is ready the
 * old one is asked to stop, and everything still in the shared accept queue is taken by the new one. */

#include <stdio.h>
#include <string.h>

#include "listener.h"
#include "log.h"
#include "strategy-handoff.h"

typedef struct HandoffGeneration {
        Listener **listeners;
        size_t n;
} HandoffGeneration;

static HandoffGeneration *handoff_generation_free(HandoffGeneration *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n; i++)
                listener_unref(h->listeners[i]);
        free(h->listeners);
        free(h);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(HandoffGeneration *, handoff_generation_free);

static int handoff_generation_open(Strategy *st, Generation *g, char **ret_error) {
        _cleanup_(handoff_generation_freep) HandoffGeneration *h = NULL;
        ListenerSet *set = st->data;
        Config *c = g->config;
        int r;

        h = calloc(1, sizeof(HandoffGeneration));
        if (!h)
                return -ENOMEM;
        h->listeners = calloc(c->n_listen ?: 1, sizeof(Listener *));
        if (!h->listeners)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_listen; i++) {
                r = listener_acquire(set, &c->listen[i], c->backlog, c->fdname, 0, false, &h->listeners[i],
                                     ret_error);
                if (r < 0)
                        return r;
                h->n++;
        }
        g->strategy_data = TAKE_PTR(h);
        return 0;
}

static void handoff_generation_close(Strategy *st, Generation *g) {
        g->strategy_data = handoff_generation_free(g->strategy_data);
}

static int handoff_slot_open(Strategy *st, Slot *slot, char **ret_error) {
        return 0;
}

static void handoff_slot_close(Strategy *st, Slot *slot) {
}

static int handoff_slot_fds(Strategy *st, Slot *slot, FdList *ret) {
        HandoffGeneration *h = slot->generation->strategy_data;
        int r;

        for (size_t i = 0; i < h->n; i++) {
                r = fd_list_add(ret, h->listeners[i]->fd, slot->generation->config->fdname);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int handoff_steer(Strategy *st, Service *s) {
        /* One shared accept queue: whoever accepts, gets it. Nothing to steer. */
        return 0;
}

static usec_t handoff_retire(Strategy *st, Slot *slot) {
        /* Stop the worker at once: the listener stays open in rpsupd, so whatever is queued on it is
         * accepted by the workers that remain. */
        return 0;
}

static int handoff_evacuate(Strategy *st, Slot *slot, uint64_t new_id) {
        /* The queue is shared: the other workers take it. */
        return 0;
}

static int handoff_slot_stats(Strategy *st, Slot *slot, SlotStats *ret) {
        HandoffGeneration *h = slot->generation->strategy_data;
        SlotStats stats = { .accept_queue = -1, .queue_shared = true };

        for (size_t i = 0; h && i < h->n; i++) {
                uint32_t depth;
                if (listener_accept_queue(h->listeners[i], &depth, NULL) >= 0)
                        stats.accept_queue = (stats.accept_queue < 0 ? 0 : stats.accept_queue) + depth;
        }
        *ret = stats;
        return 0;
}

static int handoff_slot_drain_state(Strategy *st, Slot *slot, pid_t pid, SlotDrainState *ret) {
        /* One shared queue: nothing in it is this worker's more than another's, and a worker cannot be
         * steered away from it. Its stop waits for nothing (retire() says 0). */
        return -EOPNOTSUPP;
}

static void handoff_free(Strategy *st) {
}

static const StrategyOps handoff_ops = {
        .generation_open = handoff_generation_open,
        .generation_close = handoff_generation_close,
        .slot_open = handoff_slot_open,
        .slot_close = handoff_slot_close,
        .slot_fds = handoff_slot_fds,
        .steer = handoff_steer,
        .retire = handoff_retire,
        .evacuate = handoff_evacuate,
        .slot_stats = handoff_slot_stats,
        .slot_drain_state = handoff_slot_drain_state,
        .free = handoff_free,
};

int strategy_handoff_new(ListenerSet *set, const char *reason, Strategy **ret) {
        Strategy *st = calloc(1, sizeof(Strategy));

        if (!st)
                return -ENOMEM;
        st->kind = STRATEGY_HANDOFF;
        st->ops = &handoff_ops;
        st->data = set;
        st->reason = strdup(reason ?: "configured");
        if (!st->reason) {
                free(st);
                return -ENOMEM;
        }
        *ret = st;
        return 0;
}
