/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The arithmetic of the balance figures (balance.c takes the samples): a worker's new connections over the
 * last minute, from samples of the steering program's cumulative counter, and the imbalance and
 * coefficient of variation of such counts over a generation's workers.
 *
 * A BalanceRing keeps what the counter gained per period of BALANCE_PERIOD_USEC (5 s) for the last
 * BALANCE_PERIODS periods: the current one and the 12 before it, 13 × 8 bytes. A sample at time t puts
 * what the counter gained since the previous sample into the period t falls in, where period k holds the
 * times (k × 5 s, (k + 1) × 5 s]: a sample taken on the boundary closes the period that ends there. The
 * count at t is the sum of the current period and the 12 before it: the connections of the last 60 s
 * plus those of the part of the 13th period before them, that is of the last 60 to 65 s, provided that a
 * sample was taken on (or soon after) the boundary of each period in which the counter moved. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

#define BALANCE_PERIOD_USEC (5 * USEC_PER_SEC)
#define BALANCE_WINDOW_USEC (60 * USEC_PER_SEC)
#define BALANCE_PERIODS ((size_t) (BALANCE_WINDOW_USEC / BALANCE_PERIOD_USEC) + 1)

typedef struct BalanceRing {
        uint64_t counts[BALANCE_PERIODS]; /* by period number modulo BALANCE_PERIODS */
        uint64_t newest;                  /* the period of the newest sample */
        uint64_t last;                    /* the counter at the newest sample */
        bool started;
} BalanceRing;

/* The period a time falls in. */
uint64_t balance_period(usec_t t);
/* The first sample: what the counter holds already is not counted (it came at a time not known). */
void balance_ring_start(BalanceRing *r, uint64_t counter, usec_t t);
/* The counter restarts from 0 (its listeners were replaced): the next sample counts all it holds. */
void balance_ring_restart(BalanceRing *r);
/* A sample; returns what the counter gained since the previous one. A counter below the previous sample
 * was restarted since: all it holds is new. A sample older than the newest goes to the newest period. */
uint64_t balance_ring_sample(BalanceRing *r, uint64_t counter, usec_t t);
/* The connections of the last minute at t (t at or after the newest sample), with the counter as it is at
 * t (what it gained since the newest sample counts too). */
uint64_t balance_ring_last_minute(const BalanceRing *r, uint64_t counter, usec_t t);

/* max/min of counts: 0 when nothing was counted (no count, or all 0), BALANCE_IMBALANCE_UNBOUNDED when a
 * count is 0 while another is not (max/min has no bound; JSON has no infinity). */
#define BALANCE_IMBALANCE_UNBOUNDED (-1.0)

typedef struct BalanceFigures {
        size_t n;               /* counts */
        uint64_t total, min, max;
        double imbalance;       /* max/min, as above */
        double cv;              /* coefficient of variation: the population standard deviation over the mean;
                                 * 0 when nothing was counted */
} BalanceFigures;

void balance_figures(const uint64_t *counts, size_t n, BalanceFigures *ret);
