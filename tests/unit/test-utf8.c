/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Text from workers made fit for D-Bus (common/utf8.c), and STATUS= as notify_parse() hands it on
 * (supervisor/worker-notify.c): valid UTF-8 by sd-bus's rules, no control characters, at most STATUS_TEXT_MAX
 * bytes cut at a character boundary. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "worker-notify.h"
#include "rpsup-limits.h"
#include "utf8.h"

static void test_valid(void **state) {
        static const char *const good[] = {
                "", "plain ASCII", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbd",
                "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
                "\xee\x80\x80",     /* U+E000, just above */
                "\xef\xb7\x8f",     /* U+FDCF, before the noncharacters */
                "\xef\xb7\xb0",     /* U+FDF0, after them */
                "\xf4\x8f\xbf\xbd", /* U+10FFFD */
                "tab\there",        /* control characters are valid UTF-8 */
        };
        static const char *const bad[] = {
                "caf\xe9",          /* Latin-1 */
                "\x80",             /* a lone continuation byte */
                "\xc3",             /* cut short */
                "\xe2\x82",         /* cut short */
                "\xc0\xaf",         /* overlong '/' */
                "\xe0\x80\xaf",     /* overlong '/' */
                "\xf0\x80\x80\xaf", /* overlong '/' */
                "\xed\xa0\x80",     /* U+D800, a surrogate */
                "\xef\xb7\x90",     /* U+FDD0, a noncharacter: sd-bus refuses it */
                "\xef\xbf\xbe",     /* U+FFFE */
                "\xef\xbf\xbf",     /* U+FFFF */
                "\xf0\x9f\xbf\xbf", /* U+1FFFF */
                "\xf4\x90\x80\x80", /* U+110000 */
                "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (!utf8_is_valid(good[i]))
                        print_error("good[%zu] is said to be invalid\n", i);
                assert_true(utf8_is_valid(good[i]));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (utf8_is_valid(bad[i]))
                        print_error("bad[%zu] is said to be valid\n", i);
                assert_false(utf8_is_valid(bad[i]));
        }
        /* A NUL within the given length is not valid text. */
        assert_false(utf8_is_valid_n("a\0b", 3));
        assert_int_equal(utf8_first_invalid("abc\xff", 4), 3);
        assert_int_equal(utf8_first_invalid("abc", 3), 3);
}

static void check_sanitize(const char *in, size_t size, Utf8SanitizeFlags flags, const char *want, unsigned want_what) {
        char buf[1024];
        unsigned what = 0;
        size_t n;

        assert_true(size <= sizeof(buf));
        n = utf8_sanitize(in, strlen(in), buf, size, flags, &what);
        assert_string_equal(buf, want);
        assert_int_equal(n, strlen(want));
        assert_int_equal(what, want_what);
        assert_true(utf8_is_valid(buf));
}

static void test_sanitize(void **state) {
        check_sanitize("hello", 64, 0, "hello", 0);
        check_sanitize("caf\xe9", 64, 0, "caf\xef\xbf\xbd", UTF8_REPLACED_INVALID);
        /* One U+FFFD per byte that does not start a character. */
        check_sanitize("a\xc0\xafz", 64, 0, "a\xef\xbf\xbd\xef\xbf\xbdz", UTF8_REPLACED_INVALID);
        check_sanitize("\xef\xbf\xbe", 64, 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", UTF8_REPLACED_INVALID);
        /* Control characters (C0, DEL, C1) become spaces when asked to; otherwise they stay. */
        check_sanitize("a\tb\x1b[31mc\x7f" "d\xc2\x9b" "e", 64, UTF8_REPLACE_CONTROL, "a b [31mc d e",
                       UTF8_REPLACED_CONTROL);
        check_sanitize("a\tb", 64, 0, "a\tb", 0);
        /* Cut at a character boundary: "é" is two bytes, "€" three. */
        check_sanitize("ab\xc3\xa9", 4, 0, "ab", UTF8_CUT);
        check_sanitize("ab\xc3\xa9", 5, 0, "ab\xc3\xa9", 0);
        check_sanitize("\xe2\x82\xac\xe2\x82\xac", 6, 0, "\xe2\x82\xac", UTF8_CUT);
        check_sanitize("\xe2\x82\xac\xe2\x82\xac", 7, 0, "\xe2\x82\xac\xe2\x82\xac", 0);
        /* A replacement that does not fit is not written in part either. */
        check_sanitize("ab\xff", 5, 0, "ab", UTF8_REPLACED_INVALID | UTF8_CUT);
        check_sanitize("", 1, 0, "", 0);
        check_sanitize("x", 1, 0, "", UTF8_CUT);

        char *s = utf8_sanitize_dup("\xff\xfe", 0);
        assert_non_null(s);
        assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd");
        free(s);
}

/* Every byte string up to 3 bytes long comes out valid, within the size, and unchanged when it was valid. */
static void test_sanitize_exhaustive(void **state) {
        unsigned char in[3];
        char out[8];

        for (unsigned v = 0; v < (1u << 24); v += 7) {
                unsigned what;
                size_t n;

                in[0] = (unsigned char) (v >> 16);
                in[1] = (unsigned char) (v >> 8);
                in[2] = (unsigned char) v;
                n = utf8_sanitize((const char *) in, 3, out, sizeof(out), 0, &what);
                assert_true(n < sizeof(out));
                assert_true(utf8_is_valid(out));
                if (utf8_is_valid_n((const char *) in, 3)) {
                        assert_int_equal(what, 0);
                        assert_memory_equal(out, in, 3);
                } else
                        assert_true(what & UTF8_REPLACED_INVALID);
        }
}

static void parse(const char *text, NotifyMessage *m) {
        char buf[NOTIFY_MESSAGE_MAX + 1];
        size_t n = strlen(text);

        assert_true(n <= NOTIFY_MESSAGE_MAX);
        memcpy(buf, text, n);
        assert_int_equal(notify_parse(buf, n, m), 0);
}

static void test_notify_status(void **state) {
        NotifyMessage m;
        char text[1024], want[STATUS_TEXT_MAX + 1];
        size_t n;

        parse("READY=1\nSTATUS=serving", &m);
        assert_true(m.ready);
        assert_string_equal(m.status, "serving");
        assert_int_equal(m.status_changed, 0);

        parse("READY=1", &m);
        assert_null(m.status);

        /* Regression: STATUS=caf\xe9 made every status reply fail. */
        parse("STATUS=caf\xe9", &m);
        assert_string_equal(m.status, "caf\xef\xbf\xbd");
        assert_true(m.status_changed & UTF8_REPLACED_INVALID);

        parse("STATUS=a\tb\rc\x1b" "d", &m);
        assert_string_equal(m.status, "a b c d");

        /* The last STATUS= counts. */
        parse("STATUS=one\nSTATUS=two\nREADY=1", &m);
        assert_string_equal(m.status, "two");
        assert_true(m.ready);

        /* Regression: 150 x "é" (300 bytes) was cut by bytes, in the middle of a character. */
        n = (size_t) snprintf(text, sizeof(text), "STATUS=");
        for (unsigned i = 0; i < 150; i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "\xc3\xa9");
        parse(text, &m);
        assert_int_equal(strlen(m.status), STATUS_TEXT_MAX);
        assert_true(utf8_is_valid(m.status));
        assert_memory_equal(m.status, text + 7, STATUS_TEXT_MAX);
        assert_true(m.status_changed & UTF8_CUT);

        /* 100 x "€" (300 bytes): 85 characters, 255 bytes, fit. */
        n = (size_t) snprintf(text, sizeof(text), "STATUS=");
        for (unsigned i = 0; i < 100; i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "\xe2\x82\xac");
        parse(text, &m);
        assert_int_equal(strlen(m.status), 255);
        assert_true(utf8_is_valid(m.status));

        /* Invalid bytes grow to three: the bound holds for what is handed on, not for what came in. */
        memset(want, 0, sizeof(want));
        n = (size_t) snprintf(text, sizeof(text), "STATUS=");
        memset(text + n, 0xff, 200);
        text[n + 200] = 0;
        parse(text, &m);
        assert_int_equal(strlen(m.status), STATUS_TEXT_MAX / 3 * 3);
        assert_true(utf8_is_valid(m.status));
        assert_true(m.status_changed & UTF8_REPLACED_INVALID);
        assert_true(m.status_changed & UTF8_CUT);

        /* A NUL byte makes the datagram malformed, as before. */
        {
                char buf[] = "STATUS=a\0b";
                assert_int_equal(notify_parse(buf, sizeof(buf) - 1, &m), -EBADMSG);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_sanitize),
                cmocka_unit_test(test_sanitize_exhaustive),
                cmocka_unit_test(test_notify_status),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
