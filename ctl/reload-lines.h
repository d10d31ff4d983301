/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What "rpsupctl status" says about reloads and their health gates (the soak in progress, the canary's
 * measured share, how the last reload ended, reloads by outcome), made from GetStatus's record; and the
 * reload command's --canary argument. */

#include <stddef.h>
#include <stdint.h>

#include "json-util.h"

/* --canary PERCENT: 1..100, a trailing "%" allowed. -EINVAL otherwise. */
int parse_canary(const char *s, unsigned *ret);

/* 1234567 as "1,234,567". */
const char *format_count(char *buf, size_t l, uint64_t n);

/* "Soak: generation 5 on probation until 12:00:03 (3.2 s left), canary 10 %: 9.8 % of 1,234 connections
 * so far", as of `now` (CLOCK_REALTIME usec), in local time. NULL when no soak runs. `counted`: the
 * strategy counts steered connections (not handoff). */
const char *format_soak_line(char *buf, size_t l, json_object *status, uint64_t now, int counted);

/* "Last reload: generation 5 rolled back at 12:00:04, by rpsupd: worker 1 (pid 123) exited with status 3".
 * NULL when there was none. */
const char *format_last_reload_line(char *buf, size_t l, json_object *status, uint64_t now);

/* "3 promoted, 1 failed, 2 rolled back (1 by an operator), 0 refused" */
const char *format_reload_counts(char *buf, size_t l, json_object *status);
