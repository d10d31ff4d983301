/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "rpsup-limits.h"
#include "log.h"
#include "worker-notify.h"
#include "parse-util.h"
#include "service.h"
#include "string-util.h"
#include "strategy.h"

/* Someone to tell when something is over: the caller of an operation, a "reload --wait", a stop. Once the
 * outcome is known, the waiter moves to Service.completions with it (r, message). */
typedef struct Waiter {
        ServiceDone done;
        void *userdata;
        int r;
        char *message;
        struct Waiter *next;
} Waiter;

typedef enum OperationKind {
        OPERATION_START,
        OPERATION_RELOAD,
        OPERATION_SCALE,
} OperationKind;

typedef struct Operation {
        OperationKind kind;
        ServiceDone done;
        void *userdata;
        usec_t started_at;
        usec_t spawned_at;      /* start, reload: the last worker forked */
        usec_t ready_at;        /* start, reload: the last worker ready */
        bool wait_retired;
        Generation *generation; /* start, reload: the generation being started */
        unsigned scale_from;    /* scale: the worker count before */
        unsigned scale_to;
        Waiter *completion;     /* allocated up front: finishing cannot fail */
} Operation;

static const char *const worker_state_names[_WORKER_STATE_MAX] = {
        [WORKER_STARTING] = "starting", [WORKER_READY] = "ready",     [WORKER_DRAINING] = "draining",
        [WORKER_STOPPING] = "stopping", [WORKER_KILLED] = "killed",
};
static const char *const generation_state_names[_GENERATION_STATE_MAX] = {
        [GENERATION_STARTING] = "starting",
        [GENERATION_LIVE] = "live",
        [GENERATION_RETIRING] = "retiring",
        [GENERATION_FAILED] = "failed",
};
static const char *const service_state_names[_SERVICE_STATE_MAX] = {
        [SERVICE_STARTING] = "starting",   [SERVICE_RUNNING] = "running",   [SERVICE_RELOADING] = "reloading",
        [SERVICE_SCALING] = "scaling",     [SERVICE_STOPPING] = "stopping", [SERVICE_STOPPED] = "stopped",
        [SERVICE_FAILED] = "failed",
};

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

static usec_t now(Service *s) {
        return s->host->now(s->host_userdata);
}

static void changed(Service *s) {
        if (s->host->changed)
                s->host->changed(s->host_userdata);
}

static void steer(Service *s) {
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

static void completion_queue(Service *s, Waiter *w, int r, const char *message) {
        Waiter **p = &s->completions;

        w->r = r;
        w->message = message ? strdup(message) : NULL; /* NULL (out of memory too): the caller says strerror(r) */
        w->next = NULL;
        while (*p)
                p = &(*p)->next;
        *p = w;
}

static void completions_run(Service *s) {
        while (s->completions) {
                Waiter *w = s->completions;
                s->completions = w->next;
                if (w->done)
                        w->done(s, w->r, w->message, w->userdata);
                free(w->message);
                free(w);
        }
}

static Service *service_enter(Service *s) {
        s->depth++;
        return s;
}

static void service_leavep(Service **p) {
        Service *s = *p;

        if (s->depth > 1) {
                s->depth--;
                return;
        }
        /* Still "inside" while completions run: what they start is queued and told by this loop. */
        completions_run(s);
        s->depth--;
}

/* Opens one step of the state machine for the rest of the scope; completions are told at its end. */
#define SERVICE_STEP(s) _cleanup_(service_leavep) _unused_ Service *_step_ = service_enter(s)

static void waiters_complete(Waiter **list, Service *s, int r, const char *message) {
        Waiter *w = *list;

        *list = NULL;
        while (w) {
                Waiter *next = w->next;
                completion_queue(s, w, r, message);
                w = next;
        }
}

/* Tells `done` of an outcome decided outside an operation (a refusal, a scale-in). */
static void complete(Service *s, ServiceDone done, void *userdata, int r, const char *message) {
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

static int waiter_add(Waiter **list, ServiceDone done, void *userdata) {
        Waiter *w = calloc(1, sizeof(Waiter));

        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .done = done, .userdata = userdata };
        /* Append, so waiters complete in the order they came. */
        while (*list)
                list = &(*list)->next;
        *list = w;
        return 0;
}

/* ---- objects ---- */

static Worker *worker_free(Service *s, Worker *w) {
        if (!w)
                return NULL;
        if (s->host->forget)
                s->host->forget(s->host_userdata, w);
        if (w->slot && w->slot->worker == w)
                w->slot->worker = NULL;
        free(w->status_text);
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
        for (Generation **p = &s->generations; *p; p = &(*p)->next)
                if (*p == g) {
                        *p = g->next;
                        break;
                }
        if (s->live == g)
                s->live = NULL;
        if (s->pending == g)
                s->pending = NULL;
}

static void generation_free(Service *s, Generation *g) {
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

static void stop_complete_if_done(Service *s) {
        if (s->state != SERVICE_STOPPING || s->generations)
                return;
        s->state = SERVICE_STOPPED;
        log_info("All workers are gone.");
        changed(s);
        waiters_complete(&s->stop_waiters, s, 0, NULL);
}

/* A retiring or failed generation whose slots are all gone is freed; "reload --wait" callers hear. */
static void generation_maybe_free(Service *s, Generation *g) {
        Waiter *waiters;
        uint64_t id;

        if (g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED)
                return;
        for (size_t i = 0; i < g->n_slots; i++)
                if (g->slots[i]->worker)
                        return;
        id = g->id;
        waiters = g->waiters;
        g->waiters = NULL;
        if (s->host->generation_gone)
                s->host->generation_gone(s->host_userdata, g);
        else
                log_info("Generation %" PRIu64 " is gone.", id);
        generation_free(s, g);
        waiters_complete(&waiters, s, 0, NULL);
        changed(s);
        stop_complete_if_done(s);
}

/* A slot taken out for good and without a process is freed (and maybe its generation with it). */
static void slot_maybe_free(Service *s, Slot *slot) {
        Generation *g = slot->generation;

        if (slot->worker)
                return;
        if (!slot->retiring && g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED)
                return;
        slot_free(s, slot);
        generation_maybe_free(s, g);
}

static int slot_new(Service *s, Generation *g, unsigned index, uint64_t id, Slot **ret, char **ret_error) {
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

static int generation_new(Service *s, Config *c, uint64_t id, GenerationState state, Generation **ret,
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
        if (id >= s->next_generation_id)
                s->next_generation_id = id + 1;
        r = s->strategy->ops->generation_open(s->strategy, g, ret_error);
        if (r < 0) {
                config_unref(g->config);
                free(g);
                return r;
        }
        /* Append: oldest first. */
        Generation **p = &s->generations;
        while (*p)
                p = &(*p)->next;
        *p = g;
        *ret = g;
        return 0;
}

static int generation_add_slots(Service *s, Generation *g, unsigned from, unsigned to, char **ret_error) {
        for (unsigned i = from; i < to; i++) {
                int r = slot_new(s, g, i, s->next_slot_id, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- describing things ---- */

static char *describe_exit(int code, int status) {
        switch (code) {
        case CLD_EXITED:
                return strdup_printf("exited with status %d", status);
        case CLD_KILLED:
                return strdup_printf("was killed by %s", signal_name(status));
        case CLD_DUMPED:
                return strdup_printf("dumped core on %s", signal_name(status));
        default:
                return strdup("exited");
        }
}

static bool exit_is_clean(int code, int status) {
        /* As systemd: exit status 0, or a signal that asks for an orderly end. A worker taken over from an
         * earlier rpsupd (code 0: its status is not ours to know) that leaves on its own is a failure. */
        if (code == CLD_EXITED)
                return status == 0;
        if (code == CLD_KILLED)
                return status == SIGHUP || status == SIGINT || status == SIGTERM || status == SIGPIPE;
        return false;
}

/* A worker that was on its way out ended as asked: cleanly, by the signal it was sent, or by SIGKILL
 * after it outlived TimeoutStopSec= (reported then). Anything else is a crash. An adopted worker's exit
 * (code 0) is not ours to know. */
static bool exit_is_orderly(int code, int status, WorkerState state, StopReason reason, int kill_signal) {
        bool asked = state == WORKER_STOPPING || state == WORKER_KILLED;

        if (code == 0 || exit_is_clean(code, status))
                return true;
        if (code != CLD_KILLED && code != CLD_DUMPED)
                return false;
        if (state == WORKER_KILLED && status == SIGKILL)
                return true;
        if (asked && status == (reason == STOP_WATCHDOG ? SIGABRT : kill_signal))
                return true;
        return false;
}

/* ---- processes ---- */

static void worker_stop(Service *s, Worker *w, StopReason reason);

static int slot_spawn(Service *s, Slot *slot) {
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
        };
        slot->worker = w;
        slot->respawn_at = USEC_INFINITY;
        slot->drain_deadline = USEC_INFINITY; /* a deadline of the previous worker's is not this one's */

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

static void worker_kill(Service *s, Worker *w, int sig) {
        int r = s->host->kill(s->host_userdata, w, sig);
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Failed to send %s to worker %u (pid %d) of generation %" PRIu64 ": %m",
                                  signal_name(sig), w->slot->index, (int) w->pid, w->slot->generation->id);
}

static void worker_stop(Service *s, Worker *w, StopReason reason) {
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

static void slots_retire(Service *s, Slot **slots, size_t n, bool drain) {
        /* First take them all out of the steering at once, then let the strategy retire each listener
         * (migrate shuts them down: the queues move to the slots that now take connections). */
        for (size_t i = 0; i < n; i++) {
                slots[i]->retiring = true;
                slots[i]->respawn_at = USEC_INFINITY;
        }
        steer(s);

        for (size_t i = 0; i < n; i++) {
                Slot *slot = slots[i];
                Worker *w = slot->worker;
                usec_t delay = drain ? s->strategy->ops->retire(s->strategy, slot) : 0;

                if (!w)
                        continue;
                if (delay == 0 || w->state == WORKER_STARTING) {
                        worker_stop(s, w, STOP_RETIRED);
                        continue;
                }
                if (w->state == WORKER_READY)
                        w->state = WORKER_DRAINING;
                slot->drain_deadline = usec_add(now(s), delay);
        }
        /* Slots without a process have nothing to drain; the caller frees them (slots_free_idle()). */
        for (size_t i = 0; i < n; i++)
                if (!slots[i]->worker)
                        slots[i]->drain_deadline = USEC_INFINITY;
}

static void slots_free_idle(Service *s, Generation *g) {
        for (size_t i = g->n_slots; i > 0; i--) {
                Slot *slot = g->slots[i - 1];
                if (!slot->worker && (slot->retiring || g->state == GENERATION_RETIRING ||
                                      g->state == GENERATION_FAILED)) {
                        slot_free(s, slot);
                }
        }
        generation_maybe_free(s, g);
}

static void generation_retire(Service *s, Generation *g, bool drain) {
        Slot **list;
        size_t n = 0;

        g->state = GENERATION_RETIRING;
        g->retired_at = now(s);
        if (s->host->generation_retiring)
                s->host->generation_retiring(s->host_userdata, g);
        list = calloc(g->n_slots ?: 1, sizeof(Slot *));
        if (!list) {
                /* Out of memory: stop them one by one without draining. */
                for (size_t i = 0; i < g->n_slots; i++) {
                        g->slots[i]->retiring = true;
                        if (g->slots[i]->worker)
                                worker_stop(s, g->slots[i]->worker, STOP_RETIRED);
                }
        } else {
                for (size_t i = 0; i < g->n_slots; i++)
                        if (!g->slots[i]->retiring)
                                list[n++] = g->slots[i];
                slots_retire(s, list, n, drain);
                free(list);
        }
        slots_free_idle(s, g);
}

/* ---- operations ---- */

static void operation_finish(Service *s, int r, const char *message) {
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

static int operation_begin(Service *s, OperationKind kind, ServiceDone done, void *userdata) {
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

static int refuse(Service *s, ServiceDone done, void *userdata, int r, const char *fmt, ...) _printf_(5, 6);
static int refuse(Service *s, ServiceDone done, void *userdata, int r, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);
        complete(s, done, userdata, r, m ?: "out of memory");
        return r;
}

static int check_idle(Service *s, ServiceDone done, void *userdata) {
        if (s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED || s->state == SERVICE_FAILED)
                return refuse(s, done, userdata, -ESHUTDOWN, "the service is %s", service_state_to_string(s->state));
        if (s->op)
                return refuse(s, done, userdata, -EBUSY, "a %s is in progress; try again when it is done",
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

static void generation_fail(Service *s, Generation *g, const char *reason);

int service_start(Service *s, Config *c, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        _cleanup_free_ char *error = NULL;
        Generation *g = NULL;
        int r;

        if (s->live || s->pending || s->state != SERVICE_STARTING) {
                log_error("Cannot start: the service was already started.");
                return refuse(s, done, userdata, -EALREADY, "the service was already started");
        }
        r = operation_begin(s, OPERATION_START, done, userdata);
        if (r < 0)
                return refuse(s, done, userdata, log_oom(), "out of memory");

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

int service_reload(Service *s, Config *c, bool wait_retired, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        _cleanup_free_ char *error = NULL;
        Generation *g = NULL;
        int r;

        r = check_idle(s, done, userdata);
        if (r < 0) {
                s->counters.reloads_refused++;
                return r;
        }
        if (!s->live) {
                s->counters.reloads_refused++;
                return refuse(s, done, userdata, -EBUSY, "no generation is serving yet");
        }
        if (service_count_generations(s) >= GENERATIONS_MAX) {
                s->counters.reloads_refused++;
                return refuse(s, done, userdata, -EBUSY,
                              "%zu generations are still draining (at most %u may run at once); retry when "
                              "one has finished", service_count_generations(s) - 1, GENERATIONS_MAX);
        }

        r = operation_begin(s, OPERATION_RELOAD, done, userdata);
        if (r < 0)
                return refuse(s, done, userdata, r, "out of memory");
        s->op->wait_retired = wait_retired;
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

static void scale_fail(Service *s, const char *reason) {
        Operation *op = s->op;
        Generation *g = s->live;
        _cleanup_free_ char *m = NULL;
        Slot **list;
        size_t n = 0;

        if (!op || op->kind != OPERATION_SCALE || !g)
                return;
        list = calloc(g->n_slots ?: 1, sizeof(Slot *));
        for (size_t i = 0; list && i < g->n_slots; i++)
                if (!g->slots[i]->retiring && g->slots[i]->index >= op->scale_from) {
                        g->slots[i]->failed = true;
                        list[n++] = g->slots[i];
                }
        if (list)
                slots_retire(s, list, n, true);
        free(list);
        slots_free_idle(s, g);
        s->counters.scales_failed++;
        m = strdup_printf("scale to %u workers failed: %s; %u workers keep serving", op->scale_to, reason,
                          op->scale_from);
        log_error("%s", m ?: reason);
        operation_finish(s, -ECANCELED, m ?: reason);
}

static void scale_check_done(Service *s) {
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

int service_scale(Service *s, unsigned n, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        _cleanup_free_ char *error = NULL;
        Generation *g = s->live;
        unsigned cur;
        int r;

        r = check_idle(s, done, userdata);
        if (r < 0)
                return r;
        if (!g)
                return refuse(s, done, userdata, -EBUSY, "no generation is serving yet");
        if (n < 1 || n > WORKERS_MAX)
                return refuse(s, done, userdata, -EINVAL, "%u is not a worker count between 1 and %u", n,
                              WORKERS_MAX);

        cur = service_live_workers(s);
        s->scaled_workers = n;
        s->scaled_base = g->config->workers;

        if (n == cur) {
                complete(s, done, userdata, 0, NULL);
                return 0;
        }

        if (n < cur) {
                Slot **list = calloc(g->n_slots, sizeof(Slot *));
                size_t k = 0;

                if (!list)
                        return refuse(s, done, userdata, -ENOMEM, "out of memory");
                for (size_t i = 0; i < g->n_slots; i++)
                        if (!g->slots[i]->retiring && g->slots[i]->index >= n)
                                list[k++] = g->slots[i];
                log_info("Scaling in from %u to %u workers.", cur, n);
                slots_retire(s, list, k, true);
                free(list);
                slots_free_idle(s, g);
                s->counters.scales_ok++;
                changed(s);
                complete(s, done, userdata, 0, NULL);
                return 0;
        }

        r = operation_begin(s, OPERATION_SCALE, done, userdata);
        if (r < 0)
                return refuse(s, done, userdata, r, "out of memory");
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

int service_stop(Service *s, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        int r;

        if (s->state == SERVICE_STOPPED || (s->state == SERVICE_FAILED && !s->generations)) {
                complete(s, done, userdata, 0, NULL);
                return 0;
        }
        r = waiter_add(&s->stop_waiters, done, userdata);
        if (r < 0)
                return refuse(s, done, userdata, r, "out of memory");
        if (s->state == SERVICE_STOPPING)
                return 0;

        log_info("Stopping: asking all workers to finish.");
        s->state = SERVICE_STOPPING;
        if (s->op) {
                if (s->op->kind == OPERATION_SCALE)
                        s->counters.scales_failed++;
                else if (s->op->kind == OPERATION_RELOAD)
                        s->counters.reloads_failed++;
                operation_finish(s, -ESHUTDOWN, "the service is stopping");
                s->state = SERVICE_STOPPING;
        }
        /* Every generation retires without a drain window: nothing takes over, and the listeners stay
         * open (in the fd store) for the next rpsupd. */
        for (Generation *g = s->generations, *next; g; g = next) {
                next = g->next;
                if (g == s->pending) {
                        g->state = GENERATION_FAILED;
                        s->pending = NULL;
                }
                Slot **list = calloc(g->n_slots ?: 1, sizeof(Slot *));
                size_t n = 0;
                if (g->state != GENERATION_FAILED)
                        g->state = GENERATION_RETIRING;
                for (size_t i = 0; list && i < g->n_slots; i++)
                        list[n++] = g->slots[i];
                if (list)
                        slots_retire(s, list, n, false);
                free(list);
                /* Draining workers are asked to stop now too. */
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        slot->drain_deadline = USEC_INFINITY;
                        if (slot->worker)
                                worker_stop(s, slot->worker, STOP_RETIRED);
                }
        }
        s->live = NULL;
        for (Generation *g = s->generations, *next; g; g = next) {
                next = g->next;
                slots_free_idle(s, g);
        }
        changed(s);
        stop_complete_if_done(s);
        return 0;
}

/* ---- generation transitions ---- */

static void generation_go_live(Service *s, Generation *g) {
        Generation *previous = s->live;
        Operation *op = s->op;
        usec_t t = now(s);

        g->state = GENERATION_LIVE;
        g->live_at = t;
        s->live = g;
        s->pending = NULL;
        /* From here on, new connections go to g only. */
        steer(s);
        if (previous) {
                log_info("Generation %" PRIu64 " takes all new connections; generation %" PRIu64 " retires.",
                         g->id, previous->id);
                if (op && op->wait_retired && waiter_add(&previous->waiters, op->done, op->userdata) >= 0)
                        op->done = NULL; /* answered when the previous generation is gone */
                generation_retire(s, previous, true);
        } else
                log_info("Generation %" PRIu64 " is ready and takes connections.", g->id);

        if (op && op->generation == g) {
                if (op->kind == OPERATION_RELOAD) {
                        s->counters.reloads_ok++;
                        s->counters.last_reload_usec = t - op->started_at;
                        /* The workers' own start-up (fork of the last to READY=1 of the last) is theirs. */
                        s->counters.last_reload_own_usec = (op->spawned_at - op->started_at) + (t - op->ready_at);
                }
                operation_finish(s, 0, NULL);
        }
        changed(s);
}

static void generation_check_ready(Service *s, Generation *g) {
        if (g != s->pending || g->state != GENERATION_STARTING)
                return;
        for (size_t i = 0; i < g->n_slots; i++)
                if (!g->slots[i]->worker || g->slots[i]->worker->state != WORKER_READY)
                        return;
        generation_go_live(s, g);
}

static void generation_fail(Service *s, Generation *g, const char *reason) {
        Operation *op = s->op;
        _cleanup_free_ char *m = NULL;

        if (g->state == GENERATION_FAILED)
                return;
        g->state = GENERATION_FAILED;
        free(g->failure);
        g->failure = strdup(reason);
        if (s->pending == g)
                s->pending = NULL;

        if (s->live) {
                m = strdup_printf("generation %" PRIu64 " failed: %s; rolled back, generation %" PRIu64
                                  " keeps serving", g->id, reason, s->live->id);
                s->counters.reloads_failed++;
        } else {
                m = strdup_printf("generation %" PRIu64 " failed: %s", g->id, reason);
                if (s->state == SERVICE_STARTING)
                        s->state = SERVICE_FAILED;
        }
        log_error("%s", m ?: reason);

        for (size_t i = 0; i < g->n_slots; i++) {
                g->slots[i]->retiring = true;
                g->slots[i]->respawn_at = USEC_INFINITY;
                if (g->slots[i]->worker)
                        worker_stop(s, g->slots[i]->worker, STOP_RETIRED);
        }
        if (op && op->generation == g)
                operation_finish(s, -ECANCELED, m ?: reason);
        slots_free_idle(s, g);
        changed(s);
}

/* ---- events ---- */

static bool slot_is_joining(Service *s, Slot *slot) {
        return s->op && s->op->kind == OPERATION_SCALE && slot->generation == s->live &&
               slot->index >= s->op->scale_from && !slot->retiring;
}

static void worker_became_ready(Service *s, Worker *w) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        usec_t t = now(s);

        w->state = WORKER_READY;
        w->ready_at = t;
        w->ready_deadline = USEC_INFINITY;
        if (g->config->watchdog > 0)
                w->watchdog_deadline = usec_add(t, g->config->watchdog);

        if (g == s->pending) {
                if (s->op && s->op->generation == g)
                        s->op->ready_at = t;
                generation_check_ready(s, g);
        }
        else if (g == s->live) {
                if (slot->restarts > 0)
                        log_info("Worker %u of generation %" PRIu64 " is back (pid %d).", slot->index, g->id,
                                 (int) w->pid);
                steer(s);
                scale_check_done(s);
        }
        changed(s);
}

void service_worker_exec_done(Service *s, Worker *w, int error) {
        SERVICE_STEP(s);
        if (error != 0) {
                w->exec_error = error < 0 ? -error : error;
                return; /* the process exits with status 127 and is handled as an exit */
        }
        w->exec_done = true;
        if (w->state == WORKER_STARTING && w->slot->generation->config->ready == READY_EXEC)
                worker_became_ready(s, w);
}

void service_worker_ready(Service *s, Worker *w) {
        SERVICE_STEP(s);
        if (w->state != WORKER_STARTING)
                return;
        if (w->slot->generation->config->ready != READY_NOTIFY)
                return; /* Ready=exec: READY=1 carries no extra meaning */
        worker_became_ready(s, w);
}

/* A worker will not become ready (its ready timeout, or it said STOPPING=1): the start, reload or scale that
 * waits for it fails now; a worker restarted into a live slot is replaced. */
static void worker_not_ready(Service *s, Worker *w, const char *why, StopReason reason) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;

        w->ready_deadline = USEC_INFINITY;
        if (g == s->pending)
                generation_fail(s, g, why);
        else if (slot_is_joining(s, slot))
                scale_fail(s, why);
        else {
                log_warning("Worker %u of generation %" PRIu64 ": %s; replacing it.", slot->index, g->id, why);
                worker_stop(s, w, reason);
                changed(s);
        }
}

void service_worker_stopping(Service *s, Worker *w) {
        SERVICE_STEP(s);
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        _cleanup_free_ char *m = NULL;

        /* The worker says it is going away on its own. */
        if (w->state != WORKER_READY && w->state != WORKER_STARTING)
                return;
        if (g == s->pending || slot_is_joining(s, slot) || w->state == WORKER_STARTING) {
                /* It will not serve: whatever waits for it is decided now, as its ready timeout would. */
                m = strdup_printf("worker %u (pid %d) said STOPPING=1 before %s", slot->index, (int) w->pid,
                                  w->state == WORKER_STARTING ? "it was ready" : "its generation took connections");
                worker_not_ready(s, w, m ?: "a worker stopped before it was ready", STOP_GAVE_UP);
                return;
        }
        log_info("Worker %u of generation %" PRIu64 " (pid %d) is stopping on its own.", slot->index, g->id,
                 (int) w->pid);
        /* Out of the steering now; it has TimeoutStopSec= to be gone, then it is stopped and replaced. */
        w->state = WORKER_DRAINING;
        slot->drain_deadline = usec_add(now(s), g->config->stop_timeout);
        steer(s);
        changed(s);
}

void service_worker_watchdog(Service *s, Worker *w) {
        Config *c = w->slot->generation->config;

        if (w->state == WORKER_READY && c->watchdog > 0)
                w->watchdog_deadline = usec_add(now(s), c->watchdog);
}

void service_worker_watchdog_trigger(Service *s, Worker *w) {
        SERVICE_STEP(s);
        if (w->state == WORKER_READY && w->slot->generation->config->watchdog > 0) {
                w->watchdog_deadline = now(s);
                changed(s);
        }
}

void service_worker_extend_timeout(Service *s, Worker *w, usec_t usec) {
        Config *c = w->slot->generation->config;
        usec_t t = usec_add(now(s), usec), limit = USEC_INFINITY;

        if (w->state != WORKER_STARTING)
                return;
        /* A worker that keeps asking for more time would hold a start, reload or scale forever: its start
         * may stretch to READY_EXTEND_FACTOR x ReadyTimeoutSec=, not beyond. */
        if (c->ready_timeout != USEC_INFINITY && c->ready_timeout < USEC_INFINITY / READY_EXTEND_FACTOR)
                limit = usec_add(w->started_at, c->ready_timeout * READY_EXTEND_FACTOR);
        if (t > limit) {
                if (!w->extend_capped) {
                        char buf[FORMAT_TIMESPAN_MAX];
                        format_timespan(buf, sizeof(buf), limit - w->started_at, USEC_PER_MSEC);
                        log_warning("Worker %u of generation %" PRIu64 " (pid %d) asks for more time to get "
                                    "ready than allowed; it must be ready within %s of its start (%ux "
                                    "ReadyTimeoutSec=).", w->slot->index, w->slot->generation->id, (int) w->pid,
                                    buf, READY_EXTEND_FACTOR);
                        w->extend_capped = true;
                }
                t = limit;
        }
        if (t > w->ready_deadline) {
                w->ready_deadline = t;
                changed(s);
        }
}

void service_worker_errno(Service *s, Worker *w, int error) {
        /* ERRNO=: why the worker is about to fail, as sd_notify() users report it. */
        if (error > 0)
                w->errno_value = error;
}

void service_worker_status(Service *s, Worker *w, const char *text) {
        char *t = strndup(text, STATUS_TEXT_MAX);

        if (!t)
                return;
        /* Keep one printable line. */
        for (char *p = t; *p; p++)
                if ((unsigned char) *p < ' ')
                        *p = ' ';
        free(w->status_text);
        w->status_text = t;
        changed(s);
}

void service_worker_notify(Service *s, Worker *w, const NotifyMessage *msg) {
        SERVICE_STEP(s);

        /* What it says about itself first, then what it says it is doing. */
        if (msg->status)
                service_worker_status(s, w, msg->status);
        if (msg->errno_value > 0)
                service_worker_errno(s, w, msg->errno_value);
        if (msg->extend_timeout > 0)
                service_worker_extend_timeout(s, w, msg->extend_timeout);
        if (msg->watchdog)
                service_worker_watchdog(s, w);
        if (msg->watchdog_trigger)
                service_worker_watchdog_trigger(s, w);
        if (msg->ready)
                service_worker_ready(s, w);
        if (msg->stopping)
                service_worker_stopping(s, w);
}

static usec_t restart_delay(unsigned failures) {
        usec_t d = RESTART_DELAY_MIN_USEC;

        for (unsigned i = 1; i < failures && d < RESTART_DELAY_MAX_USEC; i++)
                d *= 2;
        return MIN(d, RESTART_DELAY_MAX_USEC);
}

static void slot_schedule_respawn(Service *s, Slot *slot, bool failure, const char *what) {
        Config *c = slot->generation->config;
        char buf[FORMAT_TIMESPAN_MAX];
        usec_t delay;

        if (c->restart == RESTART_NO || (c->restart == RESTART_ON_FAILURE && !failure)) {
                log_warning("Worker %u of generation %" PRIu64 " %s; Restart=%s, so the slot stays empty.",
                            slot->index, slot->generation->id, what, restart_mode_to_string(c->restart));
                return;
        }
        if (failure)
                slot->failures++;
        delay = failure ? restart_delay(slot->failures) : RESTART_DELAY_MIN_USEC;
        slot->respawn_at = usec_add(now(s), delay);
        format_timespan(buf, sizeof(buf), delay, USEC_PER_MSEC);
        if (slot->failures >= CRASH_LOOP_FAILURES)
                log_error("Worker %u of generation %" PRIu64 " is crash-looping: %u failures in a row, the "
                          "last one: %s. Next attempt in %s.", slot->index, slot->generation->id,
                          slot->failures, what, buf);
        else
                log_warning("Worker %u of generation %" PRIu64 " %s; restarting it in %s.", slot->index,
                            slot->generation->id, what, buf);
}

void service_worker_exited(Service *s, Worker *w, int code, int status) {
        SERVICE_STEP(s);
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        _cleanup_free_ char *how = describe_exit(code, status), *what = NULL;
        bool expected, failure, orderly;
        WorkerState state = w->state;
        StopReason reason = w->stop_reason;
        usec_t t = now(s), ready_at = w->ready_at;
        pid_t pid = w->pid;

        expected = (reason == STOP_RETIRED) || slot->retiring || g->state == GENERATION_RETIRING ||
                   g->state == GENERATION_FAILED || s->state == SERVICE_STOPPING;
        failure = !exit_is_clean(code, status) || state == WORKER_STARTING ||
                  (reason != STOP_NONE && reason != STOP_RETIRED);

        switch (reason) {
        case STOP_READY_TIMEOUT:
                what = strdup_printf("(pid %d) was not ready in time and %s", (int) pid, how ?: "exited");
                break;
        case STOP_WATCHDOG:
                what = strdup_printf("(pid %d) missed its watchdog and %s", (int) pid, how ?: "exited");
                break;
        case STOP_STALLED:
                what = strdup_printf("(pid %d) stalled and %s", (int) pid, how ?: "exited");
                break;
        case STOP_GAVE_UP:
                what = strdup_printf("(pid %d) stopped before it was ready and %s", (int) pid, how ?: "exited");
                break;
        case STOP_LINGERED:
                what = strdup_printf("(pid %d) said it was stopping, did not exit in time and %s", (int) pid,
                                     how ?: "exited");
                break;
        default:
                if (w->errno_value > 0 && !w->exec_error)
                        what = strdup_printf("(pid %d) %s%s, reporting %s", (int) pid, how ?: "exited",
                                             state == WORKER_STARTING ? " before it was ready" : "",
                                             strerror(w->errno_value));
                else if (w->exec_error)
                        what = strdup_printf("(pid %d) could not execute %s: %s", (int) pid,
                                             g->config->exec_path, strerror(w->exec_error));
                else
                        what = strdup_printf("(pid %d) %s%s", (int) pid, how ?: "exited",
                                             state == WORKER_STARTING ? " before it was ready" : "");
        }

        /* One that never ran (exec failed) was reported as such already. */
        orderly = w->exec_error || exit_is_orderly(code, status, state, reason, g->config->kill_signal);
        worker_free(s, w);

        if (expected) {
                if (orderly)
                        log_debug("Worker %u of generation %" PRIu64 " %s.", slot->index, g->id, what ?: "exited");
                else {
                        /* It was on its way out, but did not end as asked: operators must see crashes here
                         * too (a core dump per retired worker is a bug in the daemon, or in its stop). */
                        s->counters.retiring_failures++;
                        log_warning("Worker %u of generation %" PRIu64 " %s while %s.", slot->index, g->id,
                                    what ?: "exited", s->state == SERVICE_STOPPING ? "the service stopped" :
                                    "it was retiring");
                }
                slot_maybe_free(s, slot);
                changed(s);
                return;
        }

        if (failure) {
                s->counters.worker_failures++;
                free(slot->last_failure);
                slot->last_failure = what ? strdup(what) : NULL;
        }
        /* A worker that served long enough resets its slot's backoff. */
        if (ready_at > 0 && t - ready_at >= RESTART_HEALTHY_USEC)
                slot->failures = 0;

        if (g == s->pending) {
                _cleanup_free_ char *m = strdup_printf("worker %u %s", slot->index, what ?: "exited");
                generation_fail(s, g, m ?: "a worker exited");
                return;
        }
        if (slot_is_joining(s, slot) && state == WORKER_STARTING) {
                _cleanup_free_ char *m = strdup_printf("worker %u %s", slot->index, what ?: "exited");
                scale_fail(s, m ?: "a worker exited");
                return;
        }

        /* A live worker went away: it takes no new connections until its replacement is ready. Its
         * listener stays open in rpsupd, so what was queued on it waits for the replacement. */
        slot->drain_deadline = USEC_INFINITY;
        steer(s);
        slot_schedule_respawn(s, slot, failure, what ?: "exited");
        changed(s);
}

/* A serving worker hangs: it leaves the steering, what is queued for it moves to the serving workers where
 * the strategy can move it, and it is replaced. */
static void worker_replace_hung(Service *s, Worker *w, StopReason reason) {
        Slot *slot = w->slot;
        int r;

        worker_stop(s, w, reason); /* not serving from here on */
        steer(s);
        r = s->strategy->ops->evacuate ? s->strategy->ops->evacuate(s->strategy, slot) : 0;
        if (r > 0)
                log_info("Moved the connections waiting for worker %u to the serving workers.", slot->index);
        slot->stall_since = 0;
        slot->sampled = false;
        changed(s);
}

void service_slot_stalled(Service *s, Slot *slot) {
        SERVICE_STEP(s);
        Worker *w = slot->worker;
        char buf[FORMAT_TIMESPAN_MAX];

        if (!w || w->state != WORKER_READY || slot->generation != s->live || slot->retiring)
                return;
        s->counters.stall_replacements++;
        format_timespan(buf, sizeof(buf), stall_timeout(slot->generation->config), USEC_PER_MSEC);
        log_error("Worker %u of generation %" PRIu64 " (pid %d) accepted nothing for %s while connections "
                  "waited for it; replacing it.", slot->index, slot->generation->id, (int) w->pid, buf);
        worker_replace_hung(s, w, STOP_STALLED);
}

/* ---- stall detection ----
 *
 * A serving worker stalls when connections wait in its own accept queue and it takes none of them for
 * StallSec=. Only strategies with per-worker queues can tell (drain, migrate). While every queue is empty
 * nothing is sampled (the daemon watches the queues and calls service_queues_busy()); once one is not,
 * the queues are sampled until they are all empty again. */

usec_t stall_timeout(const Config *c) {
        return c->stall == USEC_INFINITY ? STALL_AUTO_USEC : c->stall;
}

static usec_t stall_period(const Config *c) {
        return MAX(MIN(stall_timeout(c) / 4, USEC_PER_SEC), 50 * USEC_PER_MSEC);
}

static bool stall_detection_on(Service *s) {
        return s->live && stall_timeout(s->live->config) > 0 && s->state != SERVICE_STOPPING &&
               s->state != SERVICE_STOPPED;
}

void service_queues_busy(Service *s) {
        if (!stall_detection_on(s) || s->sampling)
                return;
        s->sampling = true;
        s->next_sample = now(s); /* the first sample now: it is the baseline */
        changed(s);
}

static void stall_sample(Service *s, usec_t t) {
        Generation *g = s->live;
        usec_t timeout = stall_timeout(g->config);
        bool waiting = false;

        for (size_t i = 0; i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                SlotStats st = { .accept_queue = -1 };
                uint64_t in;
                int64_t taken;

                if (!slot_is_serving(slot) || s->strategy->ops->slot_stats(s->strategy, slot, &st) < 0 ||
                    st.queue_shared || st.accept_queue < 0) {
                        slot->sampled = false;
                        slot->stall_since = 0;
                        continue;
                }
                in = st.syns + st.migrations[MIGRATION_ACCEPT_QUEUE] + st.migrations[MIGRATION_REQUEST_ACK] +
                     st.migrations[MIGRATION_REQUEST_TIMER];
                if (st.accept_queue > 0)
                        waiting = true;
                if (slot->sampled) {
                        /* What it took since the last sample: what was queued, plus what came, minus what is
                         * queued now. */
                        taken = (int64_t) slot->sample_queue + (int64_t) (in - slot->sample_in) - st.accept_queue;
                        if (st.accept_queue > 0 && slot->sample_queue > 0 && taken <= 0) {
                                if (slot->stall_since == 0)
                                        slot->stall_since = slot->sample_at;
                        } else
                                slot->stall_since = 0;
                }
                slot->sampled = true;
                slot->sample_at = t;
                slot->sample_queue = (uint64_t) st.accept_queue;
                slot->sample_in = in;
                if (slot->stall_since > 0 && t - slot->stall_since >= timeout) {
                        service_slot_stalled(s, slot);
                        waiting = true;
                        break; /* the slots changed; the next sample goes on */
                }
        }
        if (waiting)
                s->next_sample = usec_add(t, stall_period(g->config));
        else {
                /* All quiet: nothing to sample until a queue fills again. */
                s->sampling = false;
                s->next_sample = USEC_INFINITY;
                for (size_t i = 0; i < g->n_slots; i++) {
                        g->slots[i]->sampled = false;
                        g->slots[i]->stall_since = 0;
                }
                if (s->host->watch_queues)
                        s->host->watch_queues(s->host_userdata);
        }
}

/* ---- time ---- */

usec_t service_next_deadline(Service *s) {
        usec_t next = s->sampling ? s->next_sample : USEC_INFINITY;

        if (s->strategy->ops->next_deadline)
                next = MIN(next, s->strategy->ops->next_deadline(s->strategy));

        for (Generation *g = s->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;

                        next = MIN(next, slot->respawn_at);
                        next = MIN(next, slot->drain_deadline);
                        if (!w)
                                continue;
                        if (w->state == WORKER_STARTING)
                                next = MIN(next, w->ready_deadline);
                        if (w->state == WORKER_READY)
                                next = MIN(next, w->watchdog_deadline);
                        if (w->state == WORKER_STOPPING)
                                next = MIN(next, w->stop_deadline);
                }
        return next;
}

/* Handles one expired deadline; returns false when there was none. One at a time, because handling one
 * may free slots and generations. */
static bool tick_one(Service *s, usec_t t) {
        for (Generation *g = s->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;
                        char buf[FORMAT_TIMESPAN_MAX];

                        if (slot->drain_deadline <= t) {
                                slot->drain_deadline = USEC_INFINITY;
                                if (w && !slot->retiring && g->state == GENERATION_LIVE) {
                                        /* It said STOPPING=1 and is still there. */
                                        format_timespan(buf, sizeof(buf), g->config->stop_timeout, USEC_PER_MSEC);
                                        log_warning("Worker %u of generation %" PRIu64 " (pid %d) said it was "
                                                    "stopping but is still running after %s; stopping it.",
                                                    slot->index, g->id, (int) w->pid, buf);
                                        worker_stop(s, w, STOP_LINGERED);
                                } else if (w) {
                                        log_debug("Drain window of worker %u of generation %" PRIu64
                                                  " is over.", slot->index, g->id);
                                        worker_stop(s, w, STOP_RETIRED);
                                } else
                                        slot_maybe_free(s, slot);
                                return true;
                        }
                        if (slot->respawn_at <= t) {
                                int r;
                                slot->respawn_at = USEC_INFINITY;
                                slot->restarts++;
                                r = slot_spawn(s, slot);
                                if (r < 0) {
                                        _cleanup_free_ char *m = strdup_printf("could not be started: %s",
                                                                               strerror(-r));
                                        log_error_errno(r, "Failed to restart worker %u: %m", slot->index);
                                        slot_schedule_respawn(s, slot, true, m ?: "could not be started");
                                }
                                changed(s);
                                return true;
                        }
                        if (!w)
                                continue;
                        if (w->state == WORKER_STARTING && w->ready_deadline <= t) {
                                _cleanup_free_ char *m = NULL;
                                format_timespan(buf, sizeof(buf), g->config->ready_timeout, USEC_PER_MSEC);
                                m = strdup_printf("worker %u (pid %d) was not ready within %s", slot->index,
                                                  (int) w->pid, buf);
                                worker_not_ready(s, w, m ?: "a worker was not ready in time", STOP_READY_TIMEOUT);
                                return true;
                        }
                        if (w->state == WORKER_READY && w->watchdog_deadline <= t) {
                                format_timespan(buf, sizeof(buf), g->config->watchdog, USEC_PER_MSEC);
                                log_error("Worker %u of generation %" PRIu64 " (pid %d) sent no WATCHDOG=1 "
                                          "for %s; replacing it.", slot->index, g->id, (int) w->pid, buf);
                                s->counters.watchdog_kills++;
                                w->watchdog_deadline = USEC_INFINITY;
                                worker_replace_hung(s, w, STOP_WATCHDOG);
                                return true;
                        }
                        if (w->state == WORKER_STOPPING && w->stop_deadline <= t) {
                                format_timespan(buf, sizeof(buf), g->config->stop_timeout, USEC_PER_MSEC);
                                log_warning("Worker %u of generation %" PRIu64 " (pid %d) did not exit within "
                                            "%s of %s; sending SIGKILL.", slot->index, g->id, (int) w->pid,
                                            buf, signal_name(w->stop_reason == STOP_WATCHDOG
                                                                     ? SIGABRT
                                                                     : g->config->kill_signal));
                                w->state = WORKER_KILLED;
                                w->stop_deadline = USEC_INFINITY;
                                worker_kill(s, w, SIGKILL);
                                changed(s);
                                return true;
                        }
                }
        return false;
}

void service_tick(Service *s) {
        SERVICE_STEP(s);
        usec_t t = now(s);
        unsigned guard = 0;

        while (tick_one(s, t) && ++guard < 100000)
                ;
        if (s->strategy->ops->tick)
                s->strategy->ops->tick(s->strategy, t);
        if (s->sampling && s->next_sample <= t) {
                if (stall_detection_on(s))
                        stall_sample(s, t);
                else {
                        s->sampling = false;
                        s->next_sample = USEC_INFINITY;
                }
        }
}

/* ---- queries ---- */

Worker *service_find_worker(Service *s, pid_t pid) {
        for (Generation *g = s->generations; g; g = g->next)
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

        for (Generation *g = s->generations; g; g = g->next)
                n++;
        return n;
}

bool slot_is_serving(const Slot *slot) {
        const Generation *g = slot->generation;

        return !slot->retiring && g->state == GENERATION_LIVE && g->service->live == g && slot->worker &&
               slot->worker->state == WORKER_READY;
}

/* ---- adoption ---- */

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

int service_resume(Service *s, ServiceDone done, void *userdata) {
        SERVICE_STEP(s);
        Generation *g;

        /* Whatever a crashed rpsupd left half-done is finished here: a generation that was still starting
         * is rolled back (its reload was never answered), retiring ones keep retiring, and slots of the
         * live generation without a worker are respawned. */
        for (g = s->generations; g; g = g->next)
                if (g->state == GENERATION_STARTING) {
                        if (s->live)
                                generation_fail(s, g, "rpsupd restarted while it was starting");
                        else
                                s->pending = g;
                        break;
                }

        for (g = s->generations; g; g = g->next) {
                if (g->state == GENERATION_RETIRING || g->state == GENERATION_FAILED) {
                        for (size_t i = 0; i < g->n_slots; i++) {
                                g->slots[i]->retiring = true;
                                if (g->slots[i]->worker)
                                        worker_stop(s, g->slots[i]->worker, STOP_RETIRED);
                        }
                        continue;
                }
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        if (slot->retiring) {
                                if (slot->worker)
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

        steer(s);
        for (g = s->generations; g;) {
                Generation *next = g->next;
                slots_free_idle(s, g); /* may free g */
                g = next;
        }
        changed(s);
        if (done) {
                complete(s, done, userdata, 0, NULL);
                return 1;
        }
        return 0;
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
        s->host = host;
        s->host_userdata = userdata;
        s->strategy = strategy;
        s->state = SERVICE_STARTING;
        s->next_generation_id = 1;
        s->next_slot_id = 1;
        *ret = s;
        return 0;
}

Service *service_free(Service *s) {
        if (!s)
                return NULL;
        while (s->generations)
                generation_free(s, s->generations);
        if (s->op) {
                free(s->op->completion);
                s->op = mfree(s->op);
        }
        waiters_complete(&s->stop_waiters, s, -ESHUTDOWN, "rpsupd is exiting");
        completions_run(s);
        free(s->name);
        free(s);
        return NULL;
}
