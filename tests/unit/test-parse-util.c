/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Checked number, time span, boolean and signal parsing (common/parse-util.c). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>

#include "parse-util.h"

static void check_timespan(const char *s, usec_t default_unit, usec_t want) {
        usec_t t = 4242;
        int r;

        r = parse_timespan(s, default_unit, &t);
        if (r < 0 || t != want)
                print_error("parse_timespan(\"%s\"): r=%d t=%llu, expected %llu\n", s, r, (unsigned long long) t,
                            (unsigned long long) want);
        assert_int_equal(r, 0);
        assert_true(t == want);
}

static void check_timespan_error(const char *s, int want_r) {
        usec_t t = 4242;
        int r;

        r = parse_timespan(s, USEC_PER_SEC, &t);
        if (r != want_r)
                print_error("parse_timespan(\"%s\"): r=%d t=%llu, expected error %d\n", s, r,
                            (unsigned long long) t, want_r);
        assert_int_equal(r, want_r);
        /* Nothing is stored on failure. */
        assert_true(t == 4242);
}

static void test_timespan_units(void **state) {
        check_timespan("30", USEC_PER_SEC, 30 * USEC_PER_SEC);
        check_timespan("30", USEC_PER_MSEC, 30 * USEC_PER_MSEC);
        check_timespan("0", USEC_PER_SEC, 0);
        check_timespan("0s", USEC_PER_SEC, 0);
        check_timespan("30s", USEC_PER_SEC, 30 * USEC_PER_SEC);
        check_timespan("30sec", USEC_PER_SEC, 30 * USEC_PER_SEC);
        check_timespan("1second", USEC_PER_SEC, USEC_PER_SEC);
        check_timespan("2seconds", USEC_PER_SEC, 2 * USEC_PER_SEC);
        check_timespan("500ms", USEC_PER_SEC, 500 * USEC_PER_MSEC);
        check_timespan("7msec", USEC_PER_SEC, 7 * USEC_PER_MSEC);
        check_timespan("3us", USEC_PER_SEC, 3);
        check_timespan("5usec", USEC_PER_SEC, 5);
        check_timespan("2min", USEC_PER_SEC, 2 * USEC_PER_MINUTE);
        check_timespan("2m", USEC_PER_SEC, 2 * USEC_PER_MINUTE);
        check_timespan("1minute", USEC_PER_SEC, USEC_PER_MINUTE);
        check_timespan("3minutes", USEC_PER_SEC, 3 * USEC_PER_MINUTE);
        check_timespan("2h", USEC_PER_SEC, 2 * USEC_PER_HOUR);
        check_timespan("2hr", USEC_PER_SEC, 2 * USEC_PER_HOUR);
        check_timespan("1hour", USEC_PER_SEC, USEC_PER_HOUR);
        check_timespan("3hours", USEC_PER_SEC, 3 * USEC_PER_HOUR);
        check_timespan("1d", USEC_PER_SEC, USEC_PER_DAY);
        check_timespan("1day", USEC_PER_SEC, USEC_PER_DAY);
        check_timespan("2days", USEC_PER_SEC, 2 * USEC_PER_DAY);
        /* A space between number and unit, and around the whole. */
        check_timespan("5 s", USEC_PER_SEC, 5 * USEC_PER_SEC);
        check_timespan("  5s  ", USEC_PER_SEC, 5 * USEC_PER_SEC);
}

static void test_timespan_combinations(void **state) {
        check_timespan("1min 30s", USEC_PER_SEC, 90 * USEC_PER_SEC);
        check_timespan("1min30s", USEC_PER_SEC, 90 * USEC_PER_SEC);
        check_timespan("1h 2min 3s 4ms 5us", USEC_PER_SEC,
                       USEC_PER_HOUR + 2 * USEC_PER_MINUTE + 3 * USEC_PER_SEC + 4 * USEC_PER_MSEC + 5);
        check_timespan("1s 1s", USEC_PER_SEC, 2 * USEC_PER_SEC);
        /* A bare number after a unit is in the default unit. */
        check_timespan("1min 5", USEC_PER_SEC, 65 * USEC_PER_SEC);
}

static void test_timespan_fractions(void **state) {
        check_timespan("1.5s", USEC_PER_SEC, 1500 * USEC_PER_MSEC);
        check_timespan("0.5", USEC_PER_SEC, 500 * USEC_PER_MSEC);
        check_timespan("1.5min", USEC_PER_SEC, 90 * USEC_PER_SEC);
        check_timespan("0.25ms", USEC_PER_SEC, 250);
        check_timespan("1.000001s", USEC_PER_SEC, 1000001);
        check_timespan("0.5d", USEC_PER_SEC, 12 * USEC_PER_HOUR);
        /* Digits past the ninth are ignored; the rest rounds down. */
        check_timespan("1.9999999999s", USEC_PER_SEC, 1999999);
        /* Nine fractional digits of a day: unit * fraction does not fit 64 bits on its own. */
        check_timespan("1.999999999d", USEC_PER_SEC, 172799999913ULL);
        check_timespan("0.123456789d", USEC_PER_SEC, 10666666569ULL);
}

static void test_timespan_infinity(void **state) {
        check_timespan("infinity", USEC_PER_SEC, USEC_INFINITY);
        check_timespan("  infinity", USEC_PER_SEC, USEC_INFINITY);
        check_timespan_error("infinityx", -EINVAL);
        check_timespan_error("5s infinity", -EINVAL);
}

static void test_timespan_garbage(void **state) {
        static const char *const bad[] = {
                "", " ", "abc", "s", "5x", "5 sx", "5ss", "-5s", "+5s", "1.s", ".5s", "5s-",
                "1,5s", "0x10", "5 5q", "1min -30s", "5y",
        };
        usec_t t;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_timespan_error(bad[i], -EINVAL);
        assert_int_equal(parse_timespan(NULL, USEC_PER_SEC, &t), -EINVAL);
}

static void test_timespan_overflow(void **state) {
        /* Not a number strtoull can hold. */
        check_timespan_error("18446744073709551616us", -ERANGE);
        /* USEC_INFINITY itself is reserved for "infinity". */
        check_timespan_error("18446744073709551615us", -ERANGE);
        check_timespan_error("18446744073709552s", -ERANGE);
        check_timespan_error("213503983d", -ERANGE);
        /* The fraction pushes it over: must not wrap around to a small value. */
        check_timespan_error("18446744073709.9s", -ERANGE);
        check_timespan_error("18446744073709551.9ms", -ERANGE);
        /* The sum overflows. */
        check_timespan_error("18446744073709s 18446744073709s", -ERANGE);
        check_timespan_error("18446744073709551614us 1us", -ERANGE);
        /* Right below the limit is fine. */
        check_timespan("213503982d", USEC_PER_SEC, 213503982ULL * USEC_PER_DAY);
        check_timespan("18446744073709551614us", USEC_PER_SEC, USEC_INFINITY - 1);
}

static void test_parse_uint(void **state) {
        unsigned u = 7;
        uint64_t v = 7;

        assert_int_equal(parse_uint("0", &u), 0);
        assert_int_equal(u, 0);
        assert_int_equal(parse_uint("42", &u), 0);
        assert_int_equal(u, 42);
        assert_int_equal(parse_uint("007", &u), 0);
        assert_int_equal(u, 7);
        assert_int_equal(parse_uint("4294967295", &u), 0);
        assert_true(u == UINT_MAX);

        u = 7;
        assert_int_equal(parse_uint("4294967296", &u), -ERANGE);
        assert_int_equal(parse_uint("18446744073709551616", &u), -ERANGE);
        assert_int_equal(parse_uint("-1", &u), -EINVAL);
        assert_int_equal(parse_uint("+1", &u), -EINVAL);
        assert_int_equal(parse_uint(" 1", &u), -EINVAL);
        assert_int_equal(parse_uint("1 ", &u), -EINVAL);
        assert_int_equal(parse_uint("", &u), -EINVAL);
        assert_int_equal(parse_uint(NULL, &u), -EINVAL);
        assert_int_equal(parse_uint("1a", &u), -EINVAL);
        assert_int_equal(parse_uint("0x10", &u), -EINVAL);
        assert_int_equal(parse_uint("1.5", &u), -EINVAL);
        assert_int_equal(u, 7);

        assert_int_equal(parse_uint64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_uint64("-0", &v), -EINVAL);
}

static void test_parse_int(void **state) {
        int i = 7;

        assert_int_equal(parse_int("-5", &i), 0);
        assert_int_equal(i, -5);
        assert_int_equal(parse_int("2147483647", &i), 0);
        assert_int_equal(i, INT_MAX);
        assert_int_equal(parse_int("-2147483648", &i), 0);
        assert_int_equal(i, INT_MIN);
        assert_int_equal(parse_int("2147483648", &i), -ERANGE);
        assert_int_equal(parse_int("-2147483649", &i), -ERANGE);
        assert_int_equal(parse_int("99999999999999999999", &i), -ERANGE);
        assert_int_equal(parse_int(" 5", &i), -EINVAL);
        assert_int_equal(parse_int("5x", &i), -EINVAL);
        assert_int_equal(parse_int("", &i), -EINVAL);
        assert_int_equal(parse_int("-", &i), -EINVAL);
        assert_int_equal(i, INT_MIN);
}

static void test_parse_signal(void **state) {
        assert_int_equal(parse_signal("SIGTERM"), SIGTERM);
        assert_int_equal(parse_signal("TERM"), SIGTERM);
        assert_int_equal(parse_signal("15"), SIGTERM);
        assert_int_equal(parse_signal("SIGINT"), SIGINT);
        assert_int_equal(parse_signal("INT"), SIGINT);
        assert_int_equal(parse_signal("2"), SIGINT);
        assert_int_equal(parse_signal("SIGQUIT"), SIGQUIT);
        assert_int_equal(parse_signal("SIGKILL"), SIGKILL);
        assert_int_equal(parse_signal("SIGWINCH"), SIGWINCH);
        assert_int_equal(parse_signal("SIGSYS"), SIGSYS);
        assert_int_equal(parse_signal("SIGRTMIN+0"), SIGRTMIN);
        assert_int_equal(parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
        assert_int_equal(parse_signal("RTMIN+1"), SIGRTMIN + 1);

        char s[32];
        snprintf(s, sizeof(s), "SIGRTMIN+%d", SIGRTMAX - SIGRTMIN);
        assert_int_equal(parse_signal(s), SIGRTMAX);
        snprintf(s, sizeof(s), "SIGRTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
        assert_int_equal(parse_signal(s), -EINVAL);
        snprintf(s, sizeof(s), "%d", _NSIG - 1);
        assert_int_equal(parse_signal(s), _NSIG - 1);
        snprintf(s, sizeof(s), "%d", _NSIG);
        assert_true(parse_signal(s) < 0);

        /* Large offsets must be refused, not overflow into something else. */
        assert_int_equal(parse_signal("SIGRTMIN+2147483647"), -EINVAL);
        assert_int_equal(parse_signal("SIGRTMIN+-1"), -EINVAL);
        assert_int_equal(parse_signal("SIGRTMIN+"), -EINVAL);

        assert_true(parse_signal("0") < 0);
        assert_true(parse_signal("-15") < 0);
        assert_int_equal(parse_signal(""), -EINVAL);
        assert_int_equal(parse_signal(NULL), -EINVAL);
        assert_int_equal(parse_signal("sigterm"), -EINVAL);
        assert_int_equal(parse_signal("SIG"), -EINVAL);
        assert_int_equal(parse_signal("SIGFOO"), -EINVAL);
        assert_int_equal(parse_signal("SIGSIGTERM"), -EINVAL);
        assert_int_equal(parse_signal("SIGTERM "), -EINVAL);
        assert_int_equal(parse_signal("15x"), -EINVAL);
}

static void test_signal_name(void **state) {
        assert_string_equal(signal_name(SIGTERM), "SIGTERM");
        assert_string_equal(signal_name(SIGINT), "SIGINT");
        assert_string_equal(signal_name(SIGKILL), "SIGKILL");
        assert_string_equal(signal_name(SIGHUP), "SIGHUP");
        assert_string_equal(signal_name(0), "0");

        char s[16];
        snprintf(s, sizeof(s), "%d", SIGRTMIN + 1);
        assert_string_equal(signal_name(SIGRTMIN + 1), s);

        /* Every signal's name parses back to it. */
        for (int sig = 1; sig < _NSIG; sig++) {
                const char *n = signal_name(sig);
                int r = parse_signal(n);
                if (r != sig)
                        print_error("signal %d: name \"%s\" parses as %d\n", sig, n, r);
                assert_int_equal(r, sig);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_timespan_units),
                cmocka_unit_test(test_timespan_combinations),
                cmocka_unit_test(test_timespan_fractions),
                cmocka_unit_test(test_timespan_infinity),
                cmocka_unit_test(test_timespan_garbage),
                cmocka_unit_test(test_timespan_overflow),
                cmocka_unit_test(test_parse_uint),
                cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_parse_signal),
                cmocka_unit_test(test_signal_name),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
