/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retiring workers by their connections, and replacing a hung worker beside it, on a fake clock: a retiring
 * worker is asked to stop once the strategy says it has drained (nothing queued, no connection open), or at
 * its drain window's end; a stalled worker's replacement starts at once, and the stalled one ends on its
 * own time (KillSignal, then SIGKILL after StopTimeoutSec=, counted). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "service-fake.h"

#define WINDOW (30 * USEC_PER_SEC)

/* A running service of two workers, reloaded: generation 1's workers drain for WINDOW at most. */
static Service *reloaded(void) {
        Service *s = start_running(2);
        Config *c = config_new(2);

        fake.retire_delay = WINDOW;
        fake.drain_known = true;
        fake.drain[0] = (SlotDrainState) { .accept_queue = 0, .open_connections = 3 };
        fake.drain[1] = (SlotDrainState) { .accept_queue = 0, .open_connections = 1 };
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(s->live->id, 2);
        return s;
}

static void test_retiring_worker_stopped_once_drained(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1);
        pid_t p0 = g1->slots[0]->worker->pid, p1 = g1->slots[1]->worker->pid;

        /* Both still have something to serve: they drain, nobody is signalled. */
        advance(s, USEC_PER_SEC);
        assert_int_equal(g1->slots[0]->worker->state, WORKER_DRAINING);
        assert_false(killed(p0, SIGTERM) || killed(p1, SIGTERM));
        assert_true(fake.drain_checks >= 2 * 10); /* looked at every 100 ms */

        /* Worker 0 finished its connections: asked to stop once two looks in a row find it idle, long before
         * the window's end. */
        fake.drain[0].open_connections = 0;
        advance(s, DRAIN_CHECK_USEC);
        assert_false(killed(p0, SIGTERM));
        advance(s, DRAIN_CHECK_USEC);
        assert_true(killed(p0, SIGTERM));
        assert_false(killed(p1, SIGTERM));
        /* What is unknown is not idle. */
        fake.drain[1] = (SlotDrainState) { .accept_queue = -1, .open_connections = -1 };
        advance(s, 5 * USEC_PER_SEC);
        assert_false(killed(p1, SIGTERM));
        /* Worker 1 never drains: stopped at the window's end. */
        fake.drain[1] = (SlotDrainState) { .accept_queue = 0, .open_connections = 1 };
        advance(s, WINDOW);
        assert_true(killed(p1, SIGTERM));
        exit_signalled(s);
        assert_null(generation_by_id(s, 1));
        teardown(s);
}

static void test_retiring_worker_that_takes_nothing(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1);
        pid_t p0 = g1->slots[0]->worker->pid, p1 = g1->slots[1]->worker->pid;

        /* Worker 0's queue goes down (it accepts), worker 1's does not (stopped, or busy with one long
         * request): after StallSec= (auto: 500 ms) what waits for worker 1 moves to the serving workers; it
         * drains on, and is asked to stop once it has nothing open, not before. */
        fake.drain[0] = (SlotDrainState) { .accept_queue = 50, .open_connections = 1 };
        fake.drain[1] = (SlotDrainState) { .accept_queue = 3, .open_connections = 0 };
        for (int i = 0; i < 4; i++) {
                advance(s, DRAIN_CHECK_USEC);
                fake.drain[0].accept_queue -= 10;
        }
        assert_int_equal(fake.abandoned, 0);
        assert_false(killed(p1, SIGTERM));
        fake.drain[0] = (SlotDrainState) { .accept_queue = 0, .open_connections = 1 }; /* took them all */
        fake.drain[1].open_connections = 1; /* its long request */
        advance(s, 2 * DRAIN_CHECK_USEC);
        assert_int_equal(fake.abandoned, 1);
        assert_false(killed(p1, SIGTERM));
        fake.drain[1] = (SlotDrainState) { .accept_queue = 0, .open_connections = 1 }; /* moved away */
        advance(s, 10 * DRAIN_CHECK_USEC);
        assert_int_equal(fake.abandoned, 1); /* once */
        assert_false(killed(p1, SIGTERM));
        fake.drain[1].open_connections = 0; /* the request is answered */
        advance(s, 2 * DRAIN_CHECK_USEC);
        assert_true(killed(p1, SIGTERM));
        assert_false(killed(p0, SIGTERM));
        teardown(s);
}

static void test_retiring_worker_with_active_flows(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1);
        pid_t p0 = g1->slots[0]->worker->pid, p1 = g1->slots[1]->worker->pid;

        /* Datagram listeners only, the flow table on: nothing queued, no connection, but worker 0's flows
         * still send to it (their datagrams keep reaching it): it is not idle while they do. Worker 1's flows
         * are quiet: it is asked to stop after two looks. */
        fake.drain[0] = (SlotDrainState) { .flows = true, .flows_busy = true, .flow_quiet = 0 };
        fake.drain[1] = (SlotDrainState) { .flows = true, .flows_busy = false, .flow_quiet = USEC_INFINITY };
        advance(s, 3 * DRAIN_CHECK_USEC);
        assert_true(killed(p1, SIGTERM));
        advance(s, 5 * USEC_PER_SEC);
        assert_false(killed(p0, SIGTERM));
        /* Its flows went quiet (FlowIdleSec= passed without a datagram): asked to stop at the next two looks. */
        fake.drain[0].flows_busy = false;
        advance(s, DRAIN_CHECK_USEC);
        assert_false(killed(p0, SIGTERM));
        advance(s, DRAIN_CHECK_USEC);
        assert_true(killed(p0, SIGTERM));
        teardown(s);
}

static void test_flows_that_never_end_meet_the_window(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1);
        pid_t p0 = g1->slots[0]->worker->pid;

        /* Flows that keep sending hold a retiring worker only for its drain window, as connections do. */
        fake.drain[0] = (SlotDrainState) { .flows = true, .flows_busy = true, .flow_quiet = 0 };
        advance(s, WINDOW - DRAIN_CHECK_USEC);
        assert_false(killed(p0, SIGTERM));
        advance(s, DRAIN_CHECK_USEC);
        assert_true(killed(p0, SIGTERM));
        teardown(s);
}

static void test_strategy_that_cannot_tell_uses_the_window(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1);
        pid_t p0 = g1->slots[0]->worker->pid;

        fake.drain_known = false; /* handoff: one shared queue */
        fake.drain_checks = 0;
        fake.drain[0] = (SlotDrainState) {};
        advance(s, WINDOW - 1);
        assert_false(killed(p0, SIGTERM));
        advance(s, 1);
        assert_true(killed(p0, SIGTERM));
        teardown(s);
}

static void test_stop_drains(void **state) {
        Service *s = reloaded();
        Generation *g1 = generation_by_id(s, 1), *g2 = generation_by_id(s, 2);
        pid_t old0 = g1->slots[0]->worker->pid, new0 = g2->slots[0]->worker->pid;

        /* A stop retires every worker as a reload does: each drains what it has (the draining ones keep
         * their window), and is asked to stop once idle. */
        assert_int_equal(service_stop(s, NULL, NULL), 0);
        assert_int_equal(s->state, SERVICE_STOPPING);
        assert_int_equal(kills_with(SIGTERM), 0);
        advance(s, USEC_PER_SEC);
        assert_int_equal(kills_with(SIGTERM), 0);
        fake.drain[0].open_connections = 0; /* worker 0 of each generation is done */
        advance(s, 2 * DRAIN_CHECK_USEC);
        assert_true(killed(old0, SIGTERM) && killed(new0, SIGTERM));
        assert_int_equal(kills_with(SIGTERM), 2);
        /* A second stop request ends the other drains now. */
        service_stop_now(s);
        advance(s, 1);
        assert_int_equal(kills_with(SIGTERM), 4);
        exit_signalled(s);
        assert_int_equal(s->state, SERVICE_STOPPED);
        teardown(s);
}

static void test_hung_worker_replaced_beside_it(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Slot *slot;
        Worker *hung;
        pid_t pid;
        unsigned spawns;

        c->stall = USEC_PER_SEC;
        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        slot = s->live->slots[0];
        hung = slot->worker;
        pid = hung->pid;
        spawns = fake.spawns;

        service_slot_stalled(s, slot);
        /* Gently: KillSignal (not SIGABRT: only the watchdog asks for a core); the replacement starts now. */
        assert_true(killed(pid, SIGTERM));
        assert_false(killed(pid, SIGABRT));
        assert_int_equal(fake.spawns, spawns + 1);
        assert_ptr_not_equal(slot->worker, hung);
        assert_true(hung->departing);
        assert_int_equal(slot->n_departing, 1);
        assert_ptr_equal(service_find_worker(s, pid), hung);
        service_worker_ready(s, slot->worker);
        assert_int_equal(fake.n_serving, 2);

        /* A merely busy worker finishes and exits on its own; a truly hung one is killed at the bound. */
        advance(s, 5 * USEC_PER_SEC); /* StopTimeoutSec= */
        assert_true(killed(pid, SIGKILL));
        assert_int_equal(s->counters.stop_timeouts, 1);
        exit_worker(s, hung, CLD_KILLED, SIGKILL);
        assert_null(service_find_worker(s, pid));
        assert_int_equal(slot->n_departing, 0);
        assert_int_equal(fake.n_serving, 2);
        teardown(s);
}

static void test_departing_worker_keeps_its_generation(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);
        Generation *g1;
        Worker *hung;

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        ready_all(s, s->pending);
        g1 = s->live;
        hung = g1->slots[0]->worker;
        service_slot_stalled(s, g1->slots[0]);
        service_worker_ready(s, g1->slots[0]->worker);
        /* Reloaded while the hung one is still on its way out: generation 1 is gone only when it is. */
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        exit_worker(s, g1->slots[0]->worker, CLD_EXITED, 0);
        assert_non_null(generation_by_id(s, 1));
        exit_worker(s, hung, CLD_EXITED, 0);
        assert_null(generation_by_id(s, 1));
        teardown(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_retiring_worker_stopped_once_drained),
                cmocka_unit_test(test_retiring_worker_that_takes_nothing),
                cmocka_unit_test(test_strategy_that_cannot_tell_uses_the_window),
                cmocka_unit_test(test_retiring_worker_with_active_flows),
                cmocka_unit_test(test_flows_that_never_end_meet_the_window),
                cmocka_unit_test(test_stop_drains),
                cmocka_unit_test(test_hung_worker_replaced_beside_it),
                cmocka_unit_test(test_departing_worker_keeps_its_generation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
