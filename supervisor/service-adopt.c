/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Adoption after an rpsupd restart: takeover.c reads what the previous rpsupd left (takeover-state.c) and
 * rebuilds its generations, slots and workers through these functions; service_resume() then carries on
 * with whatever was in progress. */
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "service-internal.h"
#include "string-util.h"

void service_adopt_counters(Service *s, uint64_t next_generation_id, uint64_t next_slot_id, unsigned scaled_workers,
                            unsigned scaled_base) {
        s->next_generation_id = MAX(s->next_generation_id, next_generation_id);
        s->next_slot_id = MAX(s->next_slot_id, next_slot_id);
        s->scaled_workers = scaled_workers;
        s->scaled_base = scaled_base;
}

Generation *service_adopt_generation(Service *s, uint64_t id, GenerationState state, Config *c) {
        _cleanup_free_ char *error = NULL;
        Generation *g;
        int r;

        r = generation_new(s, c, id, state, &g, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to take over generation %" PRIu64 ": %s", id, error ?: strerror(-r));
                return NULL;
        }
        if (state == GENERATION_LIVE)
                s->live = g;
        return g;
}

Slot *service_adopt_slot(Service *s, Generation *g, unsigned index, uint64_t id, bool retiring) {
        _cleanup_free_ char *error = NULL;
        Slot *slot;
        int r;

        r = slot_new(s, g, index, id, &slot, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to take over worker slot %u of generation %" PRIu64 ": %s", index,
                                g->id, error ?: strerror(-r));
                return NULL;
        }
        slot->retiring = retiring;
        return slot;
}

void service_adopt_slot_history(Slot *slot, unsigned restarts, unsigned consecutive_failures) {
        slot->restarts = restarts;
        slot->consecutive_failures = consecutive_failures;
}

Worker *service_adopt_worker(Service *s, Slot *slot, pid_t pid, WorkerState state, usec_t started_at) {
        Worker *w = calloc(1, sizeof(Worker));

        if (!w)
                return NULL;
        *w = (Worker) {
                .slot = slot,
                .pid = pid,
                .state = state,
                .adopted = true,
                .exec_done = true,
                .started_at = started_at,
                .ready_at = state == WORKER_READY ? now(s) : 0,
                .ready_deadline = usec_add(now(s), slot->generation->config->ready_timeout),
                .stop_deadline = USEC_INFINITY,
                .watchdog_deadline = USEC_INFINITY,
                .probe_at = USEC_INFINITY,
        };
        if (state == WORKER_READY && slot->generation->config->watchdog > 0)
                w->watchdog_deadline = usec_add(now(s), slot->generation->config->watchdog);
        if (state == WORKER_STOPPING || state == WORKER_KILLED) {
                w->state = WORKER_STOPPING;
                w->stop_reason = STOP_RETIRED;
                w->stop_deadline = usec_add(now(s), slot->generation->config->stop_timeout);
        }
        slot->worker = w;
        return w;
}

void service_adopt_ready_claim(Service *s, Worker *w) {
        if (w->state != WORKER_STARTING || w->slot->generation->config->probe == PROBE_NONE)
                return;
        w->claimed_ready = true;
        w->probe_at = now(s);
}

void service_adopt_drain(Service *s, Slot *slot, usec_t deadline) {
        if (!slot->retiring || !slot->worker || slot->worker->state != WORKER_DRAINING)
                return;
        slot->drain_deadline = deadline;
        if (s->strategy->ops->slot_drain_state) {
                slot->drain_check_at = now(s);
                slot->drain_queue = -1;
                slot->drain_stuck_since = 0;
                slot->drain_idle_seen = false;
        }
}

/* The slots of the live (or starting) generation carry on: retired ones stop, empty ones respawn. */
static void generation_resume_slots(Service *s, Generation *g) {
        for (size_t i = 0; i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                if (slot->retiring) {
                        /* Unless a reexec carried its drain window on (service_adopt_drain()). */
                        if (slot->worker && slot->drain_deadline == USEC_INFINITY)
                                worker_stop(s, slot->worker, STOP_RETIRED);
                        continue;
                }
                if (!slot->worker)
                        slot->respawn_at = now(s);
                else if (slot->worker->state == WORKER_DRAINING)
                        /* It said STOPPING=1 to the previous rpsupd: it has TimeoutStopSec= from now. */
                        slot->drain_deadline = usec_add(now(s), g->config->stop_timeout);
        }
}

/* A soak that an earlier rpsupd left running is rolled back: the soaking generation was not proven, and its
 * reload was never answered. The warm generation serves again; returns the soaking one, for the caller to
 * retire (rolled back) once the steering names the warm one. */
static Generation *soak_resume(Service *s) {
        Generation *soaking = NULL, *warm = NULL;

        FOREACH_GENERATION(g, s) {
                if (g->state == GENERATION_SOAKING)
                        soaking = g;
                else if (g->state == GENERATION_WARM)
                        warm = g;
        }
        if (!soaking && !warm)
                return NULL;
        if (!warm) {
                /* Nothing to roll back to: it carries on as the live generation. */
                soaking->state = GENERATION_LIVE;
                s->live = soaking;
                return NULL;
        }
        warm->state = GENERATION_LIVE;
        s->live = warm;
        if (soaking) {
                log_warning("rpsupd restarted during the soak of generation %" PRIu64 ": rolled back, generation %"
                            PRIu64 " serves again.", soaking->id, warm->id);
                free(soaking->failure);
                soaking->failure = strdup("rpsupd restarted during its soak: rolled back");
                reload_record(s, RELOAD_ROLLED_BACK, soaking->id, warm->id, "rpsupd restarted during the soak",
                              "rpsupd");
        }
        return soaking;
}

int service_resume(Service *s, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        Generation *g, *rolled_back;

        /* Whatever a crashed rpsupd left half-done is finished here: a generation that was still starting
         * is rolled back (its reload was never answered), retiring ones keep retiring, and slots of the
         * live generation without a worker are respawned. */
        rolled_back = soak_resume(s);
        TAILQ_FOREACH(g, &s->generations, link)
                if (g->state == GENERATION_STARTING) {
                        if (s->live)
                                generation_fail(s, g, "rpsupd restarted while it was starting");
                        else
                                s->pending = g;
                        break;
                }

        TAILQ_FOREACH(g, &s->generations, link)
                if (g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED && g != rolled_back)
                        generation_resume_slots(s, g);
        if (s->pending) {
                /* The first start was interrupted: it completes as a start. */
                int r = operation_begin(s, OPERATION_START, done, userdata);
                if (r < 0)
                        return r;
                s->op->generation = s->pending;
                s->state = SERVICE_STARTING;
                done = NULL;
        } else if (s->live)
                s->state = SERVICE_RUNNING;
        else {
                /* Nothing was serving (the previous rpsupd was stopping): finish retiring what is left; the
                 * caller starts a new generation. */
                s->state = SERVICE_STARTING;
                done = NULL;
        }

        /* The previous rpsupd recorded no policy (an older one): its config's. */
        if (s->live || s->pending)
                service_steering_init(s, (s->live ?: s->pending)->config);
        steering_update(s);
        FOREACH_GENERATION_SAFE(x, next, s) {
                if (x->state == GENERATION_RETIRING || x->state == GENERATION_FAILED)
                        generation_retire(s, x, RETIRE_RESUME); /* may free x */
                else if (x != rolled_back)
                        generation_free_idle(s, x);
        }
        if (rolled_back) /* its soak cannot go on, but nothing says it failed: it drains */
                generation_retire(s, rolled_back, RETIRE_REPLACED); /* may free it */
        changed(s);
        if (done) {
                service_complete(s, done, userdata, 0, NULL);
                return 1;
        }
        return 0;
}

