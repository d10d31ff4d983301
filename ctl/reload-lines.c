/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "parse-util.h"
#include "records.h"
#include "reload-lines.h"
#include "time-util.h"

int parse_canary(const char *s, unsigned *ret) {
        char digits[16];
        size_t n;
        unsigned v;

        if (!s)
                return -EINVAL;
        n = strlen(s);
        if (n > 0 && s[n - 1] == '%')
                n--;
        if (n == 0 || n >= sizeof(digits))
                return -EINVAL;
        memcpy(digits, s, n);
        digits[n] = 0;
        if (parse_uint(digits, &v) < 0 || v < 1 || v > 100)
                return -EINVAL;
        *ret = v;
        return 0;
}

const char *format_count(char *buf, size_t l, uint64_t n) {
        char digits[32], *o = buf;
        size_t len;

        len = (size_t) snprintf(digits, sizeof(digits), "%" PRIu64, n);
        for (size_t i = 0; i < len && (size_t) (o - buf) + 2 < l; i++) {
                if (i > 0 && (len - i) % 3 == 0)
                        *o++ = ',';
                *o++ = digits[i];
        }
        if (l > 0)
                *o = 0;
        return buf;
}

/* HH:MM:SS in local time; a date too when it is not today. */
static const char *format_clock(char *buf, size_t l, uint64_t realtime_usec, uint64_t now) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC), today = (time_t) (now / USEC_PER_SEC);
        struct tm tm, tm_now;

        if (!localtime_r(&t, &tm) || !localtime_r(&today, &tm_now))
                snprintf(buf, l, "-");
        else if (tm.tm_year == tm_now.tm_year && tm.tm_yday == tm_now.tm_yday)
                strftime(buf, l, "%H:%M:%S", &tm);
        else
                strftime(buf, l, "%Y-%m-%d %H:%M:%S", &tm);
        return buf;
}

/* "3.2 s" under a minute, else "2min 5s". */
static const char *format_left(char *buf, size_t l, uint64_t usec) {
        if (usec < USEC_PER_MINUTE)
                snprintf(buf, l, "%.1f s", (double) usec / USEC_PER_SEC);
        else
                format_timespan(buf, l, usec, USEC_PER_SEC);
        return buf;
}

const char *format_soak_line(char *buf, size_t l, json_object *status, uint64_t now, int counted) {
        uint64_t deadline = (uint64_t) record_int(status, "soak_deadline_usec");
        uint64_t steered = (uint64_t) record_int(status, "soak_steered");
        uint64_t warm = (uint64_t) record_int(status, "soak_warm_steered");
        int64_t canary = record_int(status, "canary_percent");
        char clock[64], left[FORMAT_TIMESPAN_MAX], total[32], share[64] = "";
        int n;

        if (record_int(status, "soak_generation") <= 0)
                return NULL;
        if (counted) {
                if (canary > 0 && steered + warm > 0)
                        snprintf(share, sizeof(share), ": %.1f %% of %s connections so far",
                                 100.0 * (double) steered / (double) (steered + warm),
                                 format_count(total, sizeof(total), steered + warm));
                else if (canary > 0)
                        snprintf(share, sizeof(share), ": no connections so far");
                else
                        snprintf(share, sizeof(share), ": %s connection%s so far",
                                 format_count(total, sizeof(total), steered), steered == 1 ? "" : "s");
        }
        n = snprintf(buf, l, "Soak: generation %" PRIi64 " on probation until %s (%s left), ",
                     record_int(status, "soak_generation"), format_clock(clock, sizeof(clock), deadline, now),
                     format_left(left, sizeof(left), deadline > now ? deadline - now : 0));
        if (n < 0 || (size_t) n >= l)
                return buf;
        if (canary > 0)
                snprintf(buf + n, l - (size_t) n, "canary %" PRIi64 " %%%s; generation %" PRIi64 " warm", canary,
                         share, record_int(status, "soak_warm_generation"));
        else
                snprintf(buf + n, l - (size_t) n, "all new connections%s; generation %" PRIi64 " warm", share,
                         record_int(status, "soak_warm_generation"));
        return buf;
}

const char *format_last_reload_line(char *buf, size_t l, json_object *status, uint64_t now) {
        const char *outcome = record_str(status, "last_reload_outcome");
        const char *by = record_str(status, "last_reload_by"), *reason = record_str(status, "last_reload_reason");
        uint64_t at = (uint64_t) record_int(status, "last_reload_at_usec");
        char what[64], clock[64];

        if (!outcome || !outcome[0] || streq(outcome, "none"))
                return NULL;
        /* "rolled_back" or "rolled-back" reads "rolled back". */
        snprintf(what, sizeof(what), "%s", outcome);
        for (char *p = what; *p; p++)
                if (*p == '_' || *p == '-')
                        *p = ' ';
        snprintf(buf, l, "Last reload: generation %" PRIi64 " %s at %s%s%s%s%s", record_int(status, "last_reload_generation"),
                 what, at > 0 ? format_clock(clock, sizeof(clock), at, now) : "-",
                 by && by[0] ? ", by " : "", by ?: "", reason && reason[0] ? ": " : "", reason ?: "");
        return buf;
}

const char *format_reload_counts(char *buf, size_t l, json_object *status) {
        int64_t by_operator = record_int(status, "reloads_rolled_back_by_operator");
        char extra[64] = "";

        if (by_operator > 0)
                snprintf(extra, sizeof(extra), " (%" PRIi64 " by an operator)", by_operator);
        snprintf(buf, l, "%" PRIi64 " promoted, %" PRIi64 " failed, %" PRIi64 " rolled back%s, %" PRIi64 " refused",
                 record_int(status, "reloads_ok"), record_int(status, "reloads_failed"),
                 record_int(status, "reloads_rolled_back") + by_operator, extra, record_int(status, "reloads_refused"));
        return buf;
}
