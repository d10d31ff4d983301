/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The balance figures' arithmetic (supervisor/balance-ring.c): a worker's new connections over the last
 * minute from samples of a cumulative counter, and the imbalance and coefficient of variation of counts. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "balance-ring.h"
#include "macro.h"

#define P BALANCE_PERIOD_USEC
#define S USEC_PER_SEC
#define T0 (1000 * S) /* a monotonic clock that has run a while: on a boundary */

static void test_periods(void **state) {
        /* Period k is (k × 5 s, (k + 1) × 5 s]: a sample on a boundary closes the period that ends there. */
        assert_int_equal(balance_period(T0), T0 / P - 1);
        assert_int_equal(balance_period(T0 + 1), T0 / P);
        assert_int_equal(balance_period(T0 + P), T0 / P);
        assert_int_equal(balance_period(T0 + P + 1), T0 / P + 1);
        assert_int_equal(BALANCE_PERIODS, 13);
}

/* What the counter held at the first sample is not counted; what it gains after is, for a minute. */
static void test_first_sample_and_window(void **state) {
        BalanceRing r = {};

        assert_int_equal(balance_ring_last_minute(&r, 100, T0), 0);
        assert_int_equal(balance_ring_sample(&r, 100, T0), 0); /* the baseline */
        assert_int_equal(balance_ring_last_minute(&r, 100, T0), 0);
        /* 7 between two samples, and 3 more that no sample saw yet (counted as of now). */
        assert_int_equal(balance_ring_sample(&r, 107, T0 + 2 * S), 7);
        assert_int_equal(balance_ring_last_minute(&r, 110, T0 + 3 * S), 10);
        assert_int_equal(balance_ring_sample(&r, 110, T0 + P), 3);
        /* Still counted 60 s later, gone after 65 s: the window is 60 to 65 s, by the period. */
        assert_int_equal(balance_ring_last_minute(&r, 110, T0 + P + 60 * S), 10);
        assert_int_equal(balance_ring_last_minute(&r, 110, T0 + P + 60 * S + 1), 0);
        assert_int_equal(balance_ring_last_minute(&r, 110, T0 + 3600 * S), 0);
}

/* A steady 12 per second, sampled on each boundary only: the count is exact within one period, always
 * between the last 60 and the last 65 s. */
static void test_steady_rate(void **state) {
        BalanceRing r = {};
        uint64_t counter = 0;

        balance_ring_start(&r, 0, T0);
        for (usec_t t = T0 + S; t <= T0 + 300 * S; t += S) {
                counter += 12;
                if (t % P == 0)
                        (void) balance_ring_sample(&r, counter, t);
                else {
                        uint64_t n = balance_ring_last_minute(&r, counter, t);
                        usec_t covered = MIN(t - T0, 60 * S + (t - 1) % P + 1);
                        assert_int_equal(n, 12 * (covered / S));
                        assert_true(t - T0 < 60 * S || (n >= 12 * 60 && n <= 12 * 65));
                }
        }
}

/* Samples between the boundaries (a status request, the 100 ms grid) add to the current period; a sample
 * older than the newest (a late boundary) to the newest. Nothing is counted twice. */
static void test_samples_between_boundaries(void **state) {
        BalanceRing r = {};

        balance_ring_start(&r, 0, T0);
        assert_int_equal(balance_ring_sample(&r, 4, T0 + 100 * USEC_PER_MSEC), 4);
        assert_int_equal(balance_ring_sample(&r, 5, T0 + 200 * USEC_PER_MSEC), 1);
        assert_int_equal(balance_ring_sample(&r, 9, T0 + 7 * S), 4);
        assert_int_equal(balance_ring_sample(&r, 11, T0 + P), 2); /* late: goes to the newest period */
        assert_int_equal(balance_ring_last_minute(&r, 11, T0 + 8 * S), 11);
        /* The first period (T0, T0 + 5 s] holds 5, the next 6: after 60 s the first goes out. */
        assert_int_equal(balance_ring_last_minute(&r, 11, T0 + P + 60 * S), 11);
        assert_int_equal(balance_ring_last_minute(&r, 11, T0 + 2 * P + 60 * S), 6);
        assert_int_equal(balance_ring_last_minute(&r, 11, T0 + 3 * P + 60 * S), 0);
}

/* After a long quiet time every period is old: a new sample does not see stale counts. */
static void test_gap_clears(void **state) {
        BalanceRing r = {};

        balance_ring_start(&r, 0, T0);
        (void) balance_ring_sample(&r, 50, T0 + S);
        (void) balance_ring_sample(&r, 52, T0 + 3600 * S);
        assert_int_equal(balance_ring_last_minute(&r, 52, T0 + 3600 * S), 2);
        /* A gap of a few periods clears those periods only. */
        (void) balance_ring_sample(&r, 60, T0 + 3620 * S);
        assert_int_equal(balance_ring_last_minute(&r, 60, T0 + 3620 * S), 10);
}

/* Counters restarted from 0 (new listeners): what they hold is new. */
static void test_restart(void **state) {
        BalanceRing r = {};

        balance_ring_start(&r, 0, T0);
        assert_int_equal(balance_ring_sample(&r, 40, T0 + S), 40);
        balance_ring_restart(&r);
        assert_int_equal(balance_ring_sample(&r, 3, T0 + 2 * S), 3);
        assert_int_equal(balance_ring_last_minute(&r, 3, T0 + 2 * S), 43);
        /* A counter that went down without being told: restarted as well. */
        assert_int_equal(balance_ring_sample(&r, 1, T0 + 3 * S), 1);
        assert_int_equal(balance_ring_last_minute(&r, 1, T0 + 3 * S), 44);
}

static void test_figures(void **state) {
        BalanceFigures f;

        /* Even. */
        balance_figures((const uint64_t[]) { 50, 50, 50, 50 }, 4, &f);
        assert_int_equal(f.total, 200);
        assert_true(f.imbalance == 1.0);
        assert_true(f.cv == 0.0);

        /* 51, 50, 50, 49: max/min 51/49; population standard deviation sqrt(0.5), over the mean 50. */
        balance_figures((const uint64_t[]) { 51, 50, 50, 49 }, 4, &f);
        assert_int_equal(f.min, 49);
        assert_int_equal(f.max, 51);
        assert_true(fabs(f.imbalance - 51.0 / 49.0) < 1e-12);
        assert_true(fabs(f.cv - sqrt(0.5) / 50.0) < 1e-12);

        /* 30 and 10: mean 20, deviation 10: CV 0.5, max/min 3. */
        balance_figures((const uint64_t[]) { 30, 10 }, 2, &f);
        assert_true(f.imbalance == 3.0);
        assert_true(fabs(f.cv - 0.5) < 1e-12);

        /* A worker got none while another got some: unbounded; CV still finite (sqrt(3) for 0, 0, 0, 4). */
        balance_figures((const uint64_t[]) { 0, 0, 0, 4 }, 4, &f);
        assert_true(f.imbalance == BALANCE_IMBALANCE_UNBOUNDED);
        assert_true(fabs(f.cv - sqrt(3.0)) < 1e-12);

        /* Nothing counted, or no worker: 0 and 0. */
        balance_figures((const uint64_t[]) { 0, 0 }, 2, &f);
        assert_true(f.imbalance == 0.0 && f.cv == 0.0 && f.min == 0 && f.max == 0);
        balance_figures(NULL, 0, &f);
        assert_true(f.imbalance == 0.0 && f.cv == 0.0 && f.n == 0 && f.min == 0);

        /* One worker: even by definition. */
        balance_figures((const uint64_t[]) { 7 }, 1, &f);
        assert_true(f.imbalance == 1.0 && f.cv == 0.0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_periods),
                cmocka_unit_test(test_first_sample_and_window),
                cmocka_unit_test(test_steady_rate),
                cmocka_unit_test(test_samples_between_boundaries),
                cmocka_unit_test(test_gap_clears),
                cmocka_unit_test(test_restart),
                cmocka_unit_test(test_figures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
