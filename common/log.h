/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The logging layer of rpsupd and rpsupctl: one line per event, to the journal's stderr stream with a
 * priority prefix when systemd runs us, plain text otherwise. Every log_*_errno() returns the error it was
 * given, so "return log_error_errno(r, ...)" logs and propagates in one statement. %m expands to the
 * message of that error. Library code (common/, protocol/, bpf/) never logs its own failures: it returns them;
 * bpf/ only passes on what libbpf says (libbpf tells only a print callback). */

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

void log_setup(const char *program);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_parse_level(const char *s);     /* "debug", "info", "notice", "warning", "err", or 0..7 */
void log_set_prefix(const char *prefix); /* e.g. the service name, shown before each message */

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...)                                                       \
        ({                                                                                      \
                int _l_ = (level), _e_ = (error);                                              \
                (log_get_max_level() >= _l_) ? log_internal(_l_, _e_, __FILE__, __LINE__, __VA_ARGS__) \
                                             : (_e_ > 0 ? -_e_ : _e_);                          \
        })
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* Rate limiting for messages a peer can trigger at will (garbage on a socket, unknown senders): at most
 * `burst` messages per `interval_usec`; the next message after a suppressed run says how many were lost. */
typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin;
        unsigned num;
        unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval, b) { .interval_usec = (interval), .burst = (b) }
/* Returns true when the message may be shown; *ret_suppressed is set to the number dropped before it. */
bool ratelimit_below(RateLimit *rl, unsigned *ret_suppressed);

#define log_ratelimit(level, ...)                                                               \
        do {                                                                                    \
                static RateLimit _rl_ = RATELIMIT_INIT(10 * 1000000ULL, 10);                    \
                unsigned _s_;                                                                   \
                if (ratelimit_below(&_rl_, &_s_)) {                                             \
                        if (_s_ > 0)                                                            \
                                log_full((level), "(%u similar messages suppressed)", _s_);     \
                        log_full((level), __VA_ARGS__);                                         \
                }                                                                               \
        } while (0)
