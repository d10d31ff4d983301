/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The operations: start, reload, scale and stop, each a step of the state machine that completes through
 * its caller's `done`. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rpsup-limits.h"
#include "log.h"
#include "service-internal.h"
#include "string-util.h"

void operation_finish(Service *s, int r, const char *message) {
        Operation *op = s->op;

        if (!op)
                return;
        s->op = NULL;
        if (s->state == SERVICE_RELOADING || s->state == SERVICE_SCALING ||
            (s->state == SERVICE_STARTING && r >= 0))
                s->state = SERVICE_RUNNING;
        op->completion->done = op->done;
        completion_queue(s, op->completion, r, message);
        free(op);
        changed(s);
}

int operation_begin(Service *s, OperationKind kind, ServiceDone done, void *userdata) {
        Operation *op = calloc(1, sizeof(Operation));
        Waiter *w = calloc(1, sizeof(Waiter));

        if (!op || !w) {
                free(op);
                free(w);
                return -ENOMEM;
        }
        *w = (Waiter) { .userdata = userdata };
        *op = (Operation) { .kind = kind, .done = done, .userdata = userdata, .started_at = now(s), .completion = w };
        s->op = op;
        return 0;
}

/* An operation refused before anything changed: logged here, where it is decided (a SIGHUP has nobody to
 * answer), and told to the caller. */
static int refuse(Service *s, const char *what, ServiceDone done, void *userdata, int r, const char *fmt, ...)
        _printf_(6, 7);
static int refuse(Service *s, const char *what, ServiceDone done, void *userdata, int r, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);
        log_warning("%s refused: %s", what, m ?: "out of memory");
        service_complete(s, done, userdata, r, m ?: "out of memory");
        return r;
}

static int check_idle(Service *s, const char *what, ServiceDone done, void *userdata) {
        if (s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED || s->state == SERVICE_FAILED)
                return refuse(s, what, done, userdata, -ESHUTDOWN, "the service is %s",
                              service_state_to_string(s->state));
        if (s->op && s->warm && s->live) {
                char buf[FORMAT_TIMESPAN_MAX];
                format_timespan(buf, sizeof(buf), s->soak_deadline > now(s) ? s->soak_deadline - now(s) : 0, USEC_PER_MSEC);
                return refuse(s, what, done, userdata, -EBUSY, "generation %" PRIu64 " is soaking (%s left); "
                              "promote or roll it back first", s->live->id, buf);
        }
        if (s->op)
                return refuse(s, what, done, userdata, -EBUSY, "a %s is in progress; try again when it is done",
                              s->op->kind == OPERATION_SCALE ? "scale" :
                              s->op->kind == OPERATION_RELOAD ? "reload" : "start");
        return 0;
}

static int spawn_all(Service *s, Generation *g, char **ret_error) {
        for (size_t i = 0; i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                int r;

                if (slot->worker)
                        continue;
                r = slot_spawn(s, slot);
                if (r < 0) {
                        *ret_error = strdup_printf("cannot start worker %u: %s", slot->index, strerror(-r));
                        return r;
                }
        }
        return 0;
}

int service_start(Service *s, Config *c, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        _cleanup_free_ char *error = NULL;
        Generation *g = NULL;
        int r;

        if (s->live || s->pending || s->state != SERVICE_STARTING)
                return refuse(s, "Start", done, userdata, -EALREADY, "the service was already started");
        r = operation_begin(s, OPERATION_START, done, userdata);
        if (r < 0)
                return refuse(s, "Start", done, userdata, r, "out of memory");

        r = generation_new(s, c, s->next_generation_id ?: 1, GENERATION_STARTING, &g, &error);
        if (r >= 0)
                r = generation_add_slots(s, g, 0, c->workers, &error);
        s->op->generation = g;
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("cannot set up generation 1: %s", error ?: strerror(-r));
                if (g)
                        generation_fail(s, g, m);
                else {
                        log_error("%s", m ?: "Cannot set up generation 1.");
                        s->state = SERVICE_FAILED;
                        operation_finish(s, r, m);
                }
                return r;
        }
        s->pending = g;
        service_steering_init(s, c);
        /* New connections wait in its listeners until it is ready, whatever an earlier rpsupd left in the
         * steering (the listener it held them in while it stopped is let go after this: orphan()). */
        steering_update(s);
        log_info("Starting generation %" PRIu64 " with %zu worker%s (strategy %s).", g->id, g->n_slots,
                 g->n_slots == 1 ? "" : "s", strategy_kind_to_string(s->strategy->kind));
        r = spawn_all(s, g, &error);
        if (r < 0) {
                generation_fail(s, g, error);
                return r;
        }
        changed(s);
        return 0;
}

static unsigned reload_worker_count(Service *s, Config *c) {
        if (s->scaled_workers > 0 && c->workers == s->scaled_base)
                return s->scaled_workers;
        s->scaled_workers = 0;
        return c->workers;
}

int service_reload(Service *s, Config *c, const ReloadOptions *o, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        _cleanup_free_ char *error = NULL;
        Generation *g = NULL;
        bool weigh = s->strategy->ops->can_weigh && s->strategy->ops->can_weigh(s->strategy);
        usec_t soak = o->no_soak ? 0 : c->soak;
        unsigned canary = o->canary;
        /* The policy during the soak is the current one; the reload's applies once it is promoted. */
        bool kernel = s->steering == STEERING_KERNEL || service_steering_after_reload(s, c) == STEERING_KERNEL;
        int r;

        r = check_idle(s, "Reload", done, userdata);
        if (r < 0) {
                s->counters.reloads_refused++;
                return r;
        }
        if (!s->live) {
                s->counters.reloads_refused++;
                return refuse(s, "Reload", done, userdata, -EBUSY, "no generation is serving yet");
        }
        if (service_count_generations(s) >= GENERATIONS_MAX) {
                s->counters.reloads_refused++;
                return refuse(s, "Reload", done, userdata, -EBUSY,
                              "%zu generations are still draining (at most %u may run at once); retry when "
                              "one has finished", service_count_generations(s) - 1, GENERATIONS_MAX);
        }

        /* Canary= is a default: it applies when the reload soaks and the strategy can share connections out
         * (with handoff, or without the steering program, both generations take from what the kernel
         * gives them); --canary is a request, refused where it cannot be met. */
        if (canary == 0 && c->canary > 0 && c->canary < 100 && soak > 0) {
                if (weigh && kernel)
                        log_warning("Canary=%u%% is ignored: steering policy kernel leaves new connections to "
                                    "the kernel's choice, which cannot share them out between generations.",
                                    c->canary);
                else if (weigh)
                        canary = c->canary;
                else
                        log_warning("Canary=%u%% is ignored: %s cannot share new connections out between two "
                                    "generations.", c->canary, s->strategy->kind == STRATEGY_HANDOFF
                                    ? "handoff (one shared queue)" : "this strategy without its steering program");
        }
        if (canary > 100) {
                s->counters.reloads_refused++;
                return refuse(s, "Reload", done, userdata, -EINVAL, "a canary of %u%% is not a share between 1%% "
                              "and 100%%", canary);
        }
        if (canary > 0 && canary < 100 && soak == 0) {
                s->counters.reloads_refused++;
                return refuse(s, "Reload", done, userdata, -EINVAL, "a canary needs a soak (%s)",
                              o->no_soak ? "--no-soak was given" : "SoakSec= is 0");
        }
        if (canary > 0 && canary < 100 && kernel) {
                s->counters.reloads_refused++;
                return refuse(s, "Reload", done, userdata, -EINVAL, "a canary needs rpsup's steering, and steering "
                              "policy kernel leaves new connections to the kernel's choice (rpsupctl steer %s "
                              "round-robin or hash first)", s->name);
        }
        if (canary > 0 && canary < 100 && !weigh) {
                s->counters.reloads_refused++;
                if (s->strategy->kind == STRATEGY_HANDOFF)
                        return refuse(s, "Reload", done, userdata, -EINVAL, "a canary needs per-worker listeners "
                                      "(Strategy=drain or migrate): with handoff every worker takes from one "
                                      "shared queue");
                return refuse(s, "Reload", done, userdata, -EOPNOTSUPP, "a canary needs the steering program, "
                              "which this kernel or these privileges do not allow (see rpsupctl probe)");
        }

        r = operation_begin(s, OPERATION_RELOAD, done, userdata);
        if (r < 0)
                return refuse(s, "Reload", done, userdata, r, "out of memory");
        s->op->wait_retired = o->wait_retired;
        s->op->soak = soak;
        s->op->canary = canary;
        s->state = SERVICE_RELOADING;

        r = generation_new(s, c, s->next_generation_id, GENERATION_STARTING, &g, &error);
        if (r >= 0) {
                s->op->generation = g;
                r = generation_add_slots(s, g, 0, reload_worker_count(s, c), &error);
        }
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("cannot set up the new generation: %s",
                                                       error ?: strerror(-r));
                if (g)
                        generation_fail(s, g, m);
                else {
                        log_error("Reload failed, generation %" PRIu64 " keeps serving: %s", s->live->id,
                                  m ?: strerror(-r));
                        s->counters.reloads_failed++;
                        operation_finish(s, r, m);
                }
                return r;
        }
        s->pending = g;
        log_info("Reloading: starting generation %" PRIu64 " with %zu worker%s.", g->id, g->n_slots,
                 g->n_slots == 1 ? "" : "s");
        r = spawn_all(s, g, &error);
        if (r < 0) {
                generation_fail(s, g, error);
                return r;
        }
        s->op->spawned_at = now(s);
        changed(s);
        return 0;
}

/* A slot added by the scale-out in progress (not ready yet, or ready while others are not). */
bool slot_is_joining(Service *s, Slot *slot) {
        return s->op && s->op->kind == OPERATION_SCALE && slot->generation == s->live &&
               slot->index >= s->op->scale_from && !slot->retiring;
}

void scale_fail(Service *s, const char *reason) {
        Operation *op = s->op;
        Generation *g = s->live;
        _cleanup_free_ char *m = NULL;

        if (!op || op->kind != OPERATION_SCALE || !g)
                return;
        for (size_t i = 0; i < g->n_slots; i++)
                if (!g->slots[i]->retiring && g->slots[i]->index >= op->scale_from)
                        g->slots[i]->scale_failed = true;
        /* The slots that joined retire as if scaled in: those that became ready drain. */
        slots_retire(s, g, op->scale_from, RETIRE_REPLACED);
        s->counters.scales_failed++;
        m = strdup_printf("scale to %u workers failed: %s; %u workers keep serving", op->scale_to, reason,
                          op->scale_from);
        log_error("%s", m ?: reason);
        operation_finish(s, -ECANCELED, m ?: reason);
}

void scale_check_done(Service *s) {
        Operation *op = s->op;

        if (!op || op->kind != OPERATION_SCALE || !s->live)
                return;
        for (size_t i = 0; i < s->live->n_slots; i++) {
                Slot *slot = s->live->slots[i];
                if (!slot->retiring && slot->index >= op->scale_from &&
                    (!slot->worker || slot->worker->state != WORKER_READY))
                        return;
        }
        s->counters.scales_ok++;
        log_info("Scaled out from %u to %u workers.", op->scale_from, op->scale_to);
        operation_finish(s, 0, NULL);
}

/* Adds slots cur..n-1 to the live generation; the scale completes when they are all ready. */
static int scale_out(Service *s, unsigned cur, unsigned n, ServiceDone done, void *userdata) {
        _cleanup_free_ char *error = NULL;
        Generation *g = s->live;
        int r;

        r = operation_begin(s, OPERATION_SCALE, done, userdata);
        if (r < 0)
                return refuse(s, "Scale", done, userdata, r, "out of memory");
        s->op->scale_from = cur;
        s->op->scale_to = n;
        s->state = SERVICE_SCALING;
        log_info("Scaling out from %u to %u workers.", cur, n);

        r = generation_add_slots(s, g, cur, n, &error);
        for (size_t i = 0; r >= 0 && i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                if (slot->retiring || slot->index < cur || slot->worker)
                        continue;
                r = slot_spawn(s, slot);
                if (r < 0)
                        error = strdup_printf("cannot start worker %u: %s", slot->index, strerror(-r));
        }
        if (r < 0) {
                scale_fail(s, error ?: strerror(-r));
                return r;
        }
        changed(s);
        return 0;
}

int service_scale(Service *s, unsigned n, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        Generation *g = s->live;
        unsigned cur;
        int r;

        r = check_idle(s, "Scale", done, userdata);
        if (r < 0)
                return r;
        if (!g)
                return refuse(s, "Scale", done, userdata, -EBUSY, "no generation is serving yet");
        if (n < 1 || n > WORKERS_MAX)
                return refuse(s, "Scale", done, userdata, -EINVAL, "%u is not a worker count between 1 and %u", n,
                              WORKERS_MAX);

        cur = service_live_workers(s);
        s->scaled_workers = n;
        s->scaled_base = g->config->workers;

        if (n > cur)
                return scale_out(s, cur, n, done, userdata);
        if (n < cur) {
                /* Scaling in completes at once: the highest slots retire as a replaced generation would. */
                log_info("Scaling in from %u to %u workers.", cur, n);
                slots_retire(s, g, n, RETIRE_REPLACED);
                s->counters.scales_ok++;
                changed(s);
        }
        service_complete(s, done, userdata, 0, NULL);
        return 0;
}

int service_stop(Service *s, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        int r;

        if (s->state == SERVICE_STOPPED || (s->state == SERVICE_FAILED && TAILQ_EMPTY(&s->generations))) {
                service_complete(s, done, userdata, 0, NULL);
                return 0;
        }
        r = waiter_add(&s->stop_waiters, done, userdata);
        if (r < 0)
                return refuse(s, "Stop", done, userdata, r, "out of memory");
        if (s->state == SERVICE_STOPPING)
                return 0;

        log_info("Stopping: asking all workers to finish.");
        s->state = SERVICE_STOPPING;
        if (s->op) {
                if (s->op->kind == OPERATION_SCALE)
                        s->counters.scales_failed++;
                else if (s->op->kind == OPERATION_RELOAD) {
                        s->counters.reloads_failed++;
                        reload_record(s, RELOAD_STOPPED, s->op->generation ? s->op->generation->id : 0,
                                      s->warm ? s->warm->id : s->live ? s->live->id : 0, "the service stopped",
                                      "rpsupd");
                }
                operation_finish(s, -ESHUTDOWN, "the service is stopping");
                s->state = SERVICE_STOPPING;
        }
        /* Every generation retires: where the strategy keeps new connections away from the workers
         * (retire() > 0), each drains as when replaced, else it is asked to stop now. The listeners stay
         * open (in the fd store) for the next rpsupd. */
        s->live = NULL;
        s->warm = NULL;
        s->soak_deadline = USEC_INFINITY;
        s->canary = 0;
        FOREACH_GENERATION_SAFE(g, next, s)
                generation_retire(s, g, RETIRE_STOP); /* may free g */
        changed(s);
        service_stop_complete_if_done(s);
        return 0;
}

/* A second stop request: the workers still draining are asked to stop now. */
void service_stop_now(Service *s) {
        SERVICE_STEP(s);
        unsigned n = 0;

        if (s->state != SERVICE_STOPPING)
                return;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        if (slot->worker && slot->retiring && slot->drain_deadline != USEC_INFINITY) {
                                slot->drain_deadline = now(s); /* the timer stops it */
                                n++;
                        }
                }
        if (n > 0)
                log_notice("Stopping at once: %u draining worker%s asked to stop now.", n, n == 1 ? " is" : "s are");
        changed(s);
}

/* ---- the soak ---- */

static int soak_check(Service *s, const char *what, ServiceDone done, void *userdata) {
        if (!s->warm || !s->live || s->live->state != GENERATION_SOAKING)
                return refuse(s, what, done, userdata, -ESRCH, "no reload is soaking");
        return 0;
}

int service_promote(Service *s, const char *by, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        int r = soak_check(s, "Promote", done, userdata);

        if (r < 0)
                return r;
        soak_promote(s, by);
        service_complete(s, done, userdata, 0, NULL);
        return 0;
}

int service_rollback(Service *s, const char *by, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        int r = soak_check(s, "Rollback", done, userdata);

        if (r < 0)
                return r;
        soak_roll_back(s, "an operator asked for it", by);
        service_complete(s, done, userdata, 0, NULL);
        return 0;
}
