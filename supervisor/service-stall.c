/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stall detection, the arithmetic: a serving worker stalls when connections wait in its own accept queue and it takes none of them for
 * StallSec=. Only strategies with per-worker queues can tell (drain, migrate). While every queue is empty
 * nothing is sampled (the daemon watches the queues and calls service_queues_busy()); once one is not,
 * the queues are sampled until they are all empty again. The watching is stall-watch.c's. */
#include <inttypes.h>

#include "rpsup-limits.h"
#include "log.h"
#include "service-internal.h"

usec_t stall_timeout(const Config *c) {
        return c->stall == USEC_INFINITY ? STALL_AUTO_USEC : c->stall;
}

static usec_t stall_period(const Config *c) {
        return MAX(MIN(stall_timeout(c) / 4, USEC_PER_SEC), 50 * USEC_PER_MSEC);
}

/* Under the kernel steering policy the program does not choose (nor count) the new connections, so what a
 * worker took cannot be told from its queue: no stall is judged then. */
static bool stall_detection_on(Service *s) {
        return s->live && stall_timeout(s->live->config) > 0 && s->state != SERVICE_STOPPING &&
               s->state != SERVICE_STOPPED && s->steering != STEERING_KERNEL;
}

void service_queues_busy(Service *s) {
        if (!stall_detection_on(s) || s->sampling)
                return;
        s->sampling = true;
        s->next_sample = now(s); /* the first sample now: it is the baseline */
        changed(s);
}

/* One sample of a serving slot's queue. Between two samples the worker took what was queued, plus what
 * came in (new connections steered to it, connections migrated to it), minus what is queued now; a worker
 * that took nothing while its queue was not empty at both samples is stalled since the first of them. */
static void slot_sample(Slot *slot, const SlotStats *st, usec_t t) {
        /* What came into the queue: client connections and probes alike. */
        uint64_t in = st->syns + st->probes + st->migrations[MIGRATION_ACCEPT_QUEUE] + st->migrations[MIGRATION_REQUEST_ACK] +
                      st->migrations[MIGRATION_REQUEST_TIMER];

        if (slot->sampled) {
                int64_t taken = (int64_t) slot->sample_queue + (int64_t) (in - slot->sample_in) - st->accept_queue;

                if (st->accept_queue > 0 && slot->sample_queue > 0 && taken <= 0) {
                        if (slot->stall_since == 0)
                                slot->stall_since = slot->sample_at;
                } else
                        slot->stall_since = 0;
        }
        slot->sampled = true;
        slot->sample_at = t;
        slot->sample_queue = (uint64_t) st->accept_queue;
        slot->sample_in = in;
}

static void stall_sample(Service *s, usec_t t) {
        Generation *g = s->live;
        usec_t timeout = stall_timeout(g->config);
        bool waiting = false;

        for (size_t i = 0; i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                SlotStats st = { .accept_queue = -1 };

                if (!slot_is_serving(slot) || s->strategy->ops->slot_stats(s->strategy, slot, &st) < 0 ||
                    st.queue_shared || st.accept_queue < 0) {
                        slot->sampled = false;
                        slot->stall_since = 0;
                        continue;
                }
                if (st.accept_queue > 0)
                        waiting = true;
                slot_sample(slot, &st, t);
                if (slot->stall_since > 0 && t - slot->stall_since >= timeout) {
                        service_slot_stalled(s, slot);
                        waiting = true;
                        break; /* the slots changed; the next sample goes on */
                }
        }
        if (waiting)
                s->next_sample = usec_add(t, stall_period(g->config));
        else {
                /* All quiet: nothing to sample until a queue fills again. */
                s->sampling = false;
                s->next_sample = USEC_INFINITY;
                for (size_t i = 0; i < g->n_slots; i++) {
                        g->slots[i]->sampled = false;
                        g->slots[i]->stall_since = 0;
                }
                if (s->host->watch_queues)
                        s->host->watch_queues(s->host_userdata);
        }
}

/* Sampling is due (service_tick()). */
void stall_tick(Service *s, usec_t t) {
        if (!s->sampling || s->next_sample > t)
                return;
        if (stall_detection_on(s))
                stall_sample(s, t);
        else {
                s->sampling = false;
                s->next_sample = USEC_INFINITY;
        }
}
