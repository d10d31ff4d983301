/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "parse-util.h"

int parse_uint64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (isempty(s) || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != 0)
                return -EINVAL;
        *ret = (uint64_t) v;
        return 0;
}

int parse_uint(const char *s, unsigned *ret) {
        uint64_t v;
        int r = parse_uint64(s, &v);

        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_int(const char *s, int *ret) {
        long v;
        char *end;

        if (isempty(s))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
                return -ERANGE;
        if (*end != 0 || isspace((unsigned char) s[0]))
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

int parse_timespan(const char *s, usec_t default_unit, usec_t *ret) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                /* Longer suffixes first, so "ms" is not read as "m" followed by junk. */
                { "seconds", USEC_PER_SEC },   { "second", USEC_PER_SEC },  { "sec", USEC_PER_SEC },
                { "s", USEC_PER_SEC },         { "minutes", USEC_PER_MINUTE }, { "minute", USEC_PER_MINUTE },
                { "min", USEC_PER_MINUTE },    { "msec", USEC_PER_MSEC },   { "ms", USEC_PER_MSEC },
                { "m", USEC_PER_MINUTE },      { "hours", USEC_PER_HOUR },  { "hour", USEC_PER_HOUR },
                { "hr", USEC_PER_HOUR },       { "h", USEC_PER_HOUR },      { "days", USEC_PER_DAY },
                { "day", USEC_PER_DAY },       { "d", USEC_PER_DAY },       { "usec", 1 },
                { "us", 1 },
        };
        usec_t total = 0;
        const char *p = s;
        bool any = false;

        if (!s)
                return -EINVAL;
        while (isspace((unsigned char) *p))
                p++;
        if (streq(p, "infinity")) {
                *ret = USEC_INFINITY;
                return 0;
        }

        for (;;) {
                unsigned long long v;
                usec_t unit = default_unit, frac = 0, frac_div = 1;
                char *end;
                size_t i;

                while (isspace((unsigned char) *p))
                        p++;
                if (*p == 0)
                        break;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno == ERANGE)
                        return -ERANGE;
                p = end;
                if (*p == '.') {
                        p++;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        while (isdigit((unsigned char) *p)) {
                                if (frac_div < 1000000000ULL) {
                                        frac = frac * 10 + (usec_t) (*p - '0');
                                        frac_div *= 10;
                                }
                                p++;
                        }
                }
                while (isspace((unsigned char) *p))
                        p++;
                for (i = 0; i < ELEMENTSOF(table); i++) {
                        size_t n = strlen(table[i].suffix);
                        if (strncmp(p, table[i].suffix, n) == 0 && !isalpha((unsigned char) p[n])) {
                                unit = table[i].usec;
                                p += n;
                                break;
                        }
                }
                if (i == ELEMENTSOF(table) && isalpha((unsigned char) *p))
                        return -EINVAL;
                if (v > (USEC_INFINITY - 1) / unit)
                        return -ERANGE;
                /* unit * frac / frac_div, without overflowing: frac can have 9 digits and unit be a day. */
                usec_t whole = (usec_t) v * unit,
                       part = unit / frac_div * frac + unit % frac_div * frac / frac_div;
                if (whole >= USEC_INFINITY - part)
                        return -ERANGE;
                total = usec_add(total, whole + part);
                if (total == USEC_INFINITY)
                        return -ERANGE;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

static const char *const signal_names[] = {
        [SIGHUP] = "HUP",   [SIGINT] = "INT",   [SIGQUIT] = "QUIT", [SIGILL] = "ILL",   [SIGTRAP] = "TRAP",
        [SIGABRT] = "ABRT", [SIGBUS] = "BUS",   [SIGFPE] = "FPE",   [SIGKILL] = "KILL", [SIGUSR1] = "USR1",
        [SIGSEGV] = "SEGV", [SIGUSR2] = "USR2", [SIGPIPE] = "PIPE", [SIGALRM] = "ALRM", [SIGTERM] = "TERM",
        [SIGSTKFLT] = "STKFLT", [SIGCHLD] = "CHLD", [SIGCONT] = "CONT", [SIGSTOP] = "STOP", [SIGTSTP] = "TSTP",
        [SIGTTIN] = "TTIN", [SIGTTOU] = "TTOU", [SIGURG] = "URG",   [SIGXCPU] = "XCPU", [SIGXFSZ] = "XFSZ",
        [SIGVTALRM] = "VTALRM", [SIGPROF] = "PROF", [SIGWINCH] = "WINCH", [SIGIO] = "IO", [SIGPWR] = "PWR",
        [SIGSYS] = "SYS",
};

int parse_signal(const char *s) {
        int n;

        if (isempty(s))
                return -EINVAL;
        if (parse_int(s, &n) >= 0)
                return n > 0 && n < _NSIG ? n : -ERANGE;
        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 1; i < ELEMENTSOF(signal_names); i++)
                if (signal_names[i] && streq(s, signal_names[i]))
                        return (int) i;
        if (strncmp(s, "RTMIN+", 6) == 0 && parse_int(s + 6, &n) >= 0 && n >= 0 && n <= SIGRTMAX - SIGRTMIN)
                return SIGRTMIN + n;
        return -EINVAL;
}

const char *signal_name(int sig) {
        static __thread char buf[16];

        if (sig > 0 && (size_t) sig < ELEMENTSOF(signal_names) && signal_names[sig]) {
                snprintf(buf, sizeof(buf), "SIG%s", signal_names[sig]);
                return buf;
        }
        snprintf(buf, sizeof(buf), "%d", sig);
        return buf;
}
