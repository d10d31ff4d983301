/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ExecStart= and Environment= splitting, and the $VAR expansion at spawn time.
 * Input: LINE \0 INSTANCE \0 NAME=VALUE \0 NAME=VALUE ... (the environment of the expansion).
 * Beyond "no crash, no leak", each accepted line must split again to the same words once they are
 * written back fully quoted: the escapes the splitter decodes and the quoting it honours are consistent. */

#include "config-exec.h"
#include "fuzz.h"
#include "strv.h"

/* The words as one line that must split back to exactly these words: every word double-quoted, with
 * '\\', '"' and '%' escaped and every byte that is not printable ASCII written as \xNN. */
static char *quote_words(char *const *words) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                abort();
        STRV_FOREACH(w, words) {
                fputs(w == words ? "\"" : " \"", f);
                for (const unsigned char *p = (const unsigned char *) *w; *p; p++) {
                        if (*p == '\\' || *p == '"')
                                fprintf(f, "\\%c", *p);
                        else if (*p == '%')
                                fputs("%%", f);
                        else if (*p < ' ' || *p >= 0x7f)
                                fprintf(f, "\\x%02x", *p);
                        else
                                fputc(*p, f);
                }
                fputc('"', f);
        }
        if (fclose(f) != 0)
                abort();
        return buf;
}

static void check_same_words(char *const *a, char *const *b, const char *line, const char *requoted) {
        size_t n = strv_length(a);

        fuzz_check(n == strv_length(b), "\"%s\" gave %zu words, its requoted form \"%s\" %zu", line, n, requoted,
                   strv_length(b));
        for (size_t i = 0; i < n; i++)
                fuzz_check(streq(a[i], b[i]), "word %zu of \"%s\" is \"%s\", of its requoted form \"%s\" \"%s\"", i,
                           line, a[i], requoted, b[i]);
}

typedef int (*SplitFunc)(const char *line, const char *instance, char ***ret_words, char **ret_error);

/* Splits `line`; if accepted, splits the requoted words again and compares. Returns the words. */
static char **split_and_requote(SplitFunc split, const char *line, const char *instance) {
        _cleanup_strv_free_ char **again = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL, *requoted = NULL;
        char **words = NULL;
        int r;

        r = split(line, instance, &words, &error);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENOMEM, "unexpected error %d for \"%s\"", r, line);
                fuzz_check(r != -EINVAL || error, "\"%s\" was refused without a message", line);
                return NULL;
        }
        fuzz_check(!error, "\"%s\" was accepted with a message: %s", line, error);
        fuzz_check(words, "\"%s\" was accepted without words", line);

        requoted = quote_words(words);
        r = split(requoted, "", &again, &error2);
        fuzz_check(r >= 0, "\"%s\" (the words of \"%s\", requoted) is refused: %s", requoted, line,
                   error2 ?: "(no message)");
        check_same_words(words, again, line, requoted);
        return words;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzFields f = fuzz_fields(data, size);
        _cleanup_free_ char *line = NULL, *instance = NULL;
        _cleanup_strv_free_ char **env = NULL, **words = NULL, **env_words = NULL, **argv = NULL;
        bool has_dollar = false;
        char *e;

        if (size > FUZZ_INPUT_MAX)
                return -1;
        line = fuzz_next(&f);
        instance = fuzz_next(&f);
        if (!line)
                return 0;
        while ((e = fuzz_next(&f)))
                if (strv_consume(&env, e) < 0)
                        abort();

        env_words = split_and_requote(words_split, line, instance ?: "web");
        words = split_and_requote(exec_line_split, line, instance ?: "web");
        if (!words)
                return 0;
        fuzz_check(words[0] && (words[0][0] == 0 || !strchr("-@:+!", words[0][0])),
                   "\"%s\": a command prefix was accepted", line);

        if (exec_argv_expand(words, env, &argv) < 0)
                return 0;
        /* Without a '$', nothing expands: the argv is the words. */
        STRV_FOREACH(w, words)
                has_dollar = has_dollar || strchr(*w, '$');
        if (!has_dollar)
                check_same_words(words, argv, line, "(expanded)");
        return 0;
}
