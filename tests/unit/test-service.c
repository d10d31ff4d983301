/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The generation state machine (supervisor/service*.c) with fake processes, a fake clock and a fake
 * strategy: start, reload, rollback, scale, crashes, watchdog, stop, overlapping drains. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "service-fake.h"

/* ---- start ---- */

static void test_start_waits_for_every_worker(void **state) {
        Service *s = setup_service();
        Config *c = config_new(3);
        Generation *g;

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        g = s->pending;
        assert_non_null(g);
        assert_int_equal(g->n_slots, 3);
        assert_int_equal(fake.spawns, 3);
        assert_null(s->live);

        service_worker_ready(s, g->slots[0]->worker);
        service_worker_ready(s, g->slots[2]->worker);
        assert_null(s->live);
        assert_int_equal(fake.done_calls, 0);
        assert_int_equal(fake.n_serving, 0);

        service_worker_ready(s, g->slots[1]->worker);
        assert_ptr_equal(s->live, g);
        assert_int_equal(g->state, GENERATION_LIVE);
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(fake.n_serving, 3);
        /* RPSUP_WORKER values are 0..N-1 */
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(g->slots[i]->index, i);
        teardown(s);
}

static void test_start_ready_timeout_fails(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Generation *g;

        service_start(s, c, op_done, NULL);
        config_unref(c);
        g = s->pending;
        service_worker_ready(s, g->slots[0]->worker);
        advance(s, 9 * USEC_PER_SEC);
        assert_int_equal(fake.done_calls, 0);
        advance(s, 2 * USEC_PER_SEC);
        assert_int_equal(fake.done_calls, 1);
        assert_true(fake.done_r < 0);
        assert_non_null(strstr(fake.done_message, "was not ready within 10s"));
        assert_int_equal(s->state, SERVICE_FAILED);
        assert_int_equal(kills_with(SIGTERM), 2);
        /* They ignore SIGTERM: SIGKILL after StopTimeoutSec. */
        advance(s, 5 * USEC_PER_SEC + 1);
        assert_int_equal(kills_with(SIGKILL), 2);
        exit_signalled(s);
        assert_true(TAILQ_EMPTY(&s->generations));
        teardown(s);
}

static void test_start_early_exit_fails(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Generation *g;

        service_start(s, c, op_done, NULL);
        config_unref(c);
        g = s->pending;
        exit_worker(s, g->slots[1]->worker, CLD_EXITED, 3);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "worker 1"));
        assert_non_null(strstr(fake.done_message, "exited with status 3 before it was ready"));
        assert_int_equal(s->state, SERVICE_FAILED);
        assert_true(killed(g->slots[0]->worker->pid, SIGTERM));
        exit_signalled(s);
        assert_true(TAILQ_EMPTY(&s->generations));
        teardown(s);
}

static void test_ready_exec(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);

        c->ready = READY_EXEC;
        service_start(s, c, op_done, NULL);
        config_unref(c);
        /* READY=1 means nothing in exec mode; a successful execve() does. */
        service_worker_ready(s, s->pending->slots[0]->worker);
        assert_null(s->live);
        service_worker_exec_done(s, s->pending->slots[0]->worker, 0);
        assert_non_null(s->live);
        assert_int_equal(fake.done_r, 0);
        teardown(s);
}

static void test_exec_failure_is_reported(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);
        Worker *w;

        service_start(s, c, op_done, NULL);
        config_unref(c);
        w = s->pending->slots[0]->worker;
        service_worker_exec_done(s, w, ENOENT);
        exit_worker(s, w, CLD_EXITED, 127);
        assert_int_equal(fake.done_calls, 1);
        assert_non_null(strstr(fake.done_message, "could not execute /usr/bin/worker: No such file or directory"));
        teardown(s);
}

static void test_spawn_failure_fails_start(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);

        fake.spawn_error = -EAGAIN;
        assert_true(service_start(s, c, op_done, NULL) < 0);
        config_unref(c);
        assert_int_equal(fake.done_calls, 1);
        assert_true(fake.done_r < 0);
        assert_non_null(strstr(fake.done_message, "cannot start worker 0"));
        assert_int_equal(s->state, SERVICE_FAILED);
        teardown(s);
}

/* ---- reload ---- */

static void test_reload_switches_generations(void **state) {
        Service *s = start_running(2);
        Generation *g1 = s->live, *g2;
        pid_t old0 = g1->slots[0]->worker->pid, old1 = g1->slots[1]->worker->pid;
        Config *c = config_new(2);

        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        g2 = s->pending;
        assert_non_null(g2);
        assert_int_equal(g2->id, 2);
        assert_int_equal(s->state, SERVICE_RELOADING);
        /* Until g2 is ready, g1 serves. */
        assert_ptr_equal(s->live, g1);
        service_worker_ready(s, g2->slots[0]->worker);
        assert_ptr_equal(s->live, g1);
        assert_int_equal(fake.n_serving, 2);
        assert_true(fake.serving[0] == old0 || fake.serving[0] == old1);
        assert_int_equal(kills_with(SIGTERM), 0);

        fake.now += 2 * USEC_PER_SEC; /* the workers' start-up */
        service_worker_ready(s, g2->slots[1]->worker);
        assert_ptr_equal(s->live, g2);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(s->counters.reloads_ok, 1);
        /* The reload took 2 s, all of it the workers': rpsupd's own part is what was not waiting. */
        assert_int_equal(s->counters.last_reload_usec, 2 * USEC_PER_SEC);
        assert_int_equal(s->counters.last_reload_own_usec, 0);
        /* Steering now names g2's workers only, and g1 retires through the strategy. */
        assert_int_equal(fake.n_serving, 2);
        for (unsigned i = 0; i < fake.n_serving; i++)
                assert_true(fake.serving[i] != old0 && fake.serving[i] != old1);
        assert_int_equal(fake.retired, 2);
        assert_int_equal(g1->state, GENERATION_RETIRING);
        assert_true(killed(old0, SIGTERM));
        assert_true(killed(old1, SIGTERM));

        exit_signalled(s);
        assert_null(generation_by_id(s, 1));
        assert_ptr_equal(TAILQ_FIRST(&s->generations), g2);
        teardown(s);
}

static void test_reload_rollback_on_early_exit(void **state) {
        Service *s = start_running(2);
        Generation *g1 = s->live, *g2;
        Config *c = config_new(2);

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        g2 = s->pending;
        service_worker_ready(s, g2->slots[0]->worker);
        exit_worker(s, g2->slots[1]->worker, CLD_KILLED, SIGSEGV);

        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "was killed by SIGSEGV"));
        assert_non_null(strstr(fake.done_message, "rolled back, generation 1 keeps serving"));
        assert_ptr_equal(s->live, g1);
        assert_int_equal(g1->state, GENERATION_LIVE);
        assert_int_equal(g2->state, GENERATION_FAILED);
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_int_equal(s->counters.reloads_failed, 1);
        /* g1 was never touched */
        assert_int_equal(fake.retired, 0);
        for (size_t i = 0; i < g1->n_slots; i++)
                assert_false(killed(g1->slots[i]->worker->pid, SIGTERM));
        exit_signalled(s);
        assert_null(generation_by_id(s, 2));
        /* and the service can reload again */
        c = config_new(2);
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        teardown(s);
}

static void test_reload_rollback_on_timeout(void **state) {
        Service *s = start_running(1);
        Generation *g1 = s->live;
        Config *c = config_new(1);

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        advance(s, 11 * USEC_PER_SEC);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "not ready within 10s"));
        assert_ptr_equal(s->live, g1);
        assert_int_equal(g1->slots[0]->worker->state, WORKER_READY);
        teardown(s);
}

static void test_reload_generation_open_failure(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);

        fake.generation_open_error = -EADDRINUSE;
        assert_true(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL) < 0);
        config_unref(c);
        assert_int_equal(fake.done_calls, 1);
        assert_non_null(strstr(fake.done_message, "Address already in use"));
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_int_equal(service_count_generations(s), 1);
        teardown(s);
}

static void test_reload_wait_answers_when_old_is_gone(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);

        service_reload(s, c, &(ReloadOptions) { .wait_retired = true }, op_done, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(fake.done_calls, 0);
        assert_int_equal(s->state, SERVICE_RUNNING);
        exit_signalled(s);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        teardown(s);
}

static void test_reload_busy(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);

        service_reload(s, c, &(ReloadOptions) {}, NULL, NULL);
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), -EBUSY);
        assert_non_null(strstr(fake.done_message, "a reload is in progress"));
        assert_int_equal(service_scale(s, 3, op_done, NULL), -EBUSY);
        config_unref(c);
        teardown(s);
}

static void test_overlapping_drains_are_bounded(void **state) {
        Service *s = start_running(1);
        unsigned ok = 0;

        fake.retire_delay = 60 * USEC_PER_SEC; /* drain windows longer than the test */
        for (unsigned i = 0; i < GENERATIONS_MAX + 3; i++) {
                Config *c = config_new(1);
                int r = service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
                config_unref(c);
                if (r < 0) {
                        assert_int_equal(r, -EBUSY);
                        assert_non_null(strstr(fake.done_message, "still draining"));
                        break;
                }
                ready_all(s, s->pending);
                ok++;
        }
        assert_int_equal(ok, GENERATIONS_MAX - 1);
        assert_int_equal(service_count_generations(s), GENERATIONS_MAX);
        /* Draining workers keep running until their window ends... */
        assert_int_equal(kills_with(SIGTERM), 0);
        for (Generation *g = TAILQ_FIRST(&s->generations); g != s->live; g = TAILQ_NEXT(g, link))
                assert_int_equal(g->slots[0]->worker->state, WORKER_DRAINING);
        /* ...then are asked to stop, and the generations go away. */
        advance(s, 60 * USEC_PER_SEC);
        assert_int_equal(kills_with(SIGTERM), GENERATIONS_MAX - 1);
        exit_signalled(s);
        assert_int_equal(service_count_generations(s), 1);
        teardown(s);
}

static void test_reload_keeps_runtime_scale(void **state) {
        Service *s = start_running(2);
        Config *c;

        service_scale(s, 3, NULL, NULL);
        ready_all(s, s->live);
        assert_int_equal(service_live_workers(s), 3);
        /* Workers= unchanged in the config: the scaled count carries over. */
        c = config_new(2);
        service_reload(s, c, &(ReloadOptions) {}, NULL, NULL);
        config_unref(c);
        assert_int_equal(s->pending->n_slots, 3);
        ready_all(s, s->pending);
        exit_signalled(s);
        /* Workers= changed in the config: it wins. */
        c = config_new(5);
        service_reload(s, c, &(ReloadOptions) {}, NULL, NULL);
        config_unref(c);
        assert_int_equal(s->pending->n_slots, 5);
        teardown(s);
}

/* ---- scale ---- */

static void test_scale_out(void **state) {
        Service *s = start_running(2);
        Generation *g = s->live;

        assert_int_equal(service_scale(s, 4, op_done, NULL), 0);
        assert_int_equal(g->n_slots, 4);
        assert_int_equal(s->state, SERVICE_SCALING);
        assert_int_equal(fake.done_calls, 0);
        service_worker_ready(s, g->slots[2]->worker);
        /* A new worker takes connections as soon as it is ready. */
        assert_int_equal(fake.n_serving, 3);
        assert_int_equal(fake.done_calls, 0);
        service_worker_ready(s, g->slots[3]->worker);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(fake.n_serving, 4);
        assert_int_equal(g->slots[3]->index, 3);
        assert_int_equal(s->state, SERVICE_RUNNING);
        teardown(s);
}

static void test_scale_out_failure_rolls_back(void **state) {
        Service *s = start_running(2);
        Generation *g = s->live;

        service_scale(s, 4, op_done, NULL);
        service_worker_ready(s, g->slots[2]->worker);
        exit_worker(s, g->slots[3]->worker, CLD_EXITED, 1);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "2 workers keep serving"));
        assert_int_equal(service_live_workers(s), 2);
        assert_int_equal(fake.n_serving, 2);
        exit_signalled(s);
        assert_int_equal(g->n_slots, 2);
        assert_int_equal(s->counters.scales_failed, 1);
        teardown(s);
}

static void test_scale_in_retires_highest(void **state) {
        Service *s = start_running(4);
        Generation *g = s->live;
        pid_t p2 = g->slots[2]->worker->pid, p3 = g->slots[3]->worker->pid;

        fake.retire_delay = 0;
        assert_int_equal(service_scale(s, 2, op_done, NULL), 0);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(service_live_workers(s), 2);
        assert_int_equal(fake.n_serving, 2);
        assert_int_equal(fake.retired, 2);
        assert_true(killed(p2, SIGTERM));
        assert_true(killed(p3, SIGTERM));
        assert_false(killed(g->slots[0]->worker->pid, SIGTERM));
        exit_signalled(s);
        assert_int_equal(g->n_slots, 2);
        /* Scaling out again reuses indices 2 and 3. */
        service_scale(s, 4, NULL, NULL);
        assert_int_equal(g->slots[2]->index, 2);
        assert_int_equal(g->slots[3]->index, 3);
        teardown(s);
}

static void test_scale_invalid(void **state) {
        Service *s = start_running(1);

        assert_int_equal(service_scale(s, 0, op_done, NULL), -EINVAL);
        assert_int_equal(service_scale(s, WORKERS_MAX + 1, op_done, NULL), -EINVAL);
        assert_int_equal(service_live_workers(s), 1);
        teardown(s);
}

/* ---- completions that stop the service ---- */

/* As rpsupd does when its first generation fails: the completion stops the service at once. */
static void done_then_stop(Service *s, int r, const char *message, void *userdata) {
        op_done(s, r, message, userdata);
        if (r < 0)
                service_stop(s, NULL, NULL);
}

/* Regression: a failed first start whose completion stopped the service freed the generation under the code
 * that was failing it (use-after-free, then a double free). */
static void test_first_start_failure_completion_stops(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);

        /* ExecStart=/bin/false: the only worker exits before it is ready. */
        assert_int_equal(service_start(s, c, done_then_stop, NULL), 0);
        config_unref(c);
        exit_worker(s, s->pending->slots[0]->worker, CLD_EXITED, 1);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "worker 0"));
        assert_true(TAILQ_EMPTY(&s->generations));
        assert_int_equal(kills_with(SIGTERM), 0);
        teardown(s);
}

static void test_first_start_failure_completion_stops_others(void **state) {
        Service *s = setup_service();
        Config *c = config_new(3);
        Generation *g;

        assert_int_equal(service_start(s, c, done_then_stop, NULL), 0);
        config_unref(c);
        g = s->pending;
        service_worker_ready(s, g->slots[0]->worker);
        exit_worker(s, g->slots[0]->worker, CLD_KILLED, SIGKILL);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "worker 0"));
        assert_int_equal(s->state, SERVICE_STOPPING);
        /* The other two were asked to stop once, by the failure (the stop adds nothing). */
        assert_int_equal(kills_with(SIGTERM), 2);
        exit_signalled(s);
        assert_int_equal(s->state, SERVICE_STOPPED);
        assert_true(TAILQ_EMPTY(&s->generations));
        teardown(s);
}

static void test_first_start_spawn_failure_completion_stops(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);

        fake.spawn_error = -EAGAIN;
        assert_int_equal(service_start(s, c, done_then_stop, NULL), -EAGAIN);
        config_unref(c);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "cannot start worker 0"));
        assert_true(TAILQ_EMPTY(&s->generations));
        assert_int_equal(s->state, SERVICE_FAILED);
        teardown(s);
}

static void test_first_start_setup_failure_completion_stops(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);

        fake.generation_open_error = -EADDRINUSE;
        assert_int_equal(service_start(s, c, done_then_stop, NULL), -EADDRINUSE);
        config_unref(c);
        assert_int_equal(fake.done_calls, 1);
        assert_non_null(strstr(fake.done_message, "Address already in use"));
        assert_true(TAILQ_EMPTY(&s->generations));
        teardown(s);
}

/* Completions are told when the call that decided them returns, never in the middle of it. */
static unsigned nested_calls;
static void done_checks_consistency(Service *s, int r, const char *message, void *userdata) {
        nested_calls++;
        /* The state machine is at rest: the operation is over and every generation is whole. */
        assert_null(s->op);
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        assert_ptr_equal(g->slots[i]->generation, g);
}

/* Regression: completions ran while the state machine was half-way through a change. */
static void test_completion_runs_at_rest(void **state) {
        Service *s = start_running(2);
        Config *c = config_new(2);

        nested_calls = 0;
        service_reload(s, c, &(ReloadOptions) {}, done_checks_consistency, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(nested_calls, 1);
        teardown(s);
}

/* ---- workers that say things in odd orders ---- */

/* Regression: STOPPING=1 before READY=1 left the start waiting forever. */
static void test_stopping_before_ready_fails_start(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Generation *g;

        service_start(s, c, op_done, NULL);
        config_unref(c);
        g = s->pending;
        service_worker_stopping(s, g->slots[1]->worker);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "said STOPPING=1 before it was ready"));
        assert_int_equal(s->state, SERVICE_FAILED);
        /* READY=1 after STOPPING=1 changes nothing. */
        service_worker_ready(s, g->slots[1]->worker);
        assert_int_equal(fake.done_calls, 1);
        exit_signalled(s);
        assert_true(TAILQ_EMPTY(&s->generations));
        teardown(s);
}

static void test_stopping_after_ready_in_pending_fails_reload(void **state) {
        Service *s = start_running(2);
        Config *c = config_new(2);
        Generation *old = s->live, *g;

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        g = s->pending;
        service_worker_ready(s, g->slots[0]->worker);
        service_worker_stopping(s, g->slots[0]->worker);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "before its generation took connections"));
        assert_ptr_equal(s->live, old);
        assert_int_equal(s->state, SERVICE_RUNNING);
        exit_signalled(s);
        /* The service takes the next operation. */
        assert_int_equal(service_scale(s, 3, op_done, NULL), 0);
        teardown(s);
}

static void test_stopping_before_ready_fails_scale(void **state) {
        Service *s = start_running(1);
        Slot *joining;

        assert_int_equal(service_scale(s, 2, op_done, NULL), 0);
        joining = s->live->slots[1];
        service_worker_stopping(s, joining->worker);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_int_equal(s->state, SERVICE_RUNNING);
        exit_signalled(s);
        assert_int_equal(service_live_workers(s), 1);
        teardown(s);
}

static void test_stopping_before_ready_respawned_is_replaced(void **state) {
        Service *s = start_running(1);
        Slot *slot = s->live->slots[0];
        pid_t pid;

        exit_worker(s, slot->worker, CLD_KILLED, SIGSEGV);
        advance(s, slot->respawn_at - fake.now);
        pid = slot->worker->pid;
        service_worker_stopping(s, slot->worker);
        assert_true(killed(pid, SIGTERM));
        exit_signalled(s);
        /* A failure: respawned after a backoff, counted. */
        assert_int_not_equal(slot->respawn_at, USEC_INFINITY);
        assert_int_equal(s->counters.worker_failures, 2);
        assert_non_null(strstr(slot->last_failure, "stopped before it was ready"));
        teardown(s);
}

/* A serving worker that says STOPPING=1 and stays is stopped after TimeoutStopSec= and replaced. */
static void test_stopping_worker_that_lingers_is_replaced(void **state) {
        Service *s = start_running(2);
        Slot *slot = s->live->slots[0];
        pid_t pid = slot->worker->pid;

        service_worker_stopping(s, slot->worker);
        assert_int_equal(fake.n_serving, 1);
        assert_int_equal(slot->worker->state, WORKER_DRAINING);
        assert_int_equal(kills_with(SIGTERM), 0);
        advance(s, 5 * USEC_PER_SEC);
        assert_true(killed(pid, SIGTERM));
        exit_signalled(s);
        advance(s, slot->respawn_at - fake.now);
        assert_non_null(slot->worker);
        assert_int_not_equal(slot->worker->pid, pid);
        teardown(s);
}

/* A worker that says STOPPING=1 and exits is replaced; the replacement is not held to its deadline. */
/* Regression: the drain deadline of a worker that said STOPPING=1 outlived it and stopped its replacement. */
static void test_stopping_worker_that_exits_leaves_no_deadline(void **state) {
        Service *s = start_running(1);
        Slot *slot = s->live->slots[0];
        pid_t next;

        s->live->config->restart = RESTART_ALWAYS; /* a worker that recycles itself */
        service_worker_stopping(s, slot->worker);
        exit_worker(s, slot->worker, CLD_EXITED, 0);
        advance(s, slot->respawn_at - fake.now);
        next = slot->worker->pid;
        service_worker_ready(s, slot->worker);
        advance(s, 60 * USEC_PER_SEC);
        assert_int_equal(fake.n_kills, 0);
        assert_int_equal(slot->worker->pid, next);
        assert_int_equal(slot->worker->state, WORKER_READY);
        assert_int_equal(s->counters.worker_failures, 0);
        teardown(s);
}

/* Regression: EXTEND_TIMEOUT_USEC= sent forever held a start forever. */
static void test_extend_timeout_is_bounded(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);
        Worker *w;
        usec_t t0 = fake.now;

        service_start(s, c, op_done, NULL);
        config_unref(c);
        w = s->pending->slots[0]->worker;
        while (fake.done_calls == 0 && fake.now - t0 < 3600 * USEC_PER_SEC) {
                service_worker_extend_timeout(s, w, 20 * USEC_PER_SEC);
                advance(s, USEC_PER_SEC);
        }
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_true(fake.now - t0 <= READY_EXTEND_FACTOR * 10 * USEC_PER_SEC + USEC_PER_SEC);
        assert_true(fake.now - t0 >= READY_EXTEND_FACTOR * 10 * USEC_PER_SEC);
        exit_signalled(s);
        teardown(s);
}

/* WATCHDOG=1 before READY=1 neither readies nor arms anything. */
static void test_watchdog_before_ready(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);
        Worker *w;

        c->watchdog = USEC_PER_SEC;
        service_start(s, c, op_done, NULL);
        config_unref(c);
        w = s->pending->slots[0]->worker;
        service_worker_watchdog(s, w);
        assert_int_equal(w->state, WORKER_STARTING);
        assert_int_equal(w->watchdog_deadline, USEC_INFINITY);
        advance(s, 10 * USEC_PER_SEC + 1);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        exit_signalled(s);
        teardown(s);
}

/* ---- crashes while retiring ---- */

/* Regression: a retiring worker that crashed was logged at debug level and counted nowhere. */
static void test_crash_while_retiring_is_counted(void **state) {
        Service *s = start_running(3);
        Generation *old = s->live;
        Config *c = config_new(3);
        Worker *w0, *w1, *w2;

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        w0 = old->slots[0]->worker;
        w1 = old->slots[1]->worker;
        w2 = old->slots[2]->worker;
        assert_true(killed(w0->pid, SIGTERM));
        exit_worker(s, w0, CLD_DUMPED, SIGABRT);     /* a crash */
        exit_worker(s, w1, CLD_KILLED, SIGTERM);     /* as asked */
        exit_worker(s, w2, CLD_EXITED, 0);           /* as asked */
        assert_int_equal(s->counters.retiring_failures, 1);
        assert_int_equal(s->counters.worker_failures, 0);
        teardown(s);
}

/* Regression: the SIGKILL sent after TimeoutStopSec= counted as a crash while retiring. */
/* The workers of a generation that failed to start exit as they please: that is the failed start's story. */
static void test_failed_generation_exits_are_not_retiring_failures(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(3);
        Worker *w[3];

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        for (size_t i = 0; i < 3; i++)
                w[i] = s->pending->slots[i]->worker; /* slots without a process go as the generation fails */
        exit_worker(s, w[0], CLD_EXITED, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        exit_worker(s, w[1], CLD_EXITED, 1);
        exit_worker(s, w[2], CLD_DUMPED, SIGSEGV);
        assert_int_equal(s->counters.retiring_failures, 0);
        assert_int_equal(s->counters.reloads_failed, 1);
        teardown(s);
}

/* A respawned worker retired before it was ready, that then crashes, is a crash while retiring all the same. */
static void test_starting_respawn_crash_while_retiring_is_counted(void **state) {
        Service *s = start_running(2);
        Slot *slot = s->live->slots[1];
        Worker *w;

        exit_worker(s, slot->worker, CLD_KILLED, SIGKILL);
        advance(s, slot->respawn_at - fake.now);
        w = slot->worker;
        assert_int_equal(w->state, WORKER_STARTING);
        assert_int_equal(service_scale(s, 1, op_done, NULL), 0);
        assert_true(killed(w->pid, SIGTERM));
        exit_worker(s, w, CLD_DUMPED, SIGSEGV);
        assert_int_equal(s->counters.retiring_failures, 1);
        teardown(s);
}

static void test_sigkill_after_stop_timeout_is_not_a_crash(void **state) {
        Service *s = start_running(1);
        Worker *w = s->live->slots[0]->worker;

        service_stop(s, NULL, NULL);
        advance(s, 5 * USEC_PER_SEC + 1);
        assert_int_equal(w->state, WORKER_KILLED);
        exit_worker(s, w, CLD_KILLED, SIGKILL);
        assert_int_equal(s->counters.retiring_failures, 0);
        assert_int_equal(s->state, SERVICE_STOPPED);
        teardown(s);
}

/* ---- crashes, watchdog ---- */

static void test_crash_respawns_with_backoff(void **state) {
        Service *s = start_running(2);
        Slot *slot = s->live->slots[1];
        usec_t delays[8];

        for (unsigned i = 0; i < 8; i++) {
                usec_t t0 = fake.now;
                exit_worker(s, slot->worker, CLD_KILLED, SIGKILL);
                assert_null(slot->worker);
                /* Out of the steering while it is down. */
                assert_int_equal(fake.n_serving, 1);
                delays[i] = slot->respawn_at - t0;
                advance(s, delays[i]);
                assert_non_null(slot->worker);
                assert_int_equal(slot->index, 1);
                service_worker_ready(s, slot->worker);
                assert_int_equal(fake.n_serving, 2);
        }
        assert_int_equal(delays[0], 100 * USEC_PER_MSEC);
        assert_int_equal(delays[1], 200 * USEC_PER_MSEC);
        assert_int_equal(delays[2], 400 * USEC_PER_MSEC);
        assert_true(delays[7] <= RESTART_DELAY_MAX_USEC);
        assert_int_equal(slot->restarts, 8);
        assert_true(slot->consecutive_failures >= CRASH_LOOP_FAILURES);
        assert_non_null(strstr(slot->last_failure, "killed by SIGKILL"));

        /* A worker that stays up long enough resets the backoff. */
        advance(s, RESTART_HEALTHY_USEC);
        exit_worker(s, slot->worker, CLD_EXITED, 1);
        assert_int_equal(slot->respawn_at - fake.now, 100 * USEC_PER_MSEC);
        teardown(s);
}

static void test_clean_exit_with_restart_on_failure(void **state) {
        Service *s = start_running(1);
        Slot *slot = s->live->slots[0];

        exit_worker(s, slot->worker, CLD_EXITED, 0);
        assert_int_equal(slot->respawn_at, USEC_INFINITY);
        assert_null(slot->worker);
        teardown(s);
}

static void test_restart_no(void **state) {
        Service *s = setup_service();
        Config *c = config_new(1);

        c->restart = RESTART_NO;
        service_start(s, c, NULL, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        exit_worker(s, s->live->slots[0]->worker, CLD_EXITED, 1);
        assert_int_equal(s->live->slots[0]->respawn_at, USEC_INFINITY);
        advance(s, 60 * USEC_PER_SEC);
        assert_int_equal(fake.spawns, 1);
        teardown(s);
}

static void test_watchdog_replaces_hung_worker(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Slot *slot;
        pid_t pid;

        c->watchdog = 2 * USEC_PER_SEC;
        service_start(s, c, NULL, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        slot = s->live->slots[0];
        pid = slot->worker->pid;
        for (unsigned i = 0; i < 5; i++) {
                advance(s, USEC_PER_SEC);
                service_worker_watchdog(s, slot->worker);
                service_worker_watchdog(s, s->live->slots[1]->worker);
        }
        assert_int_equal(fake.n_kills, 0);
        /* Slot 0 goes silent. */
        for (unsigned i = 0; i < 3; i++) {
                advance(s, USEC_PER_SEC);
                service_worker_watchdog(s, s->live->slots[1]->worker);
        }
        assert_true(killed(pid, SIGABRT));
        assert_int_equal(fake.n_serving, 1);
        assert_int_equal(s->counters.watchdog_kills, 1);
        /* Its replacement starts at once, beside it. */
        assert_non_null(slot->worker);
        assert_true(slot->worker->pid != pid);
        assert_int_equal(slot->worker->state, WORKER_STARTING);
        assert_true(service_find_worker(s, pid)->departing);
        exit_worker(s, service_find_worker(s, pid), CLD_DUMPED, SIGABRT);
        assert_null(service_find_worker(s, pid));
        assert_int_equal(slot->n_departing, 0);
        service_worker_ready(s, slot->worker);
        assert_int_equal(fake.n_serving, 2);
        teardown(s);
}

static void test_respawned_worker_not_ready_is_replaced(void **state) {
        Service *s = start_running(1);
        Slot *slot = s->live->slots[0];
        pid_t pid;

        exit_worker(s, slot->worker, CLD_EXITED, 1);
        advance(s, USEC_PER_SEC);
        pid = slot->worker->pid;
        advance(s, 11 * USEC_PER_SEC);
        assert_true(killed(pid, SIGTERM));
        assert_int_equal(slot->worker->stop_reason, STOP_READY_TIMEOUT);
        exit_worker(s, slot->worker, CLD_EXITED, 0);
        /* A worker killed for not being ready is a failure even if it exits 0. */
        assert_true(slot->respawn_at != USEC_INFINITY);
        teardown(s);
}

static void test_worker_says_stopping(void **state) {
        Service *s = start_running(2);
        Slot *slot = s->live->slots[0];
        Worker *w = slot->worker;
        unsigned spawns = fake.spawns;

        service_worker_stopping(s, w);
        /* Out of the steering at once, draining for TimeoutStopSec=. */
        assert_int_equal(fake.n_serving, 1);
        assert_int_not_equal(fake.serving[0], w->pid);
        assert_false(slot_is_serving(slot));
        assert_int_equal(w->state, WORKER_DRAINING);
        assert_int_equal(slot->drain_deadline, fake.now + 5 * USEC_PER_SEC);
        assert_false(slot->retiring);
        /* No respawn while it drains, and no signal before TimeoutStopSec=. */
        advance(s, 5 * USEC_PER_SEC - 1);
        assert_int_equal(fake.spawns, spawns);
        assert_int_equal(fake.n_kills, 0);
        assert_ptr_equal(slot->worker, w);
        assert_int_equal(w->state, WORKER_DRAINING);
        assert_int_equal(s->counters.worker_failures, 0);
        /* The other worker is untouched. */
        assert_int_equal(s->live->slots[1]->worker->state, WORKER_READY);
        teardown(s);
}

static void test_status_text_is_one_line(void **state) {
        Service *s = start_running(1);
        Worker *w = s->live->slots[0]->worker;
        char longtext[1000];

        service_worker_status(s, w, "line one\nline two");
        assert_string_equal(w->status_text, "line one line two");
        memset(longtext, 'x', sizeof(longtext) - 1);
        longtext[sizeof(longtext) - 1] = 0;
        service_worker_status(s, w, longtext);
        assert_int_equal(strlen(w->status_text), STATUS_TEXT_MAX);
        teardown(s);
}

/* ---- stop ---- */

static void test_stop_then_sigkill(void **state) {
        Service *s = start_running(2);
        Generation *g = s->live;
        pid_t p0 = g->slots[0]->worker->pid;

        fake.done_calls = 0;
        assert_int_equal(service_stop(s, op_done, NULL), 0);
        assert_int_equal(s->state, SERVICE_STOPPING);
        assert_int_equal(kills_with(SIGTERM), 2);
        /* Each worker is retired; the strategy gives no drain window here (retire() says 0), so it is
         * asked to stop now. The listeners stay for the next rpsupd. */
        assert_int_equal(fake.retired, 2);
        exit_worker(s, g->slots[1]->worker, CLD_EXITED, 0);
        assert_int_equal(fake.done_calls, 0);
        advance(s, 5 * USEC_PER_SEC + 1);
        assert_true(killed(p0, SIGKILL));
        exit_worker(s, g->slots[0]->worker, CLD_KILLED, SIGKILL);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(s->state, SERVICE_STOPPED);
        assert_true(TAILQ_EMPTY(&s->generations));
        /* A second stop completes at once. */
        assert_int_equal(service_stop(s, op_done, NULL), 0);
        assert_int_equal(fake.done_calls, 2);
        teardown(s);
}

static void test_stop_during_reload(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);
        unsigned reload_done_calls;

        service_reload(s, c, &(ReloadOptions) {}, op_done, NULL);
        config_unref(c);
        service_stop(s, NULL, NULL);
        reload_done_calls = fake.done_calls;
        assert_int_equal(reload_done_calls, 1);
        assert_int_equal(fake.done_r, -ESHUTDOWN);
        assert_int_equal(kills_with(SIGTERM), 2);
        assert_int_equal(service_reload(s, c = config_new(1), &(ReloadOptions) {}, op_done, NULL), -ESHUTDOWN);
        config_unref(c);
        exit_signalled(s);
        assert_int_equal(s->state, SERVICE_STOPPED);
        teardown(s);
}

static void test_stop_while_draining(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);

        fake.retire_delay = 30 * USEC_PER_SEC;
        service_reload(s, c, &(ReloadOptions) {}, NULL, NULL);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(kills_with(SIGTERM), 0);
        service_stop(s, op_done, NULL);
        /* Both drain: the one already draining keeps its window, the live one gets one. */
        assert_int_equal(s->state, SERVICE_STOPPING);
        assert_int_equal(kills_with(SIGTERM), 0);
        advance(s, USEC_PER_SEC);
        assert_int_equal(kills_with(SIGTERM), 0);
        /* Asked again: every drain ends now. */
        service_stop(s, op_done, NULL);
        service_stop_now(s);
        advance(s, 1);
        assert_int_equal(kills_with(SIGTERM), 2);
        exit_signalled(s);
        assert_int_equal(s->state, SERVICE_STOPPED);
        teardown(s);
}

/* ---- adoption ---- */

static void test_adopt_and_resume(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Generation *g1, *g2;
        Slot *slot;

        g1 = service_adopt_generation(s, 4, GENERATION_RETIRING, c);
        slot = service_adopt_slot(s, g1, 0, 7, true);
        service_adopt_worker(s, slot, 500, WORKER_DRAINING, fake.now);
        g2 = service_adopt_generation(s, 5, GENERATION_LIVE, c);
        slot = service_adopt_slot(s, g2, 0, 8, false);
        service_adopt_worker(s, slot, 501, WORKER_READY, fake.now);
        service_adopt_slot(s, g2, 1, 9, false); /* its worker was gone */
        config_unref(c);

        assert_int_equal(service_resume(s, op_done, NULL), 1);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_ptr_equal(s->live, g2);
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_true(killed(500, SIGTERM));     /* the retiring one keeps retiring */
        assert_false(killed(501, SIGTERM));
        assert_int_equal(fake.n_serving, 1);
        advance(s, USEC_PER_SEC);              /* the empty slot is filled */
        assert_non_null(g2->slots[1]->worker);
        assert_int_equal(s->next_generation_id, 6);
        assert_int_equal(s->next_slot_id, 10);
        teardown(s);
}

static void test_resume_after_a_stop_starts_afresh(void **state) {
        Service *s = setup_service();
        Config *c = config_new(2);
        Generation *g;
        Slot *slot;

        /* The previous rpsupd was stopping: only a retiring generation is left. */
        g = service_adopt_generation(s, 3, GENERATION_RETIRING, c);
        slot = service_adopt_slot(s, g, 0, 5, true);
        service_adopt_worker(s, slot, 400, WORKER_STOPPING, fake.now);
        assert_int_equal(service_resume(s, op_done, NULL), 0);
        assert_int_equal(fake.done_calls, 0);
        /* The caller starts a new generation beside it. */
        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        assert_int_equal(s->pending->id, 4);
        ready_all(s, s->pending);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(s->live->id, 4);
        exit_signalled(s);
        assert_int_equal(service_count_generations(s), 1);
        config_unref(c);
        teardown(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_waits_for_every_worker),
                cmocka_unit_test(test_start_ready_timeout_fails),
                cmocka_unit_test(test_start_early_exit_fails),
                cmocka_unit_test(test_ready_exec),
                cmocka_unit_test(test_exec_failure_is_reported),
                cmocka_unit_test(test_spawn_failure_fails_start),
                cmocka_unit_test(test_reload_switches_generations),
                cmocka_unit_test(test_reload_rollback_on_early_exit),
                cmocka_unit_test(test_reload_rollback_on_timeout),
                cmocka_unit_test(test_reload_generation_open_failure),
                cmocka_unit_test(test_reload_wait_answers_when_old_is_gone),
                cmocka_unit_test(test_reload_busy),
                cmocka_unit_test(test_overlapping_drains_are_bounded),
                cmocka_unit_test(test_reload_keeps_runtime_scale),
                cmocka_unit_test(test_scale_out),
                cmocka_unit_test(test_scale_out_failure_rolls_back),
                cmocka_unit_test(test_scale_in_retires_highest),
                cmocka_unit_test(test_scale_invalid),
                cmocka_unit_test(test_first_start_failure_completion_stops),
                cmocka_unit_test(test_first_start_failure_completion_stops_others),
                cmocka_unit_test(test_first_start_spawn_failure_completion_stops),
                cmocka_unit_test(test_first_start_setup_failure_completion_stops),
                cmocka_unit_test(test_completion_runs_at_rest),
                cmocka_unit_test(test_stopping_before_ready_fails_start),
                cmocka_unit_test(test_stopping_after_ready_in_pending_fails_reload),
                cmocka_unit_test(test_stopping_before_ready_fails_scale),
                cmocka_unit_test(test_stopping_before_ready_respawned_is_replaced),
                cmocka_unit_test(test_stopping_worker_that_lingers_is_replaced),
                cmocka_unit_test(test_stopping_worker_that_exits_leaves_no_deadline),
                cmocka_unit_test(test_extend_timeout_is_bounded),
                cmocka_unit_test(test_watchdog_before_ready),
                cmocka_unit_test(test_crash_while_retiring_is_counted),
                cmocka_unit_test(test_failed_generation_exits_are_not_retiring_failures),
                cmocka_unit_test(test_starting_respawn_crash_while_retiring_is_counted),
                cmocka_unit_test(test_sigkill_after_stop_timeout_is_not_a_crash),
                cmocka_unit_test(test_crash_respawns_with_backoff),
                cmocka_unit_test(test_clean_exit_with_restart_on_failure),
                cmocka_unit_test(test_restart_no),
                cmocka_unit_test(test_watchdog_replaces_hung_worker),
                cmocka_unit_test(test_respawned_worker_not_ready_is_replaced),
                cmocka_unit_test(test_worker_says_stopping),
                cmocka_unit_test(test_status_text_is_one_line),
                cmocka_unit_test(test_stop_then_sigkill),
                cmocka_unit_test(test_stop_during_reload),
                cmocka_unit_test(test_stop_while_draining),
                cmocka_unit_test(test_adopt_and_resume),
                cmocka_unit_test(test_resume_after_a_stop_starts_afresh),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
