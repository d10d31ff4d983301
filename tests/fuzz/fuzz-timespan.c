/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Time spans (ReadyTimeoutSec=, StopTimeoutSec=, WatchdogSec=, StallSec=, DrainSec=). Input: the text.
 * Every span accepted is formatted (as log messages and rpsupctl show it) and parsed again: exactly the
 * same span when formatted exactly, the span rounded to the accuracy otherwise, never off by more than
 * half of it (except at the very top of the range, where it is rounded down rather than overflow). */

#include "fuzz.h"
#include "parse-util.h"
#include "time-util.h"

static void check_round_trip(const char *s, usec_t t, usec_t accuracy) {
        char buf[FORMAT_TIMESPAN_MAX];
        usec_t back, diff;
        int r;

        format_timespan(buf, sizeof(buf), t, accuracy);
        fuzz_check(strlen(buf) < sizeof(buf) - 1, "\"%s\" (%" PRIu64 "us) formatted to a truncated \"%s\"", s, t, buf);
        /* The unit of a bare number must not matter: only "0" is written without one. */
        r = parse_timespan(buf, USEC_PER_MINUTE, &back);
        fuzz_check(r >= 0, "\"%s\" (%" PRIu64 "us) formatted to \"%s\", which does not parse: %d", s, t, buf, r);
        diff = back > t ? back - t : t - back;
        if (accuracy <= 1)
                fuzz_check(back == t, "\"%s\" (%" PRIu64 "us) formatted to \"%s\", which is %" PRIu64 "us", s, t, buf,
                           back);
        else
                /* Rounded to the nearest multiple, or down at the very top of the range. */
                fuzz_check((diff <= accuracy / 2 || (back < t && t >= USEC_INFINITY - accuracy)) && diff < accuracy &&
                           back % accuracy == 0,
                           "\"%s\" (%" PRIu64 "us) formatted to \"%s\" with accuracy %" PRIu64 "us, which is %"
                           PRIu64 "us", s, t, buf, accuracy, back);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const usec_t units[] = { USEC_PER_SEC, USEC_PER_MSEC, 1 };
        _cleanup_free_ char *s = NULL;
        usec_t t;
        int r;

        if (size > 1024)
                return -1;
        s = fuzz_string(data, size);
        r = parse_timespan(s, units[size % ELEMENTSOF(units)], &t);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ERANGE, "\"%s\": unexpected error %d", s, r);
                return 0;
        }
        if (t == USEC_INFINITY) {
                char buf[FORMAT_TIMESPAN_MAX];
                fuzz_check(streq(format_timespan(buf, sizeof(buf), t, 1), "infinity"), "infinity formatted as \"%s\"",
                           buf);
                return 0;
        }
        check_round_trip(s, t, 1);
        check_round_trip(s, t, USEC_PER_MSEC);
        check_round_trip(s, t, USEC_PER_SEC / 10);
        check_round_trip(s, t, USEC_PER_SEC);
        return 0;
}
