/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "retirement.h"

static void delta(const NetstatCounters *a, const NetstatCounters *b, NetstatCounters *ret) {
        ret->listen_overflows = b->listen_overflows - a->listen_overflows;
        ret->listen_drops = b->listen_drops - a->listen_drops;
        ret->migrate_req_success = b->migrate_req_success - a->migrate_req_success;
        ret->migrate_req_failure = b->migrate_req_failure - a->migrate_req_failure;
}

static Retirement *find(Retirements *r, uint64_t generation) {
        for (unsigned i = 0; i < r->n; i++)
                if (r->list[i].generation == generation)
                        return &r->list[i];
        return NULL;
}

void retirements_begin(Retirements *r, uint64_t generation) {
        Retirement *e;

        if (find(r, generation))
                return;
        if (r->n == RETIREMENTS_MAX) {
                memmove(r->list, r->list + 1, sizeof(Retirement) * (RETIREMENTS_MAX - 1));
                r->n--;
        }
        e = &r->list[r->n++];
        *e = (Retirement) { .generation = generation, .began = now_usec(CLOCK_MONOTONIC) };
        (void) netstat_read(&e->at_begin);
}

const Retirement *retirements_end(Retirements *r, uint64_t generation) {
        Retirement *e = find(r, generation);
        NetstatCounters now = {};

        if (!e || e->ended)
                return e;
        if (netstat_read(&now) >= 0)
                delta(&e->at_begin, &now, &e->delta);
        e->ended = now_usec(CLOCK_MONOTONIC);
        return e;
}

const Retirement *retirements_get(Retirements *r, uint64_t generation) {
        Retirement *e = find(r, generation);
        NetstatCounters now = {};

        if (e && !e->ended && netstat_read(&now) >= 0)
                delta(&e->at_begin, &now, &e->delta);
        return e;
}

const Retirement *retirements_last_finished(const Retirements *r) {
        for (unsigned i = r->n; i > 0; i--)
                if (r->list[i - 1].ended)
                        return &r->list[i - 1];
        return NULL;
}
