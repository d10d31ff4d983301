/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The generation state machine of one service: generations of worker slots, what happens when a worker
 * becomes ready, exits, hangs or misses its watchdog, and the operations start, reload, scale and stop
 * (service.c, service-operations.c, service-events.c, service-stall.c, service-adopt.c).
 *
 * It decides; it does not touch processes, sockets or clocks itself. Processes are started and
 * signalled through ServiceHost (the daemon's implementation forks and execs, the unit tests' fakes record
 * calls), time comes from ServiceHost.now(), and listeners change hands through the Strategy. The daemon
 * feeds events in (service_worker_*()), calls service_tick() when service_next_deadline() is reached, and
 * is told through ServiceHost.changed() that something visible changed. */

#include <sys/queue.h>
#include <sys/types.h>

#include "config.h"
#include "macro.h"
#include "time-util.h"

typedef struct Service Service;
typedef struct Generation Generation;
typedef struct Slot Slot;
typedef struct Worker Worker;
typedef struct Strategy Strategy;
typedef struct Waiter Waiter;
typedef STAILQ_HEAD(WaiterList, Waiter) WaiterList;

typedef enum WorkerState {
        WORKER_STARTING, /* started, not ready yet */
        WORKER_READY,    /* serving */
        WORKER_DRAINING, /* out of steering, still accepting until its slot's drain window ends */
        WORKER_STOPPING, /* sent KillSignal (or SIGABRT for a hung worker); SIGKILL at stop_deadline */
        WORKER_KILLED,   /* sent SIGKILL; waiting for it to be gone */
        _WORKER_STATE_MAX,
        _WORKER_STATE_INVALID = -EINVAL,
} WorkerState;

typedef enum GenerationState {
        GENERATION_STARTING, /* workers starting; takes no connections yet */
        GENERATION_LIVE,     /* takes every new connection */
        GENERATION_SOAKING,  /* a reload's new generation on probation (SoakSec=): takes new connections (all,
                              * or its canary share); any failure rolls back to the warm one */
        GENERATION_WARM,     /* the previous generation during a soak: its workers stay up, its listeners
                              * intact; it takes what the canary leaves, or nothing */
        GENERATION_RETIRING, /* replaced or stopping: draining, then its workers are stopped */
        GENERATION_FAILED,   /* did not become ready: being stopped, the previous one keeps serving */
        _GENERATION_STATE_MAX,
        _GENERATION_STATE_INVALID = -EINVAL,
} GenerationState;

typedef enum ServiceState {
        SERVICE_STARTING,
        SERVICE_RUNNING,
        SERVICE_RELOADING,
        SERVICE_SCALING,
        SERVICE_STOPPING,
        SERVICE_STOPPED,
        SERVICE_FAILED, /* the first generation never became ready */
        _SERVICE_STATE_MAX,
        _SERVICE_STATE_INVALID = -EINVAL,
} ServiceState;

/* Why a worker stopped or is being stopped; decides whether the slot is respawned. */
typedef enum StopReason {
        STOP_NONE,
        STOP_RETIRED,        /* its generation or slot was retired: expected */
        STOP_READY_TIMEOUT,  /* not ready within ReadyTimeoutSec=: a failure */
        STOP_WATCHDOG,       /* missed WatchdogSec=: a failure */
        STOP_STALLED,        /* accept queue stopped moving for StallSec=: a failure */
        STOP_GAVE_UP,        /* said STOPPING=1 before it was ready: a failure */
        STOP_LINGERED,       /* said STOPPING=1, then did not exit within TimeoutStopSec=: a failure */
        STOP_PROBE,          /* failed its readiness probe: a failure */
        _STOP_REASON_MAX,
} StopReason;

struct Worker {
        Slot *slot;
        pid_t pid;
        WorkerState state;
        StopReason stop_reason;
        bool exec_done;    /* execve() succeeded */
        int exec_error;    /* why execve() (or a step before it) failed; 0: it did not */
        int errno_value;   /* the worker's last ERRNO= */
        bool adopted;      /* started by an earlier rpsupd; not our child */
        usec_t started_at; /* monotonic */
        usec_t ready_at;
        usec_t ready_deadline;
        usec_t stop_deadline;
        usec_t watchdog_deadline;
        bool extend_capped; /* EXTEND_TIMEOUT_USEC= reached its bound (logged once) */
        /* ReadyProbe=: a worker that said it is ready (READY=1, or exec with Ready=exec) stays starting
         * until it passed ReadyProbePasses= probes in a row; during a soak it keeps being probed. */
        bool claimed_ready;
        bool probing;           /* an attempt runs (ServiceHost.probe), its result is due */
        usec_t probe_at;        /* the next attempt; USEC_INFINITY: none */
        unsigned probe_passes;  /* consecutive */
        unsigned probe_failures;/* consecutive */
        char *probe_failure;    /* what the last failed attempt said */
        /* Replaced while it hung (stall): no longer its slot's worker, ending in Service.departing while a
         * replacement serves the slot. Its slot (and generation) stay until it is gone. */
        bool departing;
        LIST_ENTRY(Worker) departing_link;
        char *status_text; /* the worker's last STATUS= */
        void *host_data;   /* owned by the ServiceHost: process tracking */
};

struct Slot {
        Generation *generation;
        unsigned index;        /* RPSUP_WORKER */
        uint64_t id;           /* unique within the service, for names that must not be reused */
        Worker *worker;        /* NULL between an exit and the respawn */
        bool retiring;         /* taken out: no respawn, stopped after the drain window */
        bool scale_failed;     /* a scale-out slot that never became ready */
        bool stall_stopped;    /* replaced for stalling; counted once */
        unsigned restarts;     /* respawns so far */
        unsigned consecutive_failures; /* backoff, crash-loop report */
        usec_t respawn_at;     /* USEC_INFINITY: no respawn pending */
        usec_t drain_deadline; /* USEC_INFINITY: none; else KillSignal then */
        usec_t drain_check_at; /* retiring, draining: when to look again whether its worker is idle */
        int64_t drain_queue;   /* what waited in its listeners at the last look */
        bool drain_idle_seen;  /* the last look found it idle (two in a row stop it) */
        bool drain_abandoned;  /* its queue was moved to the serving workers (it took nothing) */
        usec_t drain_stuck_since; /* 0: its queue went down (or was empty) at the last look */
        unsigned n_departing;  /* workers replaced while they hung, not gone yet */
        char *last_failure;    /* what the last failure was, for status */
        /* Stall detection: the last sample of the slot's accept queue and of what came into it. */
        bool sampled;
        usec_t sample_at;
        uint64_t sample_queue;
        uint64_t sample_in;
        usec_t stall_since;    /* 0: not stalled */
        /* A shadow policy's window (Service.shadow): the slot's new connections and projected ones when it
         * began, valid while the slot keeps the id it had then (fresh listeners count from 0); status shows
         * the counts since then (slot_shadow_counts()). */
        uint64_t shadow_base_id;
        uint64_t shadow_base_syns;
        uint64_t shadow_base_projected;
        void *strategy_data;   /* owned by the strategy: per-slot listeners */
};

struct Generation {
        Service *service;
        uint64_t id;
        GenerationState state;
        Config *config;
        Slot **slots;
        size_t n_slots;
        usec_t started_at, live_at, retired_at;
        char *failure; /* why it failed (or was rolled back), for status */
        uint64_t steered_base; /* strategy's count of connections steered to it when its soak began */
        void *strategy_data;
        /* Callers of "reload --wait" waiting for this generation to be gone. */
        WaiterList waiters;
        TAILQ_ENTRY(Generation) link; /* in Service.generations, oldest first */
};

typedef void (*ServiceDone)(Service *s, int r, const char *message, void *userdata);

typedef struct ServiceHost {
        usec_t (*now)(void *userdata);
        /* Start the worker's process. On success sets w->pid; the outcome of execve() is reported later
         * with service_worker_exec_done(). */
        int (*spawn)(void *userdata, Worker *w);
        int (*kill)(void *userdata, Worker *w, int sig);
        /* The worker object is about to be freed: release host_data. */
        void (*forget)(void *userdata, Worker *w);
        /* Something an observer could see changed (states, deadlines). */
        void (*changed)(void *userdata);
        /* Stall detection is idle: call service_queues_busy() as soon as a serving worker's accept queue is
         * not empty (optional: without it, stalls are only found while sampling runs). */
        void (*watch_queues)(void *userdata);
        /* Runs one readiness probe attempt of the worker (ReadyProbe=); its outcome comes back through
         * service_worker_probed(), at most ReadyProbeTimeoutSec= later. At most one runs per worker;
         * forget() cancels it. */
        int (*probe)(void *userdata, Worker *w);
        /* A generation stops taking new connections (replaced, or stopping), and when it is gone
         * (optional: the daemon reports what the kernel did meanwhile). */
        void (*generation_retiring)(void *userdata, Generation *g);
        void (*generation_gone)(void *userdata, Generation *g);
} ServiceHost;

/* How a reload ended. */
typedef enum ReloadOutcome {
        RELOAD_NONE,        /* none yet */
        RELOAD_PROMOTED,    /* the new generation took over (after its soak, or promoted early) */
        RELOAD_FAILED,      /* the new generation never became ready; the previous one kept serving */
        RELOAD_ROLLED_BACK, /* the new generation failed during its soak, or an operator rolled it back */
        RELOAD_STOPPED,     /* the service stopped while it ran */
        _RELOAD_OUTCOME_MAX,
        _RELOAD_OUTCOME_INVALID = -EINVAL,
} ReloadOutcome;

typedef struct ReloadRecord {
        ReloadOutcome outcome;
        uint64_t generation; /* the new one */
        uint64_t previous;   /* the one serving before it */
        char *reason;        /* why it failed or was rolled back; NULL when promoted */
        char *by;            /* who decided: "soak", "rpsupd" (a failure), or the operator's command */
        usec_t at;           /* monotonic */
} ReloadRecord;

typedef struct ServiceCounters {
        uint64_t reloads_ok;
        uint64_t reloads_failed;  /* the new generation never became ready */
        uint64_t reloads_rolled_back;     /* failed during the soak, automatically */
        uint64_t reloads_rolled_back_by_operator;
        uint64_t probe_failures;  /* readiness probe attempts that failed */
        usec_t last_rollback_usec; /* the last automatic rollback: from the failure seen to steering flipped */
        uint64_t reloads_refused; /* refused before anything started: a bad config, or busy */
        uint64_t scales_ok;
        uint64_t scales_failed;
        uint64_t worker_starts;
        uint64_t worker_failures;
        uint64_t retiring_failures; /* workers that crashed (not ended as asked) while retiring or stopping */
        uint64_t watchdog_kills;
        uint64_t stop_timeouts;    /* workers that did not exit within StopTimeoutSec= of KillSignal: SIGKILLed */
        uint64_t stall_replacements;
        usec_t last_reload_usec; /* duration of the last successful reload, request to live */
        usec_t last_reload_own_usec; /* ...of which rpsupd's own: before the last fork, after the last READY=1 */
} ServiceCounters;

#define STEERING_BY_CONFIG ((uid_t) -1)

struct Service {
        char *name;
        const ServiceHost *host;
        void *host_userdata;
        Strategy *strategy;

        ServiceState state;
        TAILQ_HEAD(, Generation) generations; /* oldest first */
        Generation *live;        /* takes new connections; NULL before the first is ready */
        Generation *pending;     /* starting (first start or reload) */
        uint64_t next_generation_id;
        uint64_t next_slot_id;

        /* Runtime scale: overrides Workers= until Workers= itself changes in the config. */
        unsigned scaled_workers;
        unsigned scaled_base;

        /* How new connections pick a worker (service-steering.c): Steering=, or `rpsupctl steer`, the last of
         * the two: a run-time choice holds until a reload brings a config whose Steering= differs from
         * steering_config. */
        bool steering_set;              /* decided (from the config, or taken over); else at start */
        SteeringPolicy steering;
        SteeringPolicy steering_config; /* Steering= of the config last applied */
        usec_t steering_since;          /* when the policy was set */
        uid_t steering_by;              /* who set it: a uid (rpsupctl steer), or STEERING_BY_CONFIG */
        uint64_t steering_changes;      /* policy changes while the service ran */
        /* A shadow policy (`rpsupctl steer --shadow`): computed for every new connection, counted per slot,
         * not enforced. Its window restarts when it is set again and when the policy changes. */
        bool shadow_runs;
        SteeringPolicy shadow;          /* round-robin or hash (the kernel's choice cannot be computed) */
        usec_t shadow_since;            /* when its window began */
        uid_t shadow_by;                /* who set it */

        /* The operation in progress (start, reload or scale), at most one. */
        struct Operation *op;
        /* Stop requests (stop preempts everything else). */
        WaiterList stop_waiters;
        /* Outcomes decided, to be told when the outermost call into the service returns. */
        WaiterList completions;
        unsigned depth; /* calls into the service in progress */

        /* A soak (SoakSec=): live is the soaking generation, warm the previous one. */
        Generation *warm;
        usec_t soak_started_at;
        usec_t soak_deadline;    /* USEC_INFINITY: no soak */
        unsigned canary;         /* percent of new connections for the soaking generation; 0: all */
        ReloadRecord last_reload;

        /* Workers replaced while they hung, on their way out (Worker.departing). */
        LIST_HEAD(, Worker) departing;

        /* Stall detection: sampling the live generation's accept queues. */
        bool sampling;
        usec_t next_sample;

        ServiceCounters counters;
};

/* Every generation of s, oldest first; FOREACH_GENERATION_SAFE when the body may free g. */
#define FOREACH_GENERATION(g, s) for (Generation *g = TAILQ_FIRST(&(s)->generations); g; g = TAILQ_NEXT(g, link))
#define FOREACH_GENERATION_SAFE(g, next, s)                                                  \
        for (Generation *g = TAILQ_FIRST(&(s)->generations), *next = g ? TAILQ_NEXT(g, link) : NULL; g; \
             g = next, next = g ? TAILQ_NEXT(g, link) : NULL)

int service_new(const char *name, const ServiceHost *host, void *userdata, Strategy *strategy, Service **ret);
Service *service_free(Service *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Service *, service_free);

/* Operations. Each completes through `done` (r < 0 with a message on failure); at most one of start,
 * reload and scale runs at a time (-EBUSY otherwise). The return value says whether it was started. */
int service_start(Service *s, Config *c, ServiceDone done, void *userdata);
typedef struct ReloadOptions {
        bool wait_retired; /* complete when the previous generation is gone, not when the new one took over */
        bool no_soak;      /* skip SoakSec= for this reload */
        unsigned canary;   /* percent (1..100) for the new generation during the soak; 0: the config's Canary= */
} ReloadOptions;
/* A reload with a soak completes when the soak ends: r = 0 when promoted, -ECANCELED when rolled back. */
int service_reload(Service *s, Config *c, const ReloadOptions *o, ServiceDone done, void *userdata);
/* During a soak: end it now, the new generation takes over (promote), or flip back to the warm one
 * (rollback). `by` says who asked (for the log and status). -ESRCH when no soak runs. */
int service_promote(Service *s, const char *by, ServiceDone done, void *userdata);
int service_rollback(Service *s, const char *by, ServiceDone done, void *userdata);
int service_scale(Service *s, unsigned n, ServiceDone done, void *userdata);
int service_stop(Service *s, ServiceDone done, void *userdata);
/* Switches the steering policy now, in one steering update (rpsupctl steer); `by` is the caller's uid.
 * Refused (with *ret_error) where the policy cannot run: -EINVAL without the steering program, -EBUSY
 * for kernel during a canary or while the service stops. Switching to the policy that runs already is no
 * change (returns 0). */
int service_steer(Service *s, SteeringPolicy policy, uid_t by, char **ret_error);
/* Starts (or restarts: a fresh window) a shadow policy, or stops it (shadow < 0), in one steering update;
 * `by` is the caller's uid. Refused (with *ret_error): -EINVAL for kernel (it cannot be computed) and without
 * the steering program, -EBUSY while the service stops. */
int service_steer_shadow(Service *s, SteeringPolicy shadow, uid_t by, char **ret_error);
/* A slot's new connections and projected ones in the shadow's window, from its stats. */
struct SlotStats;
void slot_shadow_counts(const Slot *slot, const struct SlotStats *st, uint64_t *ret_actual, uint64_t *ret_projected);
/* While stopping: every worker still draining is asked to stop now (a second SIGTERM or SIGINT). */
void service_stop_now(Service *s);

/* Events. */
typedef struct NotifyMessage NotifyMessage;
/* A worker's sd_notify() message: every assignment in it, as one step. */
void service_worker_notify(Service *s, Worker *w, const NotifyMessage *msg);
void service_worker_exec_done(Service *s, Worker *w, int error);
void service_worker_ready(Service *s, Worker *w);
void service_worker_stopping(Service *s, Worker *w);
void service_worker_watchdog(Service *s, Worker *w);
void service_worker_watchdog_trigger(Service *s, Worker *w); /* WATCHDOG=trigger: act as if it was missed */
void service_worker_extend_timeout(Service *s, Worker *w, usec_t usec);
void service_worker_status(Service *s, Worker *w, const char *text);
void service_worker_errno(Service *s, Worker *w, int error);
/* code/status as in siginfo_t: CLD_EXITED + exit status, or CLD_KILLED/CLD_DUMPED + signal;
 * code 0 when unknown (an adopted worker). */
void service_worker_exited(Service *s, Worker *w, int code, int status);
/* A readiness probe attempt is over: r = 0 passed, < 0 failed, with what it saw. */
void service_worker_probed(Service *s, Worker *w, int r, const char *what);
/* The slot's worker stalled (its accept queue is not moving): replace it. */
void service_slot_stalled(Service *s, Slot *slot);
/* A serving worker's accept queue is not empty: stall detection starts sampling. */
void service_queues_busy(Service *s);
/* StallSec=, with auto resolved. */
usec_t stall_timeout(const Config *c);

/* Deadlines. */
usec_t service_next_deadline(Service *s);
void service_tick(Service *s);

/* Queries. */
Worker *service_find_worker(Service *s, pid_t pid);
unsigned service_live_workers(Service *s); /* non-retiring slots of the live generation */
size_t service_count_generations(Service *s);
bool slot_is_serving(const Slot *slot);    /* ready, not retiring, of the live (or soaking) generation */
/* Ready, not retiring, of the warm generation: takes (100 - canary)% during a canary, else nothing. */
bool slot_is_warm(const Slot *slot);
/* Connections steered to g since its soak began (the strategy's counters). */
uint64_t generation_steered(Service *s, Generation *g);
/* A slot id not used before (a strategy that gives a slot new listeners names them by a new id). */
uint64_t service_new_slot_id(Service *s);

/* Adoption after an rpsupd restart: rebuild generations, slots and workers that a previous rpsupd ran.
 * Call before service_start()/service_resume(). */
Generation *service_adopt_generation(Service *s, uint64_t id, GenerationState state, Config *c);
Slot *service_adopt_slot(Service *s, Generation *g, unsigned index, uint64_t id, bool retiring);
Worker *service_adopt_worker(Service *s, Slot *slot, pid_t pid, WorkerState state, usec_t started_at);
/* What the previous rpsupd had counted: ids in use, the runtime scale, a slot's restarts and failures. */
void service_adopt_counters(Service *s, uint64_t next_generation_id, uint64_t next_slot_id, unsigned scaled_workers,
                            unsigned scaled_base);
void service_adopt_slot_history(Slot *slot, unsigned restarts, unsigned consecutive_failures);
/* The steering policy the previous rpsupd ran, who set it and when (monotonic), and its Steering=. */
void service_adopt_steering(Service *s, SteeringPolicy policy, SteeringPolicy config, usec_t since, uid_t by,
                            uint64_t changes);
/* The shadow policy the previous rpsupd ran, since when (monotonic) and who set it; a slot's window base. */
void service_adopt_shadow(Service *s, SteeringPolicy shadow, usec_t since, uid_t by);
void service_adopt_slot_shadow(Slot *slot, uint64_t base_syns, uint64_t base_projected);
/* A shadow taken over whose counters did not survive (the steering program was loaded afresh): a fresh
 * window, from the slots' counts now. */
void service_shadow_restart(Service *s);
/* The starting worker had said it is ready and was being probed (ReadyProbe=): probing goes on. */
void service_adopt_ready_claim(Service *s, Worker *w);
/* A retiring slot's worker goes on draining until `deadline` (after a reexec) instead of being stopped. */
void service_adopt_drain(Service *s, Slot *slot, usec_t deadline);
/* Continue after adoption: the live generation serves; whatever was in progress is finished or undone.
 * `done` is called like service_start()'s: at once if a generation is live, else when the first one
 * (which was still starting) is ready or failed. Returns 0 (and never calls `done`) when nothing was live or
 * starting: then service_start() starts a new generation. */
int service_resume(Service *s, ServiceDone done, void *userdata);

const char *worker_state_to_string(WorkerState s);
const char *generation_state_to_string(GenerationState s);
const char *service_state_to_string(ServiceState s);
const char *reload_outcome_to_string(ReloadOutcome o);
WorkerState worker_state_from_string(const char *s);
GenerationState generation_state_from_string(const char *s);
