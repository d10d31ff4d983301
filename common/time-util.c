/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "time-util.h"

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

usec_t usec_add(usec_t a, usec_t b) {
        if (a == USEC_INFINITY || b == USEC_INFINITY || a > USEC_INFINITY - b)
                return USEC_INFINITY;
        return a + b;
}

char *format_timespan(char *buf, size_t l, usec_t t, usec_t accuracy) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "d", USEC_PER_DAY },     { "h", USEC_PER_HOUR }, { "min", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },     { "ms", USEC_PER_MSEC }, { "us", 1 },
        };
        char *p = buf;
        bool something = false;

        if (l == 0)
                return buf;
        buf[0] = 0;
        if (t == USEC_INFINITY) {
                snprintf(buf, l, "infinity");
                return buf;
        }
        if (accuracy > 1) {
                usec_t rest = t % accuracy;

                /* To the nearest multiple; down where up would overflow (or read as infinity). */
                t -= rest;
                if (rest >= accuracy - accuracy / 2 && t < USEC_INFINITY - accuracy)
                        t += accuracy;
        }
        if (t == 0) {
                snprintf(buf, l, "0");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                usec_t a;
                int n;

                if (t < table[i].usec)
                        continue;
                if (t < accuracy && something)
                        break;
                a = t / table[i].usec;
                t -= a * table[i].usec;
                n = snprintf(p, l, "%s%llu%s", something ? " " : "", (unsigned long long) a, table[i].suffix);
                if (n < 0 || (size_t) n >= l)
                        break;
                p += n;
                l -= (size_t) n;
                something = true;
        }
        return buf;
}
