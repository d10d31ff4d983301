/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a restarted rpsupd needs to take over from its predecessor: generations, slots and worker
 * processes (pid + start time), kept in the runtime directory. The listeners themselves come back from
 * the fd store. */

#include "config.h"
#include "service.h"

typedef struct SavedWorker {
        pid_t pid;
        uint64_t start_time; /* /proc/PID/stat starttime */
        WorkerState state;
        usec_t started_at;   /* CLOCK_MONOTONIC: valid across rpsupd restarts within one boot */
        bool claimed_ready;  /* starting, said READY=1, being probed (ReadyProbe=) */
} SavedWorker;

typedef struct SavedSlot {
        uint64_t generation;
        unsigned index;
        uint64_t id;
        bool retiring;
        unsigned restarts;
        unsigned failures;
        bool has_worker;
        SavedWorker worker;
        bool has_drain;            /* a "#+drain" record: the retiring worker's drain deadline */
        usec_t drain_deadline;     /* CLOCK_MONOTONIC */
        bool has_shadow_base;      /* a "#+shadow-base" record: its counts when the shadow's window began */
        uint64_t shadow_base_syns;
        uint64_t shadow_base_projected;
} SavedSlot;

typedef struct SavedGeneration {
        uint64_t id;
        GenerationState state;
} SavedGeneration;

typedef struct SavedState {
        StrategyKind strategy;
        uint64_t next_generation;
        uint64_t next_slot;
        unsigned scaled_workers;
        unsigned scaled_base;
        bool has_steering;         /* a "steering" line: the policy, who set it and when */
        SteeringPolicy steering;
        SteeringPolicy steering_config;
        usec_t steering_since;     /* CLOCK_MONOTONIC */
        uid_t steering_by;         /* STEERING_BY_CONFIG: the config */
        uint64_t steering_changes;
        bool has_shadow;           /* a "#+shadow" record: the shadow policy, since when, who set it */
        SteeringPolicy shadow;
        usec_t shadow_since;       /* CLOCK_MONOTONIC */
        uid_t shadow_by;
        SavedGeneration *generations;
        size_t n_generations;
        SavedSlot *slots;
        size_t n_slots;
        SavedWorker *departing; /* hung workers that were being replaced: ended by the next rpsupd */
        size_t n_departing;
        /* "#+fdstore-handed" records: by slot index, the workers' fd store's number below which its fds went
         * to the worker of that index started last (0: none). */
        uint64_t fdstore_handed[WORKERS_MAX];
} SavedState;

/* Writes the service's state atomically. `start_time` gives a worker's process start time. */
int state_save(const char *path, Service *s, uint64_t (*start_time)(Worker *w));
/* -ENOENT when there is none. */
int state_load(const char *path, SavedState *ret);
void saved_state_done(SavedState *st);
