/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY (24ULL * USEC_PER_HOUR)
#define NSEC_PER_USEC 1000ULL

#define FORMAT_TIMESPAN_MAX 64

usec_t now_usec(clockid_t clock);
/* Adds without overflowing into USEC_INFINITY. */
usec_t usec_add(usec_t a, usec_t b);
/* "1min 30s", "250ms", "infinity": shortest exact form; `accuracy` rounds (e.g. USEC_PER_MSEC). */
char *format_timespan(char *buf, size_t l, usec_t t, usec_t accuracy);
