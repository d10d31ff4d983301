/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Fakes for unit tests of the generation state machine (supervisor/service*.c): fake processes, a fake
 * clock and a fake strategy, and helpers that drive them. */

#include <stdbool.h>

#include "rpsup-limits.h"
#include "service.h"
#include "strategy.h"

#define MAX_EVENTS 4096

typedef struct Fake {
        usec_t now;
        pid_t next_pid;
        int spawn_error;        /* next spawn fails with this */
        unsigned spawns;
        struct {
                pid_t pid;
                int sig;
        } kills[MAX_EVENTS];
        unsigned n_kills;
        unsigned steers;
        pid_t serving[WORKERS_MAX]; /* pids in the steering after the last steer() */
        unsigned n_serving;
        pid_t warm[WORKERS_MAX];    /* pids of the warm generation in the steering (a canary's rest) */
        unsigned n_warm;
        unsigned canary;            /* Service.canary at the last steer() */
        /* readiness probes: attempts started (the test reports their outcome with service_worker_probed) */
        bool probe_host;            /* offer ServiceHost.probe (else the service has no probes to run) */
        int probe_error;            /* the next attempt cannot be started */
        unsigned probes;
        pid_t probed[MAX_EVENTS];
        usec_t retire_delay;    /* what the fake strategy's retire() returns */
        unsigned retired;
        unsigned slots_open;
        unsigned generations_open;
        int generation_open_error;
        /* what the fake strategy's slot_stats() reports, by slot index (stats_known: else -EOPNOTSUPP) */
        bool stats_known;
        unsigned watch_queues;  /* calls of ServiceHost.watch_queues(): sampling stopped, all queues empty */
        SlotStats stats[WORKERS_MAX];
        /* what the fake strategy's slot_drain_state() reports, by slot index (drain_known: else -EOPNOTSUPP) */
        bool drain_known;
        SlotDrainState drain[WORKERS_MAX];
        unsigned drain_checks;
        unsigned abandoned;     /* slots whose queue the fake strategy was asked to move away (rollback) */
        /* the last completed operation */
        unsigned done_calls;
        int done_r;
        char done_message[512];
} Fake;

extern Fake fake;
extern const ServiceHost fake_host;
extern const ServiceHost fake_host_probing; /* fake_host with ServiceHost.probe */
extern Strategy fake_strategy;

void op_done(Service *s, int r, const char *message, void *userdata);
Config *config_new(unsigned workers);

Service *setup_service(void);
Service *setup_service_with(const ServiceHost *host);
/* Steps through deadlines the way the daemon's timer does. */
void advance(Service *s, usec_t t);
Generation *generation_by_id(Service *s, uint64_t id);
void ready_all(Service *s, Generation *g);
unsigned kills_with(int sig);
bool killed(pid_t pid, int sig);
void exit_worker(Service *s, Worker *w, int code, int status);
Worker *find_signalled(Service *s);
/* Every worker that was signalled exits, as a well-behaved process would. */
void exit_signalled(Service *s);
/* A started service whose first generation is live. */
Service *start_running(unsigned workers);
/* Frees the service; every slot and generation the strategy opened is closed. */
void teardown(Service *s);
