/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Merges the metrics of several services (each the text exposition format 0.0.4) into one exposition:
 * each family once, under one HELP and one TYPE, with the samples of every service, as Prometheus parsers
 * require (a family whose header comes again is an error for promtool and a new family for others). */

#include <stdio.h>

#include "macro.h"

typedef struct MetricsMerge MetricsMerge;

MetricsMerge *metrics_merge_new(void);
MetricsMerge *metrics_merge_free(MetricsMerge *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsMerge *, metrics_merge_free);

/* Adds one exposition. The samples of a family whose TYPE differs from the one an earlier exposition gave
 * it (another version of rpsupd) are left out: returns how many, or -ENOMEM. */
int metrics_merge_add(MetricsMerge *m, const char *text);

/* Writes the families in the order in which they first appeared. */
void metrics_merge_write(const MetricsMerge *m, FILE *f);
