/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "time-util.h"

/* Checked number parsing: the whole string must be a number in range, or -EINVAL/-ERANGE. */
int parse_uint64(const char *s, uint64_t *ret);
int parse_uint(const char *s, unsigned *ret);
int parse_int(const char *s, int *ret);
/* systemd time spans: "30", "30s", "1min 30s", "500ms", "2h"; a bare number is `default_unit`.
 * "infinity" is USEC_INFINITY. */
int parse_timespan(const char *s, usec_t default_unit, usec_t *ret);
/* "SIGTERM", "TERM", "15" */
int parse_signal(const char *s);
const char *signal_name(int sig);
