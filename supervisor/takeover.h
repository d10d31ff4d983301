/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Taking over from an rpsupd that crashed or was restarted: its generations, slots and still-running
 * workers (from the state file) and its listeners (from the fd store). */

#include "takeover-state.h"
#include "worker-process.h"

/* What taking over needs from rpsupd (the manager fills it in). */
typedef struct TakeoverHost {
        Service *service;      /* rebuilt through service_adopt_*() */
        const Config *config;  /* the config the adopted generations run with */
        WorkerHost *workers;   /* watches the adopted workers' processes */
        bool same_process;     /* a reexec: the same boot and clock, the workers are our children; retiring
                                * workers keep their drain windows */
        bool may_go_back;      /* a reexec whose new image can still execute the running one again: a failure
                                * leaves the workers to it */
} TakeoverHost;

/* Rebuilds the service from the state. Failing, it changed nothing outside this process (the workers are
 * ended, unless h->may_go_back); succeeding, it ends the hung workers the predecessor was replacing. */
int takeover_restore(const TakeoverHost *h, const SavedState *saved);
/* Without the listeners, the workers of an earlier rpsupd cannot be supervised: ask them to stop (and
 * SIGKILL them after StopTimeoutSec=), so they do not hold the addresses this rpsupd must bind. */
void takeover_end_orphans(const SavedState *saved, const Config *c);
/* Under systemd, with nothing to take over: other processes in our control group are workers of an earlier
 * rpsupd that nobody supervises (and that may hold our addresses). They are stopped the same way. */
void takeover_end_cgroup_leftovers(const Config *c);
/* After a reexec (same process): children of this process that are not taken-over workers (an exec probe
 * in flight, a hung worker ended by takeover_restore()) are watched, so that each is reaped when it exits.
 * Bounded by the children the previous image had. */
void takeover_reap_strays(sd_event *e, Service *s);
