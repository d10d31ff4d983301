/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control-shadow.h"

void shadow_slot(const StatusView *v, const Slot *slot, const SlotStats *stats, ShadowSlot *ret) {
        *ret = (ShadowSlot) {};
        if (v->service->shadow_runs)
                slot_shadow_counts(slot, stats, &ret->actual, &ret->projected);
}

double shadow_share(uint64_t n, uint64_t total) {
        return total > 0 ? (double) n / (double) total : 0.0;
}

static double imbalance(uint64_t max, uint64_t min, unsigned n) {
        if (n == 0 || max == 0)
                return 0.0;
        if (min == 0)
                return SHADOW_IMBALANCE_UNBOUNDED;
        return (double) max / (double) min;
}

void shadow_summary(const StatusView *v, ShadowSummary *ret) {
        Service *s = v->service;
        ShadowSummary sum = { .runs = s->shadow_runs };
        uint64_t max_a = 0, min_a = UINT64_MAX, max_p = 0, min_p = UINT64_MAX;

        if (!sum.runs) {
                *ret = sum;
                return;
        }
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        SlotStats st = { .accept_queue = -1 };
                        ShadowSlot x;

                        if (!v->strategy->ops->slot_stats || v->strategy->ops->slot_stats(v->strategy, slot, &st) < 0)
                                continue;
                        shadow_slot(v, slot, &st, &x);
                        sum.actual += x.actual;
                        sum.projected += x.projected;
                        if (g != s->live || !slot_is_serving(slot))
                                continue;
                        sum.workers++;
                        max_a = MAX(max_a, x.actual);
                        min_a = MIN(min_a, x.actual);
                        max_p = MAX(max_p, x.projected);
                        min_p = MIN(min_p, x.projected);
                }
        sum.imbalance_actual = imbalance(max_a, min_a, sum.workers);
        sum.imbalance_projected = imbalance(max_p, min_p, sum.workers);
        *ret = sum;
}
