/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include "balance-ring.h"
#include "macro.h"

uint64_t balance_period(usec_t t) {
        /* Period k is (k × P, (k + 1) × P]: a sample on a boundary closes the period that ends there. */
        return t == 0 ? 0 : (t - 1) / BALANCE_PERIOD_USEC;
}

void balance_ring_start(BalanceRing *r, uint64_t counter, usec_t t) {
        *r = (BalanceRing) { .newest = balance_period(t), .last = counter, .started = true };
}

void balance_ring_restart(BalanceRing *r) {
        r->last = 0;
}

/* Moves the newest period on to p, emptying the periods passed over. */
static void advance(BalanceRing *r, uint64_t p) {
        if (p <= r->newest)
                return;
        if (p - r->newest >= BALANCE_PERIODS)
                memset(r->counts, 0, sizeof(r->counts));
        else
                for (uint64_t q = r->newest + 1; q <= p; q++)
                        r->counts[q % BALANCE_PERIODS] = 0;
        r->newest = p;
}

static uint64_t gained(const BalanceRing *r, uint64_t counter) {
        return counter >= r->last ? counter - r->last : counter;
}

uint64_t balance_ring_sample(BalanceRing *r, uint64_t counter, usec_t t) {
        uint64_t delta;

        if (!r->started) {
                balance_ring_start(r, counter, t);
                return 0;
        }
        advance(r, balance_period(t));
        delta = gained(r, counter);
        r->counts[r->newest % BALANCE_PERIODS] += delta;
        r->last = counter;
        return delta;
}

uint64_t balance_ring_last_minute(const BalanceRing *r, uint64_t counter, usec_t t) {
        uint64_t k = MAX(balance_period(t), r->newest), sum, first;

        if (!r->started)
                return 0;
        /* What the counter gained since the newest sample belongs to period k: counted. */
        sum = gained(r, counter);
        /* The periods k - 12 .. k, of those the ring still holds (newest - 12 .. newest). */
        first = k >= BALANCE_PERIODS - 1 ? k - (BALANCE_PERIODS - 1) : 0;
        for (uint64_t q = first; q <= r->newest; q++)
                if (r->newest - q < BALANCE_PERIODS)
                        sum += r->counts[q % BALANCE_PERIODS];
        return sum;
}

void balance_figures(const uint64_t *counts, size_t n, BalanceFigures *ret) {
        BalanceFigures f = { .n = n, .min = n > 0 ? UINT64_MAX : 0 };
        double mean, var = 0.0;

        for (size_t i = 0; i < n; i++) {
                f.total += counts[i];
                f.min = MIN(f.min, counts[i]);
                f.max = MAX(f.max, counts[i]);
        }
        if (f.total == 0) {
                /* Nothing counted: nothing to compare. */
                *ret = f;
                return;
        }
        f.imbalance = f.min == 0 ? BALANCE_IMBALANCE_UNBOUNDED : (double) f.max / (double) f.min;
        mean = (double) f.total / (double) n;
        for (size_t i = 0; i < n; i++)
                var += ((double) counts[i] - mean) * ((double) counts[i] - mean);
        f.cv = sqrt(var / (double) n) / mean;
        *ret = f;
}
