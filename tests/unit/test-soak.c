/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Health gates of the generation state machine, on a fake clock: the soak with the previous generation kept
 * warm, rollback and promotion, canaries, and readiness probes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "service-fake.h"

#define SOAK (5 * USEC_PER_SEC)

static Config *soak_config(unsigned workers) {
        Config *c = config_new(workers);

        c->soak = SOAK;
        return c;
}

static bool serving(pid_t pid) {
        for (unsigned i = 0; i < fake.n_serving; i++)
                if (fake.serving[i] == pid)
                        return true;
        return false;
}

static bool in_warm_set(pid_t pid) {
        for (unsigned i = 0; i < fake.n_warm; i++)
                if (fake.warm[i] == pid)
                        return true;
        return false;
}

/* A running service (generation 1) reloaded into generation 2, whose workers are ready: it soaks. */
static Service *soaking(unsigned workers, const ReloadOptions *o) {
        Service *s = start_running(workers);
        Config *c = soak_config(workers);

        assert_int_equal(service_reload(s, c, o, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(s->live->id, 2);
        assert_int_equal(s->live->state, GENERATION_SOAKING);
        assert_non_null(s->warm);
        assert_int_equal(s->warm->id, 1);
        assert_int_equal(s->warm->state, GENERATION_WARM);
        return s;
}

static void test_soak_keeps_previous_warm_then_promotes(void **state) {
        Service *s = soaking(2, &(ReloadOptions) {});
        Generation *g1 = s->warm, *g2 = s->live;

        /* g2 takes every new connection; g1's workers stay up, out of the steering. */
        assert_int_equal(s->state, SERVICE_RELOADING);
        assert_int_equal(fake.done_calls, 0); /* the reload waits through the soak */
        assert_int_equal(fake.n_serving, 2);
        assert_true(serving(g2->slots[0]->worker->pid) && serving(g2->slots[1]->worker->pid));
        assert_int_equal(fake.n_warm, 0);
        assert_int_equal(fake.n_kills, 0);
        assert_int_equal(fake.retired, 0);
        assert_int_equal(service_next_deadline(s), fake.now + SOAK);

        advance(s, SOAK - 1);
        assert_int_equal(fake.done_calls, 0);
        advance(s, 1);
        /* A clean soak: g2 is live, g1 retires as after any reload. */
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(g2->state, GENERATION_LIVE);
        assert_int_equal(g1->state, GENERATION_RETIRING);
        assert_null(s->warm);
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_int_equal(kills_with(SIGTERM), 2);
        assert_int_equal(s->counters.reloads_ok, 1);
        assert_int_equal(s->last_reload.outcome, RELOAD_PROMOTED);
        assert_string_equal(s->last_reload.by, "soak");
        exit_signalled(s);
        assert_null(generation_by_id(s, 1));
        teardown(s);
}

static void test_worker_exit_during_soak_rolls_back(void **state) {
        Service *s = soaking(2, &(ReloadOptions) {});
        Generation *g1 = s->warm, *g2 = s->live;
        pid_t old0 = g1->slots[0]->worker->pid, old1 = g1->slots[1]->worker->pid;
        pid_t new0 = g2->slots[0]->worker->pid;
        unsigned spawns = fake.spawns;

        fake.now += USEC_PER_SEC;
        exit_worker(s, g2->slots[1]->worker, CLD_EXITED, 3);

        /* One steering update back to g1, no process started, the reload fails with the reason. */
        assert_ptr_equal(s->live, g1);
        assert_int_equal(g1->state, GENERATION_LIVE);
        assert_int_equal(g2->state, GENERATION_RETIRING);
        assert_null(s->warm);
        assert_true(serving(old0) && serving(old1));
        assert_false(serving(new0));
        assert_int_equal(fake.spawns, spawns);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "failed during its soak: worker 1"));
        assert_non_null(strstr(fake.done_message, "exited with status 3"));
        assert_non_null(strstr(fake.done_message, "generation 1 serves again"));
        assert_int_equal(s->counters.reloads_rolled_back, 1);
        assert_int_equal(s->counters.reloads_ok, 0);
        assert_int_equal(s->last_reload.outcome, RELOAD_ROLLED_BACK);
        assert_string_equal(s->last_reload.by, "rpsupd");
        assert_int_equal(s->state, SERVICE_RUNNING);
        assert_int_equal(s->soak_deadline, USEC_INFINITY);
        /* g1 was never asked to stop; g2 failed: its queues move to g1 at once (abandon), and its workers
         * drain what they had accepted (the fake strategy gives no window: asked to stop now). */
        assert_false(killed(old0, SIGTERM));
        assert_false(killed(old1, SIGTERM));
        assert_int_equal(fake.abandoned, 2);
        assert_true(killed(new0, SIGTERM));
        advance(s, 60 * USEC_PER_SEC);
        exit_signalled(s);
        assert_null(generation_by_id(s, 2));
        /* The service can reload again. */
        assert_int_equal(service_reload(s, g1->config, &(ReloadOptions) { .no_soak = true }, op_done, NULL), 0);
        teardown(s);
}

static void test_failed_generation_drains_what_it_accepted(void **state) {
        Service *s = soaking(2, &(ReloadOptions) {});
        Generation *g2 = s->live;
        pid_t new0 = g2->slots[0]->worker->pid;

        /* With a drain window: worker 0 of g2 has a request open when worker 1 crashes. */
        fake.retire_delay = 30 * USEC_PER_SEC;
        fake.drain_known = true;
        fake.drain[0] = (SlotDrainState) { .accept_queue = 0, .open_connections = 1 };
        exit_worker(s, g2->slots[1]->worker, CLD_EXITED, 3);
        assert_int_equal(s->live->id, 1);
        /* Its queues moved to g1 at once; worker 0 finishes its request before it is asked to stop. */
        assert_int_equal(fake.abandoned, 2);
        advance(s, USEC_PER_SEC);
        assert_false(killed(new0, SIGTERM));
        fake.drain[0].open_connections = 0;
        advance(s, 2 * DRAIN_CHECK_USEC);
        assert_true(killed(new0, SIGTERM));
        assert_int_equal(fake.abandoned, 2); /* not again */
        teardown(s);
}

/* A reload's Steering= applies once its generation is promoted; a rolled-back one leaves the policy. */
static void test_reload_steering_applies_at_promotion(void **state) {
        for (int rollback = 0; rollback <= 1; rollback++) {
                Service *s = start_running(2);
                Config *c = soak_config(2);

                c->steering = STEERING_HASH;
                assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
                config_unref(c);
                ready_all(s, s->pending);
                assert_int_equal(s->live->state, GENERATION_SOAKING);
                assert_int_equal(s->steering, STEERING_ROUND_ROBIN);
                if (rollback) {
                        exit_worker(s, s->live->slots[1]->worker, CLD_EXITED, 3);
                        assert_int_equal(s->steering, STEERING_ROUND_ROBIN);
                } else {
                        advance(s, SOAK);
                        assert_int_equal(s->steering, STEERING_HASH);
                        assert_int_equal(s->steering_by, STEERING_BY_CONFIG);
                }
                teardown(s);
        }
}

static void test_watchdog_and_stall_during_soak_roll_back(void **state) {
        for (int stall = 0; stall <= 1; stall++) {
                Service *s = start_running(2);
                Config *c = soak_config(2);
                Generation *g2;

                c->watchdog = stall ? 0 : USEC_PER_SEC;
                assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
                config_unref(c);
                ready_all(s, s->pending);
                g2 = s->live;
                assert_int_equal(g2->state, GENERATION_SOAKING);
                if (stall)
                        service_slot_stalled(s, g2->slots[0]);
                else
                        advance(s, 2 * USEC_PER_SEC); /* no WATCHDOG=1 */
                assert_int_equal(fake.done_r, -ECANCELED);
                assert_non_null(strstr(fake.done_message, stall ? "accepted nothing" : "sent no WATCHDOG=1"));
                assert_int_equal(s->live->id, 1);
                assert_int_equal(g2->state, GENERATION_RETIRING);
                /* A hung worker gets SIGABRT for its core, as outside a soak. */
                assert_true(stall || killed(g2->slots[0]->worker->pid, SIGABRT));
                teardown(s);
        }
}

static void test_stopping_during_soak_rolls_back(void **state) {
        Service *s = soaking(2, &(ReloadOptions) {});

        service_worker_stopping(s, s->live->slots[0]->worker);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "said STOPPING=1 during the soak"));
        assert_int_equal(s->live->id, 1);
        teardown(s);
}

static void test_canary_shares_then_promote(void **state) {
        Service *s = soaking(2, &(ReloadOptions) { .canary = 10 });
        Generation *g1 = s->warm, *g2 = s->live;

        /* 10 % to g2's workers, the rest to g1's. */
        assert_int_equal(s->canary, 10);
        assert_int_equal(fake.canary, 10);
        assert_true(serving(g2->slots[0]->worker->pid));
        assert_int_equal(fake.n_warm, 2);
        assert_true(in_warm_set(g1->slots[0]->worker->pid) && in_warm_set(g1->slots[1]->worker->pid));

        /* An operator ends the soak early. */
        fake.done_calls = 0;
        assert_int_equal(service_promote(s, "uid 0", NULL, NULL), 0);
        assert_int_equal(fake.done_calls, 1); /* the reload */
        assert_int_equal(fake.done_r, 0);
        assert_int_equal(s->canary, 0);
        assert_int_equal(fake.n_warm, 0);
        assert_int_equal(g2->state, GENERATION_LIVE);
        assert_int_equal(g1->state, GENERATION_RETIRING);
        assert_string_equal(s->last_reload.by, "uid 0");
        assert_int_equal(s->soak_deadline, USEC_INFINITY);
        teardown(s);
}

static void test_operator_rollback(void **state) {
        Service *s = soaking(2, &(ReloadOptions) { .canary = 50 });
        Generation *g1 = s->warm;

        fake.done_calls = 0;
        assert_int_equal(service_rollback(s, "uid 0", op_done, NULL), 0);
        /* The reload (rolled back) and the rollback call (done) both hear. */
        assert_int_equal(fake.done_calls, 2);
        assert_int_equal(fake.done_r, 0);
        assert_ptr_equal(s->live, g1);
        assert_int_equal(s->canary, 0);
        assert_int_equal(s->counters.reloads_rolled_back_by_operator, 1);
        assert_int_equal(s->counters.reloads_rolled_back, 0);
        assert_int_equal(s->last_reload.outcome, RELOAD_ROLLED_BACK);
        /* Nothing says the generation is bad: it drains as if replaced, nothing is moved from under it. */
        assert_int_equal(fake.abandoned, 0);
        /* Nothing soaks any more. */
        assert_int_equal(service_promote(s, "uid 0", op_done, NULL), -ESRCH);
        assert_int_equal(service_rollback(s, "uid 0", op_done, NULL), -ESRCH);
        teardown(s);
}

static void test_reload_scale_stop_during_soak(void **state) {
        Service *s = soaking(2, &(ReloadOptions) {});
        Config *c = soak_config(2);

        /* One change at a time: a reload or a scale during a soak is refused, and says how to end it. */
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), -EBUSY);
        assert_non_null(strstr(fake.done_message, "generation 2 is soaking"));
        assert_non_null(strstr(fake.done_message, "promote or roll it back first"));
        assert_int_equal(service_scale(s, 4, op_done, NULL), -EBUSY);
        assert_int_equal(s->live->state, GENERATION_SOAKING);
        config_unref(c);

        /* A stop ends both generations; the reload fails. */
        fake.done_calls = 0;
        assert_int_equal(service_stop(s, NULL, NULL), 0);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, -ESHUTDOWN);
        assert_null(s->warm);
        assert_int_equal(s->last_reload.outcome, RELOAD_STOPPED);
        assert_int_equal(kills_with(SIGTERM), 4);
        exit_signalled(s);
        assert_int_equal(s->state, SERVICE_STOPPED);
        teardown(s);
}

static void test_reload_options_refused(void **state) {
        Service *s = start_running(1);
        Config *c = config_new(1);

        /* A canary without a soak. */
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .canary = 10 }, op_done, NULL), -EINVAL);
        assert_non_null(strstr(fake.done_message, "a canary needs a soak"));
        c->soak = SOAK;
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .canary = 10, .no_soak = true }, op_done, NULL),
                         -EINVAL);
        assert_non_null(strstr(fake.done_message, "--no-soak"));
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .canary = 101 }, op_done, NULL), -EINVAL);
        /* With one shared queue there is no share to give. */
        fake_strategy.kind = STRATEGY_HANDOFF;
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .canary = 10 }, op_done, NULL), -EINVAL);
        assert_non_null(strstr(fake.done_message, "per-worker listeners"));
        fake_strategy.kind = STRATEGY_DRAIN;
        assert_int_equal(s->counters.reloads_refused, 4);
        assert_null(s->pending);

        /* --no-soak: live at once, as without SoakSec=. */
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .no_soak = true }, op_done, NULL), 0);
        ready_all(s, s->pending);
        assert_int_equal(s->live->state, GENERATION_LIVE);
        assert_null(s->warm);
        assert_int_equal(fake.done_r, 0);
        config_unref(c);
        teardown(s);
}

static void test_warm_worker_back_in_canary(void **state) {
        Service *s = soaking(2, &(ReloadOptions) { .canary = 10 });
        Generation *g1 = s->warm;
        Worker *w;

        assert_int_equal(fake.n_warm, 2);
        /* A warm worker crashes: out of the canary's rest, respawned, and back in it once ready. */
        exit_worker(s, g1->slots[0]->worker, CLD_KILLED, SIGSEGV);
        assert_int_equal(fake.n_warm, 1);
        assert_int_equal(s->live->state, GENERATION_SOAKING); /* the warm generation's trouble is not the canary's */
        advance(s, USEC_PER_SEC);
        w = g1->slots[0]->worker;
        assert_non_null(w);
        service_worker_ready(s, w);
        assert_int_equal(fake.n_warm, 2);
        assert_true(in_warm_set(w->pid));
        teardown(s);
}

static void test_canary_default_and_no_soak(void **state) {
        Service *s = start_running(1);
        Config *c = soak_config(1);

        c->canary = 10;
        /* --no-soak: no soak, so no canary either (Canary= is a default, not a demand). */
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .no_soak = true }, op_done, NULL), 0);
        ready_all(s, s->pending);
        assert_int_equal(s->live->state, GENERATION_LIVE);
        assert_int_equal(fake.done_r, 0);
        /* A strategy that cannot share connections out ignores the default (logged) but refuses --canary. */
        exit_signalled(s);
        fake_strategy.kind = STRATEGY_HANDOFF;
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        ready_all(s, s->pending);
        assert_int_equal(s->live->state, GENERATION_SOAKING);
        assert_int_equal(s->canary, 0);
        assert_int_equal(service_promote(s, "uid 0", NULL, NULL), 0);
        exit_signalled(s);
        assert_int_equal(service_reload(s, c, &(ReloadOptions) { .canary = 20 }, op_done, NULL), -EINVAL);
        fake_strategy.kind = STRATEGY_DRAIN;
        config_unref(c);
        teardown(s);
}

/* ---- readiness probes ---- */

static Config *probe_config(unsigned workers) {
        Config *c = soak_config(workers);

        c->probe = PROBE_HTTP;
        c->probe_interval = USEC_PER_SEC;
        c->probe_timeout = 2 * USEC_PER_SEC;
        c->probe_passes = 2;
        c->probe_failures = 3;
        return c;
}

static Worker *probed_worker(Service *s, pid_t pid) {
        Worker *w = service_find_worker(s, pid);

        assert_non_null(w);
        assert_true(w->probing);
        return w;
}

static void test_probe_gates_readiness(void **state) {
        Service *s = setup_service_with(&fake_host_probing);
        Config *c = probe_config(1);
        Worker *w;

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        w = s->pending->slots[0]->worker;
        service_worker_ready(s, w);
        /* READY=1 is a claim: the worker stays starting until its probes pass. */
        assert_int_equal(w->state, WORKER_STARTING);
        assert_int_equal(fake.probes, 0);
        advance(s, 0);
        assert_int_equal(fake.probes, 1);
        assert_int_equal(fake.probed[0], w->pid);
        /* No second attempt while one runs. */
        advance(s, USEC_PER_SEC);
        assert_int_equal(fake.probes, 1);
        service_worker_probed(s, probed_worker(s, w->pid), 0, NULL);
        assert_int_equal(w->state, WORKER_STARTING); /* 1 of 2 passes */
        advance(s, USEC_PER_SEC);
        assert_int_equal(fake.probes, 2);
        service_worker_probed(s, probed_worker(s, w->pid), -EIO, "HTTP 503 Service Unavailable");
        assert_int_equal(w->probe_passes, 0);        /* in a row */
        assert_int_equal(s->counters.probe_failures, 1);
        advance(s, USEC_PER_SEC);
        service_worker_probed(s, probed_worker(s, w->pid), 0, NULL);
        advance(s, USEC_PER_SEC);
        service_worker_probed(s, probed_worker(s, w->pid), 0, NULL);
        assert_int_equal(w->state, WORKER_READY);
        assert_int_equal(fake.done_r, 0);
        assert_ptr_equal(s->live, w->slot->generation);
        /* Live and not soaking: no more probes. */
        advance(s, 10 * USEC_PER_SEC);
        assert_int_equal(fake.probes, 4);
        config_unref(c);
        teardown(s);
}

static void test_probe_failures_fail_the_reload(void **state) {
        Service *s = setup_service_with(&fake_host_probing);
        Config *c = config_new(1);
        Generation *g1;
        Worker *w;

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        g1 = s->live;
        c = probe_config(2);
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        w = s->pending->slots[1]->worker;
        for (unsigned i = 0; i < 3; i++) {
                advance(s, USEC_PER_SEC);
                service_worker_probed(s, probed_worker(s, w->pid), -EIO, "HTTP 500 Internal Server Error");
        }
        /* Three in a row: the generation never took a connection; generation 1 serves on. */
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "worker 1"));
        assert_non_null(strstr(fake.done_message, "failed its readiness probe 3 times in a row: HTTP 500"));
        assert_ptr_equal(s->live, g1);
        assert_null(s->warm);
        assert_int_equal(s->last_reload.outcome, RELOAD_FAILED);
        assert_int_equal(s->counters.reloads_failed, 1);
        assert_true(killed(w->pid, SIGTERM));
        teardown(s);
}

static void test_probe_failure_during_soak_rolls_back(void **state) {
        Service *s = setup_service_with(&fake_host_probing);
        Config *c = config_new(1);
        Generation *g2;
        Worker *w;

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        c = probe_config(1);
        c->probe_passes = 1;
        c->probe_failures = 2;
        assert_int_equal(service_reload(s, c, &(ReloadOptions) {}, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        w = s->pending->slots[0]->worker;
        advance(s, 0);
        service_worker_probed(s, probed_worker(s, w->pid), 0, NULL);
        g2 = s->live;
        assert_int_equal(g2->state, GENERATION_SOAKING);
        /* The probe keeps running during the soak. */
        advance(s, USEC_PER_SEC);
        service_worker_probed(s, probed_worker(s, w->pid), -ETIMEDOUT, "no answer within 2s");
        assert_int_equal(g2->state, GENERATION_SOAKING);
        advance(s, USEC_PER_SEC);
        service_worker_probed(s, probed_worker(s, w->pid), -ETIMEDOUT, "no answer within 2s");
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "failed its readiness probe 2 times in a row: no answer"));
        assert_int_equal(s->live->id, 1);
        teardown(s);
}

static void test_probe_that_cannot_start_fails(void **state) {
        Service *s = setup_service_with(&fake_host_probing);
        Config *c = probe_config(1);
        Worker *w;

        c->probe_failures = 1;
        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        w = s->pending->slots[0]->worker;
        service_worker_ready(s, w);
        fake.probe_error = -EMFILE;
        advance(s, 0);
        assert_int_equal(fake.done_r, -ECANCELED);
        assert_non_null(strstr(fake.done_message, "could not be run"));
        assert_int_equal(s->state, SERVICE_FAILED);
        teardown(s);
}

/* ---- rpsupd restarted during a soak ---- */

static void test_resume_rolls_back_a_soak(void **state) {
        Service *s = setup_service();
        Config *c = soak_config(1);
        Generation *g1, *g2;
        Slot *slot;

        g1 = service_adopt_generation(s, 1, GENERATION_WARM, c);
        slot = service_adopt_slot(s, g1, 0, 1, false);
        service_adopt_worker(s, slot, 300, WORKER_READY, fake.now);
        g2 = service_adopt_generation(s, 2, GENERATION_SOAKING, c);
        slot = service_adopt_slot(s, g2, 0, 2, false);
        service_adopt_worker(s, slot, 301, WORKER_READY, fake.now);
        config_unref(c);

        assert_int_equal(service_resume(s, op_done, NULL), 1);
        assert_ptr_equal(s->live, g1);
        assert_int_equal(g1->state, GENERATION_LIVE);
        assert_true(serving(300));
        assert_false(serving(301));
        assert_true(killed(301, SIGTERM));
        assert_int_equal(s->last_reload.outcome, RELOAD_ROLLED_BACK);
        teardown(s);
}

static void test_resume_keeps_probing_a_claimed_worker(void **state) {
        Service *s = setup_service_with(&fake_host_probing);
        Config *c = probe_config(1);
        Generation *g;
        Slot *slot;
        Worker *w;

        /* The earlier rpsupd was probing a worker that had said READY=1: probing goes on. */
        g = service_adopt_generation(s, 1, GENERATION_STARTING, c);
        slot = service_adopt_slot(s, g, 0, 1, false);
        w = service_adopt_worker(s, slot, 300, WORKER_STARTING, fake.now);
        service_adopt_ready_claim(s, w);
        config_unref(c);
        assert_int_equal(service_resume(s, op_done, NULL), 0);
        advance(s, 0);
        assert_int_equal(fake.probes, 1);
        service_worker_probed(s, probed_worker(s, 300), 0, NULL);
        advance(s, USEC_PER_SEC);
        service_worker_probed(s, probed_worker(s, 300), 0, NULL);
        assert_int_equal(w->state, WORKER_READY);
        assert_ptr_equal(s->live, g);
        teardown(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_soak_keeps_previous_warm_then_promotes),
                cmocka_unit_test(test_worker_exit_during_soak_rolls_back),
                cmocka_unit_test(test_failed_generation_drains_what_it_accepted),
                cmocka_unit_test(test_reload_steering_applies_at_promotion),
                cmocka_unit_test(test_watchdog_and_stall_during_soak_roll_back),
                cmocka_unit_test(test_stopping_during_soak_rolls_back),
                cmocka_unit_test(test_canary_shares_then_promote),
                cmocka_unit_test(test_operator_rollback),
                cmocka_unit_test(test_reload_scale_stop_during_soak),
                cmocka_unit_test(test_reload_options_refused),
                cmocka_unit_test(test_warm_worker_back_in_canary),
                cmocka_unit_test(test_canary_default_and_no_soak),
                cmocka_unit_test(test_probe_gates_readiness),
                cmocka_unit_test(test_probe_failures_fail_the_reload),
                cmocka_unit_test(test_probe_failure_during_soak_rolls_back),
                cmocka_unit_test(test_probe_that_cannot_start_fails),
                cmocka_unit_test(test_resume_rolls_back_a_soak),
                cmocka_unit_test(test_resume_keeps_probing_a_claimed_worker),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
