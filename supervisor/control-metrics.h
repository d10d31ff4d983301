/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* GetMetrics: rpsupd's state and the kernel's counters as Prometheus text (exposition format 0.0.4). */

#include "control-status.h"

int control_metrics(const StatusView *v, char **ret);
