/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What "rpsupctl status" says about reloads and soaks (ctl/reload-lines.c), from GetStatus records as
 * rpsupctl reads them, and its --canary argument. Times are in UTC (TZ is set below). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reload-lines.h"
#include "time-util.h"

/* 2026-11-29 12:00:00 UTC */
#define NOON (UINT64_C(1795953600) * USEC_PER_SEC)

static void check_str(const char *got, const char *want) {
        if (!got || strcmp(got, want) != 0)
                print_error("got      \"%s\"\nexpected \"%s\"\n", got ?: "(null)", want);
        assert_non_null(got);
        assert_string_equal(got, want);
}

static json_object *status_new(void) {
        return json_object_new_object();
}

static void set_int(json_object *o, const char *key, int64_t v) {
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void set_str(json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, json_object_new_string(v));
}

static void test_parse_canary(void **state) {
        static const struct {
                const char *s;
                int r;
                unsigned v;
        } cases[] = {
                { "10", 0, 10 },    { "1", 0, 1 },       { "100", 0, 100 },   { "25%", 0, 25 },
                { "0", -EINVAL, 0 }, { "101", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "%", -EINVAL, 0 },
                { "-5", -EINVAL, 0 }, { "10.5", -EINVAL, 0 }, { "ten", -EINVAL, 0 }, { "10%%", -EINVAL, 0 },
                { "99999999999999999999", -EINVAL, 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned v = 4242;
                int r = parse_canary(cases[i].s, &v);
                if (r != cases[i].r)
                        print_error("parse_canary(\"%s\") = %d, expected %d\n", cases[i].s, r, cases[i].r);
                assert_int_equal(r, cases[i].r);
                assert_int_equal(v, r == 0 ? cases[i].v : 4242);
        }
        assert_int_equal(parse_canary(NULL, &(unsigned) { 0 }), -EINVAL);
}

static void test_format_count(void **state) {
        char buf[32];

        check_str(format_count(buf, sizeof(buf), 0), "0");
        check_str(format_count(buf, sizeof(buf), 999), "999");
        check_str(format_count(buf, sizeof(buf), 1000), "1,000");
        check_str(format_count(buf, sizeof(buf), 1234), "1,234");
        check_str(format_count(buf, sizeof(buf), 1234567), "1,234,567");
        check_str(format_count(buf, sizeof(buf), UINT64_MAX), "18,446,744,073,709,551,615");
        /* Cut short rather than overrun. */
        check_str(format_count(buf, 4, 1234567), "1,2");
}

static void test_soak_canary(void **state) {
        json_object *s = status_new();
        char buf[512];

        /* No soak: no line. */
        assert_null(format_soak_line(buf, sizeof(buf), s, NOON, true));

        set_int(s, "soak_generation", 5);
        set_int(s, "soak_warm_generation", 4);
        set_int(s, "soak_deadline_usec", (int64_t) (NOON + 3200 * USEC_PER_MSEC));
        set_int(s, "canary_percent", 10);
        set_int(s, "soak_steered", 121);
        set_int(s, "soak_warm_steered", 1113);
        check_str(format_soak_line(buf, sizeof(buf), s, NOON, true),
                  "Soak: generation 5 on probation until 12:00:03 (3.2 s left), canary 10 %: 9.8 % of 1,234 "
                  "connections so far; generation 4 warm");

        set_int(s, "soak_steered", 0);
        set_int(s, "soak_warm_steered", 0);
        check_str(format_soak_line(buf, sizeof(buf), s, NOON, true),
                  "Soak: generation 5 on probation until 12:00:03 (3.2 s left), canary 10 %: no connections so "
                  "far; generation 4 warm");

        /* Handoff counts nothing per generation. */
        check_str(format_soak_line(buf, sizeof(buf), s, NOON, false),
                  "Soak: generation 5 on probation until 12:00:03 (3.2 s left), canary 10 %; generation 4 warm");

        /* The deadline passed (the answer is on its way): nothing left, not a negative time. */
        check_str(format_soak_line(buf, sizeof(buf), s, NOON + 10 * USEC_PER_SEC, false),
                  "Soak: generation 5 on probation until 12:00:03 (0.0 s left), canary 10 %; generation 4 warm");
        json_object_put(s);
}

static void test_soak_all(void **state) {
        json_object *s = status_new();
        char buf[512];

        set_int(s, "soak_generation", 7);
        set_int(s, "soak_warm_generation", 6);
        set_int(s, "soak_deadline_usec", (int64_t) (NOON + 150 * USEC_PER_SEC));
        set_int(s, "soak_steered", 1);
        check_str(format_soak_line(buf, sizeof(buf), s, NOON, true),
                  "Soak: generation 7 on probation until 12:02:30 (2min 30s left), all new connections: 1 "
                  "connection so far; generation 6 warm");
        /* Another day: the date too. */
        check_str(format_soak_line(buf, sizeof(buf), s, NOON - 24 * USEC_PER_HOUR, true),
                  "Soak: generation 7 on probation until 2026-11-29 12:02:30 (1d 2min 30s left), all new "
                  "connections: 1 connection so far; generation 6 warm");
        /* A short buffer is cut, not overrun. */
        assert_non_null(format_soak_line(buf, 16, s, NOON, true));
        assert_int_equal(strlen(buf), 15);
        json_object_put(s);
}

static void test_last_reload(void **state) {
        json_object *s = status_new();
        char buf[512];

        assert_null(format_last_reload_line(buf, sizeof(buf), s, NOON));
        set_str(s, "last_reload_outcome", "none");
        assert_null(format_last_reload_line(buf, sizeof(buf), s, NOON));

        set_str(s, "last_reload_outcome", "rolled_back");
        set_int(s, "last_reload_generation", 5);
        set_int(s, "last_reload_at_usec", (int64_t) (NOON + 4 * USEC_PER_SEC));
        set_str(s, "last_reload_by", "rpsupd");
        set_str(s, "last_reload_reason", "worker 1 (pid 123) exited with status 3");
        check_str(format_last_reload_line(buf, sizeof(buf), s, NOON),
                  "Last reload: generation 5 rolled back at 12:00:04, by rpsupd: worker 1 (pid 123) exited with "
                  "status 3");

        set_str(s, "last_reload_outcome", "promoted");
        set_str(s, "last_reload_by", "soak");
        set_str(s, "last_reload_reason", "");
        check_str(format_last_reload_line(buf, sizeof(buf), s, NOON),
                  "Last reload: generation 5 promoted at 12:00:04, by soak");
        json_object_put(s);
}

static void test_reload_counts(void **state) {
        json_object *s = status_new();
        char buf[256];

        check_str(format_reload_counts(buf, sizeof(buf), s), "0 promoted, 0 failed, 0 rolled back, 0 refused");
        set_int(s, "reloads_ok", 3);
        set_int(s, "reloads_failed", 1);
        set_int(s, "reloads_rolled_back", 1);
        set_int(s, "reloads_rolled_back_by_operator", 1);
        set_int(s, "reloads_refused", 4);
        check_str(format_reload_counts(buf, sizeof(buf), s),
                  "3 promoted, 1 failed, 2 rolled back (1 by an operator), 4 refused");
        json_object_put(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_canary),
                cmocka_unit_test(test_format_count),
                cmocka_unit_test(test_soak_canary),
                cmocka_unit_test(test_soak_all),
                cmocka_unit_test(test_last_reload),
                cmocka_unit_test(test_reload_counts),
        };

        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
