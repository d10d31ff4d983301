/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a shadow policy shows (status and metrics): per worker, the new connections it got and the ones the
 * shadow policy would have sent it, since the shadow's window began, their shares of all the slots' counts,
 * and the imbalance (max/min) of both over the live generation's serving workers. */

#include "control-status.h"

typedef struct ShadowSlot {
        uint64_t actual;        /* new connections steered to the slot in the window */
        uint64_t projected;     /* new connections the shadow policy would have steered to it */
} ShadowSlot;

/* The imbalance of counts: max/min; 0 when none was counted, SHADOW_IMBALANCE_UNBOUNDED when a worker got
 * none while another got some (max/min has no bound then; JSON has no infinity). */
#define SHADOW_IMBALANCE_UNBOUNDED (-1.0)

typedef struct ShadowSummary {
        bool runs;
        uint64_t actual;        /* over every slot */
        uint64_t projected;
        unsigned workers;       /* serving workers of the live generation, over which the imbalance is taken */
        double imbalance_actual;
        double imbalance_projected;
} ShadowSummary;

void shadow_slot(const StatusView *v, const Slot *slot, const SlotStats *stats, ShadowSlot *ret);
void shadow_summary(const StatusView *v, ShadowSummary *ret);
/* A count's share of a total, 0..1 (0 for a total of 0). */
double shadow_share(uint64_t n, uint64_t total);
