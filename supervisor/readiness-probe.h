/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ReadyProbe=: running probe attempts on rpsupd's event loop, at most one per worker, none of them ever
 * blocking. A tcp or http attempt connects to the first ListenStream= from a local port that the strategy
 * aims at the worker under test (where it can: drain, migrate); an exec attempt runs the command in a
 * process group of its own. Each ends within ReadyProbeTimeoutSec= and reports through ProbeHost.done. */

#include <systemd/sd-event.h>

#include "service.h"
#include "strategy.h"

typedef struct ProbeHost {
        sd_event *event;
        Strategy *strategy;       /* aims probe connections (probe_aim) */
        const char *service_name; /* RPSUP_SERVICE= of an exec probe */
        /* An attempt is over: r = 0 passed, < 0 failed; `what` says what it saw ("HTTP 500 Internal Server
         * Error", "no answer within 2s", "exited with status 1"), printable, valid during the call. Never
         * called from within probe_runner_start() or probe_runner_cancel(). */
        void (*done)(void *userdata, Worker *w, int r, const char *what);
        void *userdata;
} ProbeHost;

typedef struct ProbeRunner ProbeRunner;

int probe_runner_new(const ProbeHost *h, ProbeRunner **ret);
/* Ends every attempt (commands are killed) without reporting. */
ProbeRunner *probe_runner_free(ProbeRunner *pr);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProbeRunner *, probe_runner_free);

/* Starts an attempt of w's ReadyProbe= (its generation's config). -EBUSY: one runs for w already;
 * -EINVAL: no probe is configured; other errors (out of memory): nothing started. Anything that goes wrong
 * after that (no socket, no process) is the attempt's failure, reported through done. */
int probe_runner_start(ProbeRunner *pr, Worker *w);
/* Ends w's attempt, if one runs, without reporting (w is going away). A command is killed, and reaped
 * later without blocking. */
void probe_runner_cancel(ProbeRunner *pr, Worker *w);
/* Attempts running, commands being reaped included. */
size_t probe_runner_count(ProbeRunner *pr);
