/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the parts of the generation state machine share; not for use outside service*.c.
 *
 *  service.c             objects, completions, the retire path, generation transitions, queries
 *  service-operations.c  start, reload, scale, stop
 *  service-events.c      what workers report, backoff, deadlines
 *  service-stall.c       stall detection: sampling the accept queues
 *  service-adopt.c       adoption after an rpsupd restart
 *  service-steering.c    the steering policy */

#include <sys/queue.h>

#include "service.h"
#include "strategy.h"

/* Someone to tell when something is over: the caller of an operation, a "reload --wait", a stop. Once the
 * outcome is known, the waiter moves to Service.completions with it (r, message). */
typedef struct Waiter {
        ServiceDone done;
        void *userdata;
        int r;
        char *message;
        STAILQ_ENTRY(Waiter) next;
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
        usec_t live_at;         /* reload: the new generation took connections (its soak began) */
        bool wait_retired;
        usec_t soak;            /* reload: SoakSec=, or 0 (--no-soak) */
        unsigned canary;        /* reload: percent for the new generation during the soak; 0 or 100: all */
        Generation *generation; /* start, reload: the generation being started */
        unsigned scale_from;    /* scale: the worker count before */
        unsigned scale_to;
        Waiter *completion;     /* allocated up front: finishing cannot fail */
} Operation;

/* How slots (or a whole generation) are taken out for good. Every retirement goes through
 * slots_retire()/generation_retire(); the mode says what differs.
 *
 *  REPLACED  a newer generation (or a scale-in) takes over: out of the steering, the strategy retires the
 *            listener, the worker drains for the strategy's window, then is stopped.
 *  STOP      the service stops: out of the steering; where the strategy can keep new connections away
 *            from the workers (retire() > 0), each worker drains as when replaced (draining ones keep their
 *            window), else it is stopped now. A second stop request ends every drain at once.
 *  FAILED    a starting generation did not become ready: it never took connections, so the steering is
 *            left alone; its workers are stopped now. Counted as a failure by the caller.
 *  RESUME    after adoption, what the previous rpsupd was retiring: its workers are stopped now; the
 *            steering is set once, when resuming is done.
 *  ROLLBACK  a soaking generation failed: out of the steering, what is queued for its workers moves to
 *            the generation that serves again (the strategy's abandon()), and each worker finishes what
 *            it has open, as when replaced. (Rolled back by an operator, or because rpsupd restarted during
 *            the soak, a generation is retired as REPLACED: nothing says it is bad.) */
typedef enum RetireMode {
        RETIRE_REPLACED,
        RETIRE_STOP,
        RETIRE_FAILED,
        RETIRE_RESUME,
        RETIRE_ROLLBACK,
        _RETIRE_MODE_MAX,
} RetireMode;

static inline usec_t now(Service *s) {
        return s->host->now(s->host_userdata);
}

static inline void changed(Service *s) {
        if (s->host->changed)
                s->host->changed(s->host_userdata);
}

/* Completions (service.c). */
Service *service_enter(Service *s);
void service_leavep(Service **p);
/* Opens one step of the state machine for the rest of the scope; completions are told at its end. */
#define SERVICE_STEP(s) _cleanup_(service_leavep) _unused_ Service *_step_ = service_enter(s)
void completion_queue(Service *s, Waiter *w, int r, const char *message);
void waiters_complete(WaiterList *list, Service *s, int r, const char *message);
void service_complete(Service *s, ServiceDone done, void *userdata, int r, const char *message);
int waiter_add(WaiterList *list, ServiceDone done, void *userdata);

/* Objects (service.c). */
Worker *worker_free(Service *s, Worker *w);
void slot_maybe_free(Service *s, Slot *slot);
int slot_new(Service *s, Generation *g, unsigned index, uint64_t id, Slot **ret, char **ret_error);
int generation_new(Service *s, Config *c, uint64_t id, GenerationState state, Generation **ret,
                   char **ret_error);
int generation_add_slots(Service *s, Generation *g, unsigned from, unsigned to, char **ret_error);
void generation_free(Service *s, Generation *g);
/* A stop is over once every generation is gone: its waiters hear. */
void service_stop_complete_if_done(Service *s);

/* Processes (service.c). */
void steering_update(Service *s);
/* The steering policy (service-steering.c): Steering= at start, unless one was taken over; after a reload of
 * config c (what it will be, and applying it). */
void service_steering_init(Service *s, const Config *c);
SteeringPolicy service_steering_after_reload(Service *s, const Config *c);
void service_steering_reload(Service *s, const Config *c);
int slot_spawn(Service *s, Slot *slot);
void worker_kill(Service *s, Worker *w, int sig);
void worker_stop(Service *s, Worker *w, StopReason reason);

/* Retiring (service.c): the slots of g from index `from` on (in mode REPLACED only those not retiring
 * yet), then frees what has nothing left to wait for (g itself maybe). */
void slots_retire(Service *s, Generation *g, unsigned from, RetireMode mode);
void generation_retire(Service *s, Generation *g, RetireMode mode);
/* Frees the slots of g taken out without a process left, then g itself if nothing is left of it. */
void generation_free_idle(Service *s, Generation *g);

/* Generation transitions (service.c). */
void generation_check_ready(Service *s, Generation *g);
void generation_fail(Service *s, Generation *g, const char *reason);
void reload_record(Service *s, ReloadOutcome outcome, uint64_t generation, uint64_t previous, const char *reason,
                   const char *by);

/* The soak (service.c): the soaking generation takes over, or the warm one takes back. */
void soak_promote(Service *s, const char *by);
void soak_roll_back(Service *s, const char *reason, const char *by);
/* A worker of the soaking generation failed (`what` it did): rolls back; false if slot's generation is not
 * soaking. */
bool soak_fails(Service *s, Slot *slot, const char *what);

/* Operations (service-operations.c). */
void operation_finish(Service *s, int r, const char *message);
int operation_begin(Service *s, OperationKind kind, ServiceDone done, void *userdata);
bool slot_is_joining(Service *s, Slot *slot);
void scale_fail(Service *s, const char *reason);
void scale_check_done(Service *s);

/* Events (service-events.c). */
void worker_replace_hung(Service *s, Worker *w, StopReason reason);

/* Stall detection (service-stall.c). */
/* Samples the queues if that is due. */
void stall_tick(Service *s, usec_t t);
