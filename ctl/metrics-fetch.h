/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The metrics of many services at once: GetMetrics on every service's control socket, all calls in flight
 * together, with one deadline for all of them, so that an rpsupd that does not answer (stopped, hung, its
 * socket left behind) delays the answer by the deadline at most, and costs only its own metrics. */

#include <stddef.h>

#include "macro.h"
#include "time-util.h"

/* How many services are asked; the others are reported as not answering (-E2BIG). */
#define METRICS_FETCH_SERVICES_MAX 256U
/* The largest text taken from one service; a larger one counts as no answer (-EFBIG). */
#define METRICS_FETCH_TEXT_MAX (16U * 1024U * 1024U)
/* The text kept from all services together (it is copied twice more on its way out, within the unit's
 * MemoryMax=256M); services past it count as no answer (-EFBIG). */
#define METRICS_FETCH_TOTAL_MAX (48U * 1024U * 1024U)

typedef struct ServiceMetrics {
        const char *name; /* the caller's */
        char *text;       /* NULL: no answer, see error */
        int error;        /* why there is no text: a negative errno (-ETIMEDOUT: not within the deadline) */
} ServiceMetrics;

/* Fills in results[i] for each names[i] (n of them) within `timeout`. Returns 0, or -ENOMEM. */
int metrics_fetch(const char *runtime_dir, ServiceMetrics *results, size_t n, usec_t timeout);

void service_metrics_done(ServiceMetrics *results, size_t n);
