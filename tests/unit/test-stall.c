/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Stall detection's arithmetic (supervisor/service-stall.c), with a fake strategy whose slot_stats() reports
 * the accept queues, the connections steered and the connections migrated that each test sets. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>

#include "service-fake.h"

#define STALL (2 * USEC_PER_SEC)
#define PERIOD (STALL / 4) /* the sampling period for StallSec=2s */

/* Two serving workers with StallSec=2s, every queue empty, sampling not started. */
static Service *start_sampled(void) {
        Service *s = setup_service();
        Config *c = config_new(2);

        c->stall = STALL;
        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        assert_non_null(s->live);
        fake.stats_known = true;
        assert_false(s->sampling);
        return s;
}

/* A queue filled: the daemon's watch calls service_queues_busy(); the first sample (the baseline) is due
 * now. */
static void queue_fills(Service *s, unsigned slot, int64_t queued) {
        fake.stats[slot].accept_queue = queued;
        service_queues_busy(s);
        assert_true(s->sampling);
        advance(s, 0);
}

static void test_worker_taking_nothing_is_stalled(void **state) {
        Service *s = start_sampled();
        Worker *w = s->live->slots[0]->worker;
        pid_t pid = w->pid;

        queue_fills(s, 0, 5);
        advance(s, STALL - PERIOD / 2);
        /* Not yet: it is stalled for StallSec= since the first sample that saw its queue not move. */
        assert_false(killed(pid, SIGTERM));
        assert_int_equal(s->counters.stall_replacements, 0);
        assert_int_equal(fake.n_serving, 2);

        advance(s, PERIOD / 2);
        assert_true(killed(pid, SIGTERM));
        assert_int_equal(w->state, WORKER_STOPPING);
        assert_int_equal(w->stop_reason, STOP_STALLED);
        assert_int_equal(s->counters.stall_replacements, 1);
        /* Out of the steering; the other worker keeps serving and is left alone. */
        assert_int_equal(fake.n_serving, 1);
        assert_false(killed(s->live->slots[1]->worker->pid, SIGTERM));
        /* Its replacement starts at once; the stalled one ends on its own time beside it. */
        assert_non_null(s->live->slots[0]->worker);
        assert_int_not_equal(s->live->slots[0]->worker->pid, pid);
        assert_true(w->departing);
        exit_signalled(s);
        assert_null(service_find_worker(s, pid));
        teardown(s);
}

static void test_worker_taking_some_is_not_stalled(void **state) {
        Service *s = start_sampled();
        pid_t pid = s->live->slots[0]->worker->pid;

        queue_fills(s, 0, 5);
        /* The queue stays at 5, but 3 new connections come per period: it took 3 each time. */
        for (unsigned i = 0; i < 4 * (STALL / PERIOD); i++) {
                fake.stats[0].syns += 3;
                advance(s, PERIOD);
        }
        assert_false(killed(pid, SIGTERM));
        assert_int_equal(s->counters.stall_replacements, 0);
        assert_int_equal(s->live->slots[0]->stall_since, 0);
        /* Its queue is not empty: sampling goes on. */
        assert_true(s->sampling);
        assert_true(service_next_deadline(s) <= fake.now + PERIOD);
        teardown(s);
}

static void test_empty_queues_stop_sampling(void **state) {
        Service *s = start_sampled();
        unsigned watch_calls;

        queue_fills(s, 0, 5);
        fake.stats[1].accept_queue = 1;
        advance(s, PERIOD);
        assert_true(s->sampling);
        watch_calls = fake.watch_queues;

        /* Every queue is empty at the next sample: nothing is sampled until one fills again, and the
         * daemon is asked to watch the queues. */
        fake.stats[0].accept_queue = 0;
        fake.stats[1].accept_queue = 0;
        advance(s, PERIOD);
        assert_false(s->sampling);
        assert_int_equal(fake.watch_queues, watch_calls + 1);
        assert_int_equal(service_next_deadline(s), USEC_INFINITY);
        for (size_t i = 0; i < s->live->n_slots; i++) {
                assert_false(s->live->slots[i]->sampled);
                assert_int_equal(s->live->slots[i]->stall_since, 0);
        }
        /* However long: no stall without sampling. */
        advance(s, 10 * STALL);
        assert_int_equal(s->counters.stall_replacements, 0);
        assert_int_equal(fake.n_kills, 0);
        teardown(s);
}

static void test_migrations_in_count_as_arrivals(void **state) {
        for (MigrationKind kind = 0; kind < _MIGRATION_KIND_MAX; kind++) {
                Service *s = start_sampled();
                pid_t pid = s->live->slots[0]->worker->pid;

                queue_fills(s, 0, 5);
                /* No new connections, but 2 migrated in per period while the queue stays at 5: it took 2. */
                for (unsigned i = 0; i < 4 * (STALL / PERIOD); i++) {
                        fake.stats[0].migrations[kind] += 2;
                        advance(s, PERIOD);
                }
                assert_false(killed(pid, SIGTERM));
                assert_int_equal(s->counters.stall_replacements, 0);
                teardown(s);
        }
}

static void test_queue_that_moves_again_is_not_stalled(void **state) {
        Service *s = start_sampled();
        pid_t pid = s->live->slots[0]->worker->pid;

        queue_fills(s, 0, 5);
        advance(s, STALL - PERIOD);
        assert_true(s->live->slots[0]->stall_since > 0);
        /* It takes one just in time: the count starts over. */
        fake.stats[0].accept_queue = 4;
        advance(s, PERIOD);
        assert_int_equal(s->live->slots[0]->stall_since, 0);
        advance(s, STALL - PERIOD);
        assert_false(killed(pid, SIGTERM));
        advance(s, PERIOD);
        assert_true(killed(pid, SIGTERM));
        teardown(s);
}

static void test_shared_or_unknown_queue_is_not_sampled(void **state) {
        Service *s = start_sampled();

        /* Handoff's one queue is everyone's: nobody in particular stalls on it. */
        fake.stats[0].queue_shared = true;
        fake.stats[1].accept_queue = -1;
        queue_fills(s, 0, 5);
        advance(s, 4 * STALL);
        assert_int_equal(s->counters.stall_replacements, 0);
        assert_false(s->live->slots[0]->sampled);
        assert_false(s->live->slots[1]->sampled);
        teardown(s);
}

static void test_stall_sec_zero_turns_it_off(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);

        c->stall = 0;
        service_start(s, c, op_done, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        fake.stats_known = true;
        fake.stats[0].accept_queue = 5;
        service_queues_busy(s);
        assert_false(s->sampling);
        advance(s, 10 * USEC_PER_SEC);
        assert_int_equal(fake.n_kills, 0);
        teardown(s);
}

/* Under the kernel steering policy the program does not count what reaches each worker: a queue that stays
 * says nothing, and no stall is judged. */
static void test_kernel_policy_judges_no_stall(void **state) {
        Service *s = start_sampled();

        s->steering = STEERING_KERNEL;
        fake.stats[0].accept_queue = 5;
        service_queues_busy(s);
        assert_false(s->sampling);
        advance(s, 10 * STALL);
        assert_int_equal(fake.n_kills, 0);
        assert_int_equal(s->counters.stall_replacements, 0);
        teardown(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_worker_taking_nothing_is_stalled),
                cmocka_unit_test(test_worker_taking_some_is_not_stalled),
                cmocka_unit_test(test_empty_queues_stop_sampling),
                cmocka_unit_test(test_migrations_in_count_as_arrivals),
                cmocka_unit_test(test_queue_that_moves_again_is_not_stalled),
                cmocka_unit_test(test_shared_or_unknown_queue_is_not_sampled),
                cmocka_unit_test(test_stall_sec_zero_turns_it_off),
                cmocka_unit_test(test_kernel_policy_judges_no_stall),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
