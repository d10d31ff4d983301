/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ExecStart= and Environment= word splitting (systemd's quoting, escapes and specifiers), and the
 * spawn-time expansion of $NAME / ${NAME} / $$. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config-exec.h"
#include "strv.h"

#define WORDS(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define NO_WORDS ((const char *const[]) { NULL })

static void assert_strv_equal(char *const *got, const char *const *want, const char *what) {
        size_t n_got = strv_length(got), n_want = 0;

        while (want[n_want])
                n_want++;
        if (n_got != n_want) {
                print_error("%s: %zu words, expected %zu:\n", what, n_got, n_want);
                for (size_t i = 0; i < n_got; i++)
                        print_error("  [%zu] \"%s\"\n", i, got[i]);
                fail();
        }
        for (size_t i = 0; i < n_want; i++)
                if (!streq(got[i], want[i])) {
                        print_error("%s: word %zu is \"%s\", expected \"%s\"\n", what, i, got[i], want[i]);
                        fail();
                }
}

static void check_exec(const char *line, const char *instance, const char *const *want) {
        char **words = NULL, *error = NULL;
        int r;

        r = exec_line_split(line, instance, &words, &error);
        if (r < 0)
                print_error("exec_line_split(\"%s\"): %d %s\n", line, r, error ?: "(no message)");
        assert_int_equal(r, 0);
        assert_null(error);
        assert_non_null(words);
        assert_strv_equal(words, want, line);
        strv_free(words);
}

static void check_words(const char *line, const char *instance, const char *const *want) {
        char **words = NULL, *error = NULL;
        int r;

        r = words_split(line, instance, &words, &error);
        if (r < 0)
                print_error("words_split(\"%s\"): %d %s\n", line, r, error ?: "(no message)");
        assert_int_equal(r, 0);
        assert_null(error);
        assert_strv_equal(words, want, line);
        strv_free(words);
}

/* The line is refused with -EINVAL and a message that contains `needle`. */
static void check_exec_error(const char *line, const char *instance, const char *needle) {
        char **words = NULL, *error = NULL;
        int r;

        r = exec_line_split(line, instance, &words, &error);
        if (r >= 0)
                print_error("exec_line_split(\"%s\") accepted it (%zu words)\n", line, strv_length(words));
        assert_int_equal(r, -EINVAL);
        assert_null(words);
        assert_non_null(error);
        if (!strstr(error, needle)) {
                print_error("exec_line_split(\"%s\"): \"%s\" does not mention \"%s\"\n", line, error, needle);
                fail();
        }
        free(error);
}

static void check_words_error(const char *line, const char *needle) {
        char **words = NULL, *error = NULL;
        int r;

        r = words_split(line, "web", &words, &error);
        assert_int_equal(r, -EINVAL);
        assert_null(words);
        assert_non_null(error);
        if (!strstr(error, needle)) {
                print_error("words_split(\"%s\"): \"%s\" does not mention \"%s\"\n", line, error, needle);
                fail();
        }
        free(error);
}

static void check_expand(const char *const *words, const char *const *env, const char *const *want) {
        char **argv = NULL;

        assert_int_equal(exec_argv_expand((char *const *) words, (char *const *) env, &argv), 0);
        assert_non_null(argv);
        assert_strv_equal(argv, want, words[0] ?: "(no words)");
        strv_free(argv);
}

/* ---- splitting ---- */

static void test_plain_words(void **state) {
        check_exec("/usr/sbin/lighttpd -D -f /etc/lighttpd/web.conf", "web",
                   WORDS("/usr/sbin/lighttpd", "-D", "-f", "/etc/lighttpd/web.conf"));
        check_exec("worker", "web", WORDS("worker"));
}

static void test_whitespace(void **state) {
        check_exec("  /bin/echo   a \t\tb\t  c  ", "web", WORDS("/bin/echo", "a", "b", "c"));
        check_exec("/bin/echo\ta", "web", WORDS("/bin/echo", "a"));
}

static void test_double_quotes(void **state) {
        check_exec("/bin/echo \"hello world\" \"  two  spaces  \"", "web",
                   WORDS("/bin/echo", "hello world", "  two  spaces  "));
        /* The other quote character is literal inside quotes. */
        check_exec("/bin/echo \"it's\"", "web", WORDS("/bin/echo", "it's"));
        /* Escapes are decoded inside double quotes. */
        check_exec("/bin/echo \"a\\tb\\\"c\"", "web", WORDS("/bin/echo", "a\tb\"c"));
}

static void test_single_quotes(void **state) {
        check_exec("/bin/echo 'hello world' 'say \"hi\"'", "web", WORDS("/bin/echo", "hello world", "say \"hi\""));
}

static void test_quotes_inside_word(void **state) {
        check_exec("/bin/echo a\"b c\"d", "web", WORDS("/bin/echo", "ab cd"));
        check_exec("/bin/echo x'y z'w", "web", WORDS("/bin/echo", "xy zw"));
        check_exec("/bin/echo --opt=\"a b\" \"x\"'y'z", "web", WORDS("/bin/echo", "--opt=a b", "xyz"));
}

static void test_empty_quoted_word(void **state) {
        check_exec("/bin/echo \"\" '' x", "web", WORDS("/bin/echo", "", "", "x"));
        check_exec("/bin/echo \"\"", "web", WORDS("/bin/echo", ""));
}

static void test_escapes(void **state) {
        check_exec("/bin/echo \\n \\t \\\\ \\\" \\' a\\sb \\x41 \\101 \\u00e9", "web",
                   WORDS("/bin/echo", "\n", "\t", "\\", "\"", "'", "a b", "A", "A", "\xc3\xa9"));
        check_exec("/bin/echo \\a\\b\\f\\r\\v", "web", WORDS("/bin/echo", "\a\b\f\r\v"));
        /* An escaped space does not split. */
        check_exec("/bin/echo a\\ b", "web", WORDS("/bin/echo", "a b"));
        check_exec("/bin/echo \\x7e\\x7E \\177", "web", WORDS("/bin/echo", "~~", "\177"));
        check_exec("/bin/echo \\U0001F600 \\u20ac", "web", WORDS("/bin/echo", "\xf0\x9f\x98\x80", "\xe2\x82\xac"));
        /* A backslash escapes a quote character, which then does not start quoting. */
        check_exec("/bin/echo \\\"a b\\\"", "web", WORDS("/bin/echo", "\"a", "b\""));
}

static void test_invalid_escapes(void **state) {
        check_exec_error("/bin/echo \\q", "web", "\\q");
        check_exec_error("/bin/echo \\xZZ", "web", "\\x");
        check_exec_error("/bin/echo \\x4", "web", "\\x");
        check_exec_error("/bin/echo \\u12", "web", "\\u");
        check_exec_error("/bin/echo \\ud800", "web", "\\u");
        check_exec_error("/bin/echo \\U00110000", "web", "\\U");
        check_exec_error("/bin/echo \\400", "web", "\\4");
        check_exec_error("/bin/echo \\18", "web", "\\1");
        check_exec_error("/bin/echo \\q", "web", "invalid escape sequence");
        /* No way to smuggle in a NUL byte. */
        check_exec_error("/bin/echo \\x00", "web", "NUL");
        check_exec_error("/bin/echo \\000", "web", "NUL");
        check_exec_error("/bin/echo \\u0000", "web", "NUL");
}

static void test_trailing_backslash(void **state) {
        check_exec_error("/bin/echo foo\\", "web", "trailing backslash");
        check_exec_error("/bin/echo \"foo\\", "web", "trailing backslash");
}

static void test_unterminated_quotes(void **state) {
        check_exec_error("/bin/echo \"abc", "web", "unterminated double quote");
        check_exec_error("/bin/echo 'abc", "web", "unterminated single quote");
        check_exec_error("/bin/echo a\"b c", "web", "unterminated double quote");
        check_exec_error("/bin/echo \"it's", "web", "unterminated double quote");
}

static void test_specifiers(void **state) {
        check_exec("/bin/worker %i --name=%i", "web", WORDS("/bin/worker", "web", "--name=web"));
        check_exec("/bin/worker %I", "web", WORDS("/bin/worker", "web"));
        check_exec("/bin/worker 100%% %%i", "web", WORDS("/bin/worker", "100%", "%i"));
        check_exec("/bin/worker \"%i and %%\" '%i'", "web", WORDS("/bin/worker", "web and %", "web"));
        /* A backslash keeps a '%' literal. */
        check_exec("/bin/worker \\%i", "web", WORDS("/bin/worker", "%i"));
        /* The service name is inserted literally: spaces, quotes and backslashes in it neither split
         * the word nor start quoting or escapes. */
        check_exec("/bin/worker --name=%i", "my web", WORDS("/bin/worker", "--name=my web"));
        check_exec("/bin/worker %i", "bob's \"x\\n", WORDS("/bin/worker", "bob's \"x\\n"));
}

static void test_unknown_specifier(void **state) {
        check_exec_error("/bin/worker %n", "web", "\"%n\"");
        check_exec_error("/bin/worker 100%", "web", "unknown specifier");
        check_exec_error("/bin/worker %%%x", "web", "\"%x\"");
}

static void test_command_prefixes(void **state) {
        static const char prefixes[] = "-@:+!";

        for (const char *p = prefixes; *p; p++) {
                char line[64], needle[8];

                snprintf(line, sizeof(line), "%c/bin/true", *p);
                snprintf(needle, sizeof(needle), "\"%c\"", *p);
                check_exec_error(line, "web", needle);
                check_exec_error(line, "web", "prefix");
        }
        /* Only the first word is a command: later words may start with those characters. */
        check_exec("/bin/echo -n @x :y +z !w", "web", WORDS("/bin/echo", "-n", "@x", ":y", "+z", "!w"));
}

static void test_empty_command_line(void **state) {
        check_exec_error("", "web", "empty command line");
        check_exec_error("   \t ", "web", "empty command line");
}

static void test_words_split(void **state) {
        /* Environment=: no words is fine, quoting and escapes as in ExecStart=. */
        check_words("", "web", NO_WORDS);
        check_words("  ", "web", NO_WORDS);
        check_words("A=1 \"B=two words\" C='x y' D=%i", "web", WORDS("A=1", "B=two words", "C=x y", "D=web"));
        check_words("-A=1", "web", WORDS("-A=1"));
        /* Nothing expands '$' in an environment value, so an escaped '$' is just '$'. */
        check_words("PRICE=\\$5 RAW=$$", "web", WORDS("PRICE=$5", "RAW=$$"));
        check_words_error("A=\"x", "unterminated double quote");
        check_words_error("A=\\q", "\\q");
        check_words_error("A=%z", "%z");
}

/* ---- expansion at spawn time ---- */

static const char *const env[] = {
        "ARGS=-a  -b\t-c",
        "NAME=web",
        "EMPTY=",
        "SPACED=  x  ",
        NULL,
};

static void test_expand_whole_word_splits(void **state) {
        check_expand(WORDS("/bin/worker", "$ARGS", "end"), env, WORDS("/bin/worker", "-a", "-b", "-c", "end"));
        check_expand(WORDS("/bin/worker", "$SPACED"), env, WORDS("/bin/worker", "x"));
        check_expand(WORDS("/bin/worker", "$NAME"), env, WORDS("/bin/worker", "web"));
}

static void test_expand_unset_word_disappears(void **state) {
        check_expand(WORDS("/bin/worker", "$UNSET", "x"), env, WORDS("/bin/worker", "x"));
        check_expand(WORDS("/bin/worker", "$EMPTY", "x"), env, WORDS("/bin/worker", "x"));
        check_expand(WORDS("/bin/worker", "$UNSET"), NO_WORDS, WORDS("/bin/worker"));
        /* A prefix of a set name is not that name. */
        check_expand(WORDS("/bin/worker", "$NAM"), env, WORDS("/bin/worker"));
}

static void test_expand_braces_in_word(void **state) {
        check_expand(WORDS("/bin/worker", "--name=${NAME}", "${NAME}${NAME}"), env,
                     WORDS("/bin/worker", "--name=web", "webweb"));
        /* In place: the value is not split. */
        check_expand(WORDS("/bin/worker", "x${ARGS}y"), env, WORDS("/bin/worker", "x-a  -b\t-cy"));
        check_expand(WORDS("/bin/worker", "${ARGS}"), env, WORDS("/bin/worker", "-a  -b\t-c"));
}

static void test_expand_braces_unset(void **state) {
        check_expand(WORDS("/bin/worker", "pre-${UNSET}-post"), env, WORDS("/bin/worker", "pre--post"));
        /* As a word of its own it stays an (empty) argument. */
        check_expand(WORDS("/bin/worker", "${UNSET}", "x"), env, WORDS("/bin/worker", "", "x"));
}

static void test_expand_dollar_dollar(void **state) {
        check_expand(WORDS("/bin/worker", "$$", "cost=$$5", "$$NAME", "$${NAME}"), env,
                     WORDS("/bin/worker", "$", "cost=$5", "$NAME", "${NAME}"));
}

static void test_expand_escaped_dollar(void **state) {
        char **words = NULL, **argv = NULL, *error = NULL;

        /* "\$" in the command line: the splitter keeps it as "$$", the expansion makes it a '$'. */
        assert_int_equal(exec_line_split("/bin/echo \\$NAME pre\\${NAME} \\$", "web", &words, &error), 0);
        assert_null(error);
        assert_strv_equal(words, WORDS("/bin/echo", "$$NAME", "pre$${NAME}", "$$"), "split");
        assert_int_equal(exec_argv_expand(words, (char *const *) env, &argv), 0);
        assert_strv_equal(argv, WORDS("/bin/echo", "$NAME", "pre${NAME}", "$"), "expanded");
        strv_free(argv);
        strv_free(words);
}

static void test_expand_service_name_with_dollar(void **state) {
        char **words = NULL, **argv = NULL, *error = NULL;

        /* %i is literal also after the $ expansion. */
        assert_int_equal(exec_line_split("/bin/echo %i", "$NAME", &words, &error), 0);
        assert_int_equal(exec_argv_expand(words, (char *const *) env, &argv), 0);
        assert_strv_equal(argv, WORDS("/bin/echo", "$NAME"), "expanded");
        strv_free(argv);
        strv_free(words);
}

static void test_expand_other_words_untouched(void **state) {
        check_expand(WORDS("/bin/worker", "a$", "$", "${", "${NAME", "${1X}", "100%"), env,
                     WORDS("/bin/worker", "a$", "$", "${", "${NAME", "${1X}", "100%"));
        check_expand(NO_WORDS, env, NO_WORDS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_words),
                cmocka_unit_test(test_whitespace),
                cmocka_unit_test(test_double_quotes),
                cmocka_unit_test(test_single_quotes),
                cmocka_unit_test(test_quotes_inside_word),
                cmocka_unit_test(test_empty_quoted_word),
                cmocka_unit_test(test_escapes),
                cmocka_unit_test(test_invalid_escapes),
                cmocka_unit_test(test_trailing_backslash),
                cmocka_unit_test(test_unterminated_quotes),
                cmocka_unit_test(test_specifiers),
                cmocka_unit_test(test_unknown_specifier),
                cmocka_unit_test(test_command_prefixes),
                cmocka_unit_test(test_empty_command_line),
                cmocka_unit_test(test_words_split),
                cmocka_unit_test(test_expand_whole_word_splits),
                cmocka_unit_test(test_expand_unset_word_disappears),
                cmocka_unit_test(test_expand_braces_in_word),
                cmocka_unit_test(test_expand_braces_unset),
                cmocka_unit_test(test_expand_dollar_dollar),
                cmocka_unit_test(test_expand_escaped_dollar),
                cmocka_unit_test(test_expand_service_name_with_dollar),
                cmocka_unit_test(test_expand_other_words_untouched),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
