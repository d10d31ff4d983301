/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Accept-queue high-water marks (supervisor/balance.c) are kept per scraping uid: a metrics scrape returns
 * and resets only its caller's, so no other local user (GetMetrics is for anyone), nor a second scraper, takes
 * a scraper's marks away. A uid that has not scraped, or whose row went to another (BALANCE_SCRAPERS_MAX are
 * kept, the least recent goes), sees the marks since the slot was first seen: more, never less. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "balance.h"
#include "rpsup-limits.h"
#include "service-fake.h"

static int64_t mark(Balance *b, Slot *slot, uid_t caller) {
        BalanceSlot x;

        balance_slot(b, slot, caller, &x);
        return x.queue_high_water;
}

/* The slot's queue is at `depth` when sampled, then empty again. */
static void queue_peak(Balance *b, int64_t depth) {
        fake.stats[0].accept_queue = depth;
        balance_sample(b);
        fake.stats[0].accept_queue = 0;
        balance_sample(b);
}

static void test_marks_per_uid(void **state) {
        Service *s = start_running(1);
        Slot *slot = s->live->slots[0];
        sd_event *e = NULL;
        Balance *b = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(balance_new(&(BalanceHost) { .event = e, .service = s, .strategy = &fake_strategy }, &b), 0);
        fake.stats_known = true;
        fake.stats[0] = (SlotStats) { .accept_queue = 0 };
        queue_peak(b, 5);

        /* Root scrapes: it sees 5, and its own mark starts again. */
        assert_int_equal(mark(b, slot, 0), 5);
        balance_scraped(b, 0);
        balance_sample(b);
        assert_int_equal(mark(b, slot, 0), 0);
        /* Another uid has not scraped: it sees the mark since the slot was first seen; its scrape leaves root's. */
        assert_int_equal(mark(b, slot, 1000), 5);
        queue_peak(b, 2);
        balance_scraped(b, 1000);
        balance_sample(b);
        assert_int_equal(mark(b, slot, 1000), 0);
        assert_int_equal(mark(b, slot, 0), 2);
        /* No caller known: nothing is reset. */
        balance_scraped(b, BALANCE_NO_CALLER);
        assert_int_equal(mark(b, slot, 0), 2);
        assert_int_equal(mark(b, slot, BALANCE_NO_CALLER), 5);

        /* The table is full (root, 1000 and 6 more): a ninth uid takes the row of the one that scraped least
         * recently (root), which then sees the marks since the slot was first seen. */
        for (uid_t u = 1001; u < 1000 + BALANCE_SCRAPERS_MAX - 1; u++)
                balance_scraped(b, u);
        queue_peak(b, 3);
        balance_scraped(b, 2000);
        balance_sample(b);
        assert_int_equal(mark(b, slot, 2000), 0);
        assert_int_equal(mark(b, slot, 0), 5);
        assert_int_equal(mark(b, slot, 1000), 3);
        assert_int_equal(mark(b, slot, 1001), 3);
        /* Root scrapes again: 1000's row goes now, root's marks start again. */
        balance_scraped(b, 0);
        balance_sample(b);
        assert_int_equal(mark(b, slot, 0), 0);
        assert_int_equal(mark(b, slot, 1000), 5);
        assert_int_equal(mark(b, slot, 1001), 3);

        balance_free(b);
        sd_event_unref(e);
        fake.stats_known = false;
        teardown(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_marks_per_uid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
