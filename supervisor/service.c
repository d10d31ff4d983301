/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The generation state machine's core: its objects and their life cycle, completions, the one retire path,
 * and the transitions of a generation (live, failed). The rest is in service-*.c (service-internal.h). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "rpsup-limits.h"
#include "log.h"
#include "parse-util.h"
#include "service-internal.h"
#include "string-util.h"
#include "strategy.h"

static const char *const worker_state_names[_WORKER_STATE_MAX] = {
        [WORKER_STARTING] = "starting", [WORKER_READY] = "ready",     [WORKER_DRAINING] = "draining",
        [WORKER_STOPPING] = "stopping", [WORKER_KILLED] = "killed",
};
static const char *const generation_state_names[_GENERATION_STATE_MAX] = {
        [GENERATION_STARTING] = "starting",
        [GENERATION_LIVE] = "live",
        [GENERATION_SOAKING] = "soaking",
        [GENERATION_WARM] = "warm",
        [GENERATION_RETIRING] = "retiring",
        [GENERATION_FAILED] = "failed",
};
static const char *const service_state_names[_SERVICE_STATE_MAX] = {
        [SERVICE_STARTING] = "starting",   [SERVICE_RUNNING] = "running",   [SERVICE_RELOADING] = "reloading",
        [SERVICE_SCALING] = "scaling",     [SERVICE_STOPPING] = "stopping", [SERVICE_STOPPED] = "stopped",
        [SERVICE_FAILED] = "failed",
};

static const char *const reload_outcome_names[_RELOAD_OUTCOME_MAX] = {
        [RELOAD_NONE] = "none",
        [RELOAD_PROMOTED] = "promoted",
        [RELOAD_FAILED] = "failed",
        [RELOAD_ROLLED_BACK] = "rolled-back",
        [RELOAD_STOPPED] = "stopped",
};

const char *reload_outcome_to_string(ReloadOutcome o) {
        return o >= 0 && o < _RELOAD_OUTCOME_MAX ? reload_outcome_names[o] : NULL;
}

const char *worker_state_to_string(WorkerState s) {
        return s >= 0 && s < _WORKER_STATE_MAX ? worker_state_names[s] : NULL;
}
const char *generation_state_to_string(GenerationState s) {
        return s >= 0 && s < _GENERATION_STATE_MAX ? generation_state_names[s] : NULL;
}
const char *service_state_to_string(ServiceState s) {
        return s >= 0 && s < _SERVICE_STATE_MAX ? service_state_names[s] : NULL;
}
WorkerState worker_state_from_string(const char *s) {
        for (int i = 0; i < _WORKER_STATE_MAX; i++)
                if (streq_ptr(worker_state_names[i], s))
                        return (WorkerState) i;
        return _WORKER_STATE_INVALID;
}
GenerationState generation_state_from_string(const char *s) {
        for (int i = 0; i < _GENERATION_STATE_MAX; i++)
                if (streq_ptr(generation_state_names[i], s))
                        return (GenerationState) i;
        return _GENERATION_STATE_INVALID;
}

/* Makes the kernel's steering match which slots serve now. */
void steering_update(Service *s) {
        int r = s->strategy->ops->steer(s->strategy, s);
        if (r < 0)
                log_error_errno(r, "Failed to update connection steering, new connections may go to the "
                                "previous set of workers: %m");
}

/* ---- completions ----
 *
 * Completions never run in the middle of a state change. A completion may do anything, stop the service
 * included (rpsupd stops when its first generation fails), and that frees generations and slots: had it
 * run where the outcome was decided, the code that decided would go on with freed objects. So outcomes are
 * queued (Service.completions) and told when the outermost call into the service returns (SERVICE_STEP),
 * with the state machine consistent; a completion that calls back in queues its own outcomes behind. */

void completion_queue(Service *s, Waiter *w, int r, const char *message) {
        w->r = r;
        w->message = message ? strdup(message) : NULL; /* NULL (out of memory too): the caller says strerror(r) */
        STAILQ_INSERT_TAIL(&s->completions, w, next);
}

static void completions_run(Service *s) {
        Waiter *w;

        while ((w = STAILQ_FIRST(&s->completions))) {
                STAILQ_REMOVE_HEAD(&s->completions, next);
                if (w->done)
                        w->done(s, w->r, w->message, w->userdata);
                free(w->message);
                free(w);
        }
}

Service *service_enter(Service *s) {
        s->depth++;
        return s;
}

void service_leavep(Service **p) {
        Service *s = *p;

        if (s->depth > 1) {
                s->depth--;
                return;
        }
        /* Still "inside" while completions run: what they start is queued and told by this loop. */
        completions_run(s);
        s->depth--;
}

void waiters_complete(WaiterList *list, Service *s, int r, const char *message) {
        Waiter *w;

        while ((w = STAILQ_FIRST(list))) {
                STAILQ_REMOVE_HEAD(list, next);
                completion_queue(s, w, r, message);
        }
}

/* Tells `done` of an outcome decided outside an operation (a refusal, a scale-in). */
void service_complete(Service *s, ServiceDone done, void *userdata, int r, const char *message) {
        Waiter *w;

        if (!done)
                return;
        w = calloc(1, sizeof(Waiter));
        if (!w) {
                /* Out of memory: tell it now. Callers only get here with the state consistent. */
                done(s, r, message, userdata);
                return;
        }
        *w = (Waiter) { .done = done, .userdata = userdata };
        completion_queue(s, w, r, message);
}

int waiter_add(WaiterList *list, ServiceDone done, void *userdata) {
        Waiter *w = calloc(1, sizeof(Waiter));

        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .done = done, .userdata = userdata };
        /* Appended, so waiters complete in the order they came. */
        STAILQ_INSERT_TAIL(list, w, next);
        return 0;
}

/* ---- objects ---- */

Worker *worker_free(Service *s, Worker *w) {
        if (!w)
                return NULL;
        if (s->host->forget)
                s->host->forget(s->host_userdata, w);
        if (w->departing) {
                LIST_REMOVE(w, departing_link);
                w->slot->n_departing--;
        } else if (w->slot && w->slot->worker == w)
                w->slot->worker = NULL;
        free(w->status_text);
        free(w->probe_failure);
        free(w);
        return NULL;
}

static void generation_maybe_free(Service *s, Generation *g);

static void slot_free(Service *s, Slot *slot) {
        Generation *g = slot->generation;

        if (slot->worker)
                worker_free(s, slot->worker);
        s->strategy->ops->slot_close(s->strategy, slot);
        for (size_t i = 0; i < g->n_slots; i++)
                if (g->slots[i] == slot) {
                        memmove(g->slots + i, g->slots + i + 1, sizeof(Slot *) * (g->n_slots - i - 1));
                        g->n_slots--;
                        break;
                }
        free(slot->last_failure);
        free(slot);
}

static void generation_unlink(Service *s, Generation *g) {
        TAILQ_REMOVE(&s->generations, g, link);
        if (s->live == g)
                s->live = NULL;
        if (s->pending == g)
                s->pending = NULL;
        if (s->warm == g)
                s->warm = NULL;
}

void generation_free(Service *s, Generation *g) {
        waiters_complete(&g->waiters, s, -ESHUTDOWN, "rpsupd is exiting");
        while (g->n_slots > 0)
                slot_free(s, g->slots[g->n_slots - 1]);
        s->strategy->ops->generation_close(s->strategy, g);
        generation_unlink(s, g);
        free(g->slots);
        free(g->failure);
        config_unref(g->config);
        free(g);
}

void service_stop_complete_if_done(Service *s) {
        if (s->state != SERVICE_STOPPING || !TAILQ_EMPTY(&s->generations))
                return;
        s->state = SERVICE_STOPPED;
        log_info("All workers are gone.");
        changed(s);
        waiters_complete(&s->stop_waiters, s, 0, NULL);
}

/* A retiring or failed generation whose slots are all gone is freed; "reload --wait" callers hear. */
static void generation_maybe_free(Service *s, Generation *g) {
        WaiterList waiters = STAILQ_HEAD_INITIALIZER(waiters);
        uint64_t id;

        if (g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED)
                return;
        for (size_t i = 0; i < g->n_slots; i++)
                if (g->slots[i]->worker || g->slots[i]->n_departing > 0)
                        return;
        id = g->id;
        STAILQ_CONCAT(&waiters, &g->waiters);
        if (s->host->generation_gone)
                s->host->generation_gone(s->host_userdata, g);
        else
                log_info("Generation %" PRIu64 " is gone.", id);
        generation_free(s, g);
        waiters_complete(&waiters, s, 0, NULL);
        changed(s);
        service_stop_complete_if_done(s);
}

/* A slot taken out for good and without a process is freed (and maybe its generation with it). */
void slot_maybe_free(Service *s, Slot *slot) {
        Generation *g = slot->generation;

        if (slot->worker || slot->n_departing > 0)
                return;
        if (!slot->retiring && g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED)
                return;
        slot_free(s, slot);
        generation_maybe_free(s, g);
}

int slot_new(Service *s, Generation *g, unsigned index, uint64_t id, Slot **ret, char **ret_error) {
        Slot **a, *slot;
        int r;

        a = realloc(g->slots, sizeof(Slot *) * (g->n_slots + 1));
        if (!a)
                return -ENOMEM;
        g->slots = a;
        slot = calloc(1, sizeof(Slot));
        if (!slot)
                return -ENOMEM;
        *slot = (Slot) {
                .generation = g,
                .index = index,
                .id = id,
                .respawn_at = USEC_INFINITY,
                .drain_deadline = USEC_INFINITY,
                .drain_check_at = USEC_INFINITY,
        };
        if (id >= s->next_slot_id)
                s->next_slot_id = id + 1;
        r = s->strategy->ops->slot_open(s->strategy, slot, ret_error);
        if (r < 0) {
                free(slot);
                return r;
        }
        g->slots[g->n_slots++] = slot;
        if (ret)
                *ret = slot;
        return 0;
}

int generation_new(Service *s, Config *c, uint64_t id, GenerationState state, Generation **ret,
                   char **ret_error) {
        Generation *g;
        int r;

        g = calloc(1, sizeof(Generation));
        if (!g)
                return -ENOMEM;
        *g = (Generation) {
                .service = s,
                .id = id,
                .state = state,
                .config = config_ref(c),
                .started_at = now(s),
        };
        STAILQ_INIT(&g->waiters);
        if (id >= s->next_generation_id)
                s->next_generation_id = id + 1;
        r = s->strategy->ops->generation_open(s->strategy, g, ret_error);
        if (r < 0) {
                config_unref(g->config);
                free(g);
                return r;
        }
        TAILQ_INSERT_TAIL(&s->generations, g, link); /* oldest first */
        *ret = g;
        return 0;
}

int generation_add_slots(Service *s, Generation *g, unsigned from, unsigned to, char **ret_error) {
        for (unsigned i = from; i < to; i++) {
                int r = slot_new(s, g, i, s->next_slot_id, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- processes ---- */

int slot_spawn(Service *s, Slot *slot) {
        Config *c = slot->generation->config;
        Worker *w;
        usec_t t = now(s);
        int r;

        w = calloc(1, sizeof(Worker));
        if (!w)
                return -ENOMEM;
        *w = (Worker) {
                .slot = slot,
                .state = WORKER_STARTING,
                .started_at = t,
                .ready_deadline = usec_add(t, c->ready_timeout),
                .stop_deadline = USEC_INFINITY,
                .watchdog_deadline = USEC_INFINITY,
                .probe_at = USEC_INFINITY,
        };
        slot->worker = w;
        slot->respawn_at = USEC_INFINITY;
        slot->drain_deadline = USEC_INFINITY; /* a deadline of the previous worker's is not this one's */
        slot->drain_check_at = USEC_INFINITY;

        r = s->host->spawn(s->host_userdata, w);
        if (r < 0) {
                worker_free(s, w);
                return r;
        }
        s->counters.worker_starts++;
        log_debug("Worker %u of generation %" PRIu64 " started as pid %d.", slot->index, slot->generation->id,
                  (int) w->pid);
        return 0;
}

void worker_kill(Service *s, Worker *w, int sig) {
        int r = s->host->kill(s->host_userdata, w, sig);
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Failed to send %s to worker %u (pid %d) of generation %" PRIu64 ": %m",
                                  signal_name(sig), w->slot->index, (int) w->pid, w->slot->generation->id);
}

void worker_stop(Service *s, Worker *w, StopReason reason) {
        Config *c = w->slot->generation->config;
        int sig;

        if (w->state == WORKER_STOPPING || w->state == WORKER_KILLED)
                return;
        w->stop_reason = reason;
        /* A hung worker gets SIGABRT (as systemd's watchdog does), so that it leaves a core to debug. */
        sig = reason == STOP_WATCHDOG ? SIGABRT : c->kill_signal;
        w->state = WORKER_STOPPING;
        w->stop_deadline = usec_add(now(s), c->stop_timeout);
        worker_kill(s, w, sig);
        /* A stopped (SIGSTOP) process only sees the signal once continued. */
        worker_kill(s, w, SIGCONT);
}

/* ---- retiring ---- */

/* Frees the slots of g that were taken out and have no process left, then g itself if it is done. */
void generation_free_idle(Service *s, Generation *g) {
        for (size_t i = g->n_slots; i > 0; i--) {
                Slot *slot = g->slots[i - 1];
                if (!slot->worker && slot->n_departing == 0 &&
                    (slot->retiring || g->state == GENERATION_RETIRING || g->state == GENERATION_FAILED)) {
                        slot_free(s, slot);
                }
        }
        generation_maybe_free(s, g);
}

static bool slot_retire_picks(const Slot *slot, unsigned from, RetireMode mode) {
        /* A slot already draining keeps its window when its generation is replaced, rolled back or the
         * service stops; failing and resuming end every slot. */
        return slot->index >= from &&
               ((mode != RETIRE_REPLACED && mode != RETIRE_STOP && mode != RETIRE_ROLLBACK) || !slot->retiring);
}

static void slots_retire_list(Service *s, Slot **slots, size_t n, RetireMode mode) {
        /* Replaced, scaled in, rolled back or stopping: a worker finishes what it has (the strategy says
         * for how long at most: 0 where it cannot keep new connections away from it). */
        bool drain = mode == RETIRE_REPLACED || mode == RETIRE_STOP || mode == RETIRE_ROLLBACK;

        /* First take them all out of the steering at once, then let the strategy retire each one (no
         * listener is shut down under a worker: that waits until it is gone, see slot_close()). */
        for (size_t i = 0; i < n; i++) {
                slots[i]->retiring = true;
                slots[i]->respawn_at = USEC_INFINITY;
        }
        if (mode == RETIRE_REPLACED || mode == RETIRE_STOP || mode == RETIRE_ROLLBACK)
                steering_update(s);
        /* A generation that failed its soak: what waits for it is served by the one that serves again (its
         * listeners are shut down under it: the one exception, with hung workers); each worker still
         * finishes what it has open. */
        if (mode == RETIRE_ROLLBACK && s->strategy->ops->abandon)
                for (size_t i = 0; i < n; i++)
                        s->strategy->ops->abandon(s->strategy, slots[i]);

        for (size_t i = 0; i < n; i++) {
                Slot *slot = slots[i];
                Worker *w = slot->worker;
                usec_t delay = drain ? s->strategy->ops->retire(s->strategy, slot) : 0;

                /* Resumed after a reexec with its drain window (service_adopt_drain()): it goes on draining. */
                if (mode == RETIRE_RESUME && w && w->state == WORKER_DRAINING && slot->drain_deadline != USEC_INFINITY)
                        continue;
                if (!drain) {
                        slot->drain_deadline = USEC_INFINITY; /* draining workers are stopped now too */
                        slot->drain_check_at = USEC_INFINITY;
                }
                if (!w)
                        continue;
                if (delay == 0 || w->state == WORKER_STARTING) {
                        worker_stop(s, w, STOP_RETIRED);
                        continue;
                }
                if (w->state == WORKER_READY)
                        w->state = WORKER_DRAINING;
                slot->drain_deadline = usec_add(now(s), delay);
                /* It is asked to stop as soon as it has nothing left to serve (the strategy tells). */
                if (s->strategy->ops->slot_drain_state) {
                        slot->drain_check_at = now(s);
                        slot->drain_queue = -1;
                        slot->drain_stuck_since = 0;
                        slot->drain_idle_seen = false;
                        slot->drain_abandoned = mode == RETIRE_ROLLBACK; /* moved already */
                }
        }
        /* Slots without a process have nothing to drain; they are freed (generation_free_idle()). */
        for (size_t i = 0; i < n; i++)
                if (!slots[i]->worker) {
                        slots[i]->drain_deadline = USEC_INFINITY;
                        slots[i]->drain_check_at = USEC_INFINITY;
                }
}

void slots_retire(Service *s, Generation *g, unsigned from, RetireMode mode) {
        _cleanup_free_ Slot **list = NULL;
        size_t n = 0;

        list = calloc(g->n_slots ?: 1, sizeof(Slot *));
        if (!list) {
                /* Out of memory: stop them one by one without draining. */
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        if (!slot_retire_picks(slot, from, mode))
                                continue;
                        slot->retiring = true;
                        slot->respawn_at = USEC_INFINITY;
                        slot->drain_deadline = USEC_INFINITY;
                        if (slot->worker)
                                worker_stop(s, slot->worker, STOP_RETIRED);
                }
        } else {
                for (size_t i = 0; i < g->n_slots; i++)
                        if (slot_retire_picks(g->slots[i], from, mode))
                                list[n++] = g->slots[i];
                slots_retire_list(s, list, n, mode);
        }
        generation_free_idle(s, g); /* may free g */
}

/* The one way a generation ends: replaced by a newer one, stopped with the service, failed before it took
 * connections, or found retiring after an rpsupd restart. May free g. */
void generation_retire(Service *s, Generation *g, RetireMode mode) {
        switch (mode) {
        case RETIRE_REPLACED:
        case RETIRE_ROLLBACK:
                g->state = GENERATION_RETIRING;
                g->retired_at = now(s);
                if (s->host->generation_retiring)
                        s->host->generation_retiring(s->host_userdata, g);
                break;
        case RETIRE_STOP:
                /* One still starting will never serve: it failed. */
                if (g == s->pending) {
                        g->state = GENERATION_FAILED;
                        s->pending = NULL;
                } else if (g->state != GENERATION_FAILED)
                        g->state = GENERATION_RETIRING;
                break;
        case RETIRE_FAILED:
                g->state = GENERATION_FAILED;
                if (s->pending == g)
                        s->pending = NULL;
                break;
        case RETIRE_RESUME:
                break; /* retiring or failed already */
        case _RETIRE_MODE_MAX:
                break;
        }
        slots_retire(s, g, 0, mode);
}

/* ---- generation transitions ---- */

/* What the last reload came to, for the log's readers in status and metrics. */
void reload_record(Service *s, ReloadOutcome outcome, uint64_t generation, uint64_t previous, const char *reason,
                   const char *by) {
        ReloadRecord *r = &s->last_reload;

        free(r->reason);
        free(r->by);
        *r = (ReloadRecord) {
                .outcome = outcome,
                .generation = generation,
                .previous = previous,
                .reason = reason ? strdup(reason) : NULL,
                .by = by ? strdup(by) : NULL,
                .at = now(s),
        };
}

static uint64_t generation_steered_total(Service *s, Generation *g) {
        uint64_t n = 0;

        for (size_t i = 0; i < g->n_slots; i++) {
                SlotStats st = {};
                if (s->strategy->ops->slot_stats && s->strategy->ops->slot_stats(s->strategy, g->slots[i], &st) >= 0)
                        n += st.syns;
        }
        return n;
}

uint64_t generation_steered(Service *s, Generation *g) {
        uint64_t n = generation_steered_total(s, g);

        return n > g->steered_base ? n - g->steered_base : 0;
}

/* The reload is over and it took: the previous generation retires (the "reload --wait" caller hears when it
 * is gone). */
static void reload_took(Service *s, Generation *g, Generation *previous, const char *by) {
        Operation *op = s->op;
        usec_t t = now(s);

        reload_record(s, RELOAD_PROMOTED, g->id, previous ? previous->id : 0, NULL, by);
        /* Its Steering=, if it changed, applies now that it serves: a failed or rolled-back reload leaves
         * the policy as it was. */
        service_steering_reload(s, g->config);
        if (previous) {
                if (op && op->wait_retired && waiter_add(&previous->waiters, op->done, op->userdata) >= 0)
                        op->done = NULL; /* answered when the previous generation is gone */
                generation_retire(s, previous, RETIRE_REPLACED);
        }
        if (op && op->generation == g) {
                s->counters.reloads_ok++;
                s->counters.last_reload_usec = t - op->started_at;
                /* The workers' own start-up (fork of the last to READY=1 of the last) is theirs. */
                s->counters.last_reload_own_usec = (op->spawned_at - op->started_at) + (op->live_at - op->ready_at);
                operation_finish(s, 0, NULL);
        }
}

static void generation_go_live(Service *s, Generation *g) {
        Generation *previous = s->live;
        Operation *op = s->op;
        bool reload = op && op->generation == g && op->kind == OPERATION_RELOAD;
        usec_t t = now(s);
        char buf[FORMAT_TIMESPAN_MAX];

        g->live_at = t;
        s->live = g;
        s->pending = NULL;
        if (reload)
                op->live_at = t;

        if (previous && reload && op->soak > 0) {
                /* On probation: g takes new connections (all, or its canary share), the previous generation
                 * stays up to take them back at the first failure. */
                g->state = GENERATION_SOAKING;
                previous->state = GENERATION_WARM;
                s->warm = previous;
                s->soak_started_at = t;
                s->soak_deadline = usec_add(t, op->soak);
                s->canary = op->canary < 100 ? op->canary : 0;
                g->steered_base = generation_steered_total(s, g);
                previous->steered_base = generation_steered_total(s, previous);
                steering_update(s);
                format_timespan(buf, sizeof(buf), op->soak, USEC_PER_MSEC);
                if (s->canary > 0)
                        log_info("Generation %" PRIu64 " takes %u%% of new connections for its soak of %s; "
                                 "generation %" PRIu64 " takes the rest and is kept to roll back to.",
                                 g->id, s->canary, buf, previous->id);
                else
                        log_info("Generation %" PRIu64 " takes all new connections for its soak of %s; "
                                 "generation %" PRIu64 " is kept warm to roll back to.", g->id, buf, previous->id);
                changed(s);
                return;
        }

        g->state = GENERATION_LIVE;
        /* From here on, new connections go to g only. */
        steering_update(s);
        if (previous)
                log_info("Generation %" PRIu64 " takes all new connections; generation %" PRIu64 " retires.",
                         g->id, previous->id);
        else
                log_info("Generation %" PRIu64 " is ready and takes connections.", g->id);
        if (reload)
                reload_took(s, g, previous, "rpsupd");
        else if (op && op->generation == g)
                operation_finish(s, 0, NULL);
        changed(s);
}

/* The soak is over and the soaking generation keeps serving: it takes every new connection, the warm one
 * retires. */
void soak_promote(Service *s, const char *by) {
        Generation *g = s->live, *previous = s->warm;

        if (!g || !previous || g->state != GENERATION_SOAKING)
                return;
        g->state = GENERATION_LIVE;
        s->warm = NULL;
        s->soak_deadline = USEC_INFINITY;
        s->canary = 0;
        steering_update(s);
        if (streq(by, "soak"))
                log_info("Generation %" PRIu64 " passed its soak: it takes all new connections; generation %" PRIu64
                         " retires.", g->id, previous->id);
        else
                log_info("Generation %" PRIu64 " is promoted by %s: it takes all new connections; generation %"
                         PRIu64 " retires.", g->id, by, previous->id);
        reload_took(s, g, previous, by);
        changed(s);
}

/* The soaking generation failed, or an operator asked: the warm generation takes every new connection again
 * (one steering update, no process started), the soaking one retires, and the reload fails. */
void soak_roll_back(Service *s, const char *reason, const char *by) {
        Generation *g = s->live, *previous = s->warm;
        bool operator = !streq(by, "rpsupd");
        _cleanup_free_ char *m = NULL;
        usec_t t0 = now(s);

        if (!g || !previous || g->state != GENERATION_SOAKING)
                return;
        previous->state = GENERATION_LIVE;
        s->live = previous;
        s->warm = NULL;
        s->soak_deadline = USEC_INFINITY;
        s->canary = 0;
        steering_update(s);
        if (!operator)
                s->counters.last_rollback_usec = now(s) - t0;

        free(g->failure);
        g->failure = strdup(reason);
        if (operator) {
                s->counters.reloads_rolled_back_by_operator++;
                m = strdup_printf("generation %" PRIu64 " rolled back by %s; generation %" PRIu64 " serves again",
                                  g->id, by, previous->id);
        } else {
                s->counters.reloads_rolled_back++;
                m = strdup_printf("generation %" PRIu64 " failed during its soak: %s; rolled back, generation %"
                                  PRIu64 " serves again", g->id, reason, previous->id);
        }
        if (operator)
                log_warning("%s", m ?: reason);
        else
                log_error("%s", m ?: reason);
        reload_record(s, RELOAD_ROLLED_BACK, g->id, previous->id, reason, by);

        /* Rolled back by an operator, it drains as if replaced; after a failure its queue moves at once. */
        generation_retire(s, g, operator ? RETIRE_REPLACED : RETIRE_ROLLBACK); /* may free g */
        if (s->op && s->op->kind == OPERATION_RELOAD)
                operation_finish(s, -ECANCELED, m ?: reason);
        changed(s);
}

/* A failure of a worker of the soaking generation ends the soak: returns true if it rolled back. */
bool soak_fails(Service *s, Slot *slot, const char *what) {
        Generation *g = slot->generation;
        _cleanup_free_ char *reason = NULL;

        if (g != s->live || g->state != GENERATION_SOAKING || slot->retiring)
                return false;
        reason = strdup_printf("worker %u %s", slot->index, what);
        soak_roll_back(s, reason ?: what, "rpsupd");
        return true;
}

void generation_check_ready(Service *s, Generation *g) {
        /* Each worker said it is ready and passed its probes (ReadyProbe=). */
        if (g != s->pending || g->state != GENERATION_STARTING)
                return;
        for (size_t i = 0; i < g->n_slots; i++)
                if (!g->slots[i]->worker || g->slots[i]->worker->state != WORKER_READY)
                        return;
        generation_go_live(s, g);
}

/* A starting generation will not become ready: it is stopped, and the operation that started it fails
 * (logged here, once). */
void generation_fail(Service *s, Generation *g, const char *reason) {
        bool ours = s->op && s->op->generation == g;
        _cleanup_free_ char *m = NULL;

        if (g->state == GENERATION_FAILED)
                return;
        free(g->failure);
        g->failure = strdup(reason);

        if (s->live) {
                m = strdup_printf("generation %" PRIu64 " failed: %s; rolled back, generation %" PRIu64
                                  " keeps serving", g->id, reason, s->live->id);
                s->counters.reloads_failed++;
                reload_record(s, RELOAD_FAILED, g->id, s->live->id, reason, "rpsupd");
        } else {
                m = strdup_printf("generation %" PRIu64 " failed: %s", g->id, reason);
                if (s->state == SERVICE_STARTING)
                        s->state = SERVICE_FAILED;
        }
        log_error("%s", m ?: reason);

        generation_retire(s, g, RETIRE_FAILED); /* may free g */
        if (ours)
                operation_finish(s, -ECANCELED, m ?: reason);
        changed(s);
}

/* ---- queries ---- */

Worker *service_find_worker(Service *s, pid_t pid) {
        Worker *w;

        LIST_FOREACH(w, &s->departing, departing_link)
                if (w->pid == pid)
                        return w;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->worker && g->slots[i]->worker->pid == pid)
                                return g->slots[i]->worker;
        return NULL;
}

unsigned service_live_workers(Service *s) {
        unsigned n = 0;

        if (!s->live)
                return 0;
        for (size_t i = 0; i < s->live->n_slots; i++)
                if (!s->live->slots[i]->retiring)
                        n++;
        return n;
}

size_t service_count_generations(Service *s) {
        size_t n = 0;

        FOREACH_GENERATION(g, s)
                n++;
        return n;
}

uint64_t service_new_slot_id(Service *s) {
        return s->next_slot_id++;
}

bool slot_is_serving(const Slot *slot) {
        const Generation *g = slot->generation;

        return !slot->retiring && (g->state == GENERATION_LIVE || g->state == GENERATION_SOAKING) &&
               g->service->live == g && slot->worker && slot->worker->state == WORKER_READY;
}

bool slot_is_warm(const Slot *slot) {
        const Generation *g = slot->generation;

        return !slot->retiring && g->state == GENERATION_WARM && g->service->warm == g && slot->worker &&
               slot->worker->state == WORKER_READY;
}

/* ---- life cycle ---- */

int service_new(const char *name, const ServiceHost *host, void *userdata, Strategy *strategy, Service **ret) {
        Service *s = calloc(1, sizeof(Service));

        if (!s)
                return -ENOMEM;
        s->name = strdup(name);
        if (!s->name) {
                free(s);
                return -ENOMEM;
        }
        TAILQ_INIT(&s->generations);
        LIST_INIT(&s->departing);
        s->host = host;
        s->host_userdata = userdata;
        s->strategy = strategy;
        s->state = SERVICE_STARTING;
        STAILQ_INIT(&s->stop_waiters);
        STAILQ_INIT(&s->completions);
        s->next_generation_id = 1;
        s->next_slot_id = 1;
        s->soak_deadline = USEC_INFINITY;
        *ret = s;
        return 0;
}

Service *service_free(Service *s) {
        if (!s)
                return NULL;
        while (!LIST_EMPTY(&s->departing))
                worker_free(s, LIST_FIRST(&s->departing));
        while (!TAILQ_EMPTY(&s->generations))
                generation_free(s, TAILQ_FIRST(&s->generations));
        if (s->op) {
                free(s->op->completion);
                s->op = mfree(s->op);
        }
        waiters_complete(&s->stop_waiters, s, -ESHUTDOWN, "rpsupd is exiting");
        completions_run(s);
        free(s->last_reload.reason);
        free(s->last_reload.by);
        free(s->name);
        free(s);
        return NULL;
}
