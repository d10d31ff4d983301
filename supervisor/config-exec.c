/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config-exec.h"
#include "string-util.h"
#include "strv.h"

typedef struct Buf {
        char *s;
        size_t n, allocated;
} Buf;

static int buf_put(Buf *b, const char *p, size_t n) {
        if (b->n + n + 1 > b->allocated) {
                size_t a = MAX(b->allocated * 2, b->n + n + 16);
                char *t = realloc(b->s, a);
                if (!t)
                        return -ENOMEM;
                b->s = t;
                b->allocated = a;
        }
        memcpy(b->s + b->n, p, n);
        b->n += n;
        b->s[b->n] = 0;
        return 0;
}

static int buf_putc(Buf *b, char c) {
        return buf_put(b, &c, 1);
}

/* Encodes a code point as UTF-8. */
static int buf_put_utf8(Buf *b, unsigned long c) {
        char u[4];
        size_t n;

        if (c < 0x80) {
                u[0] = (char) c;
                n = 1;
        } else if (c < 0x800) {
                u[0] = (char) (0xc0 | (c >> 6));
                u[1] = (char) (0x80 | (c & 0x3f));
                n = 2;
        } else if (c < 0x10000) {
                u[0] = (char) (0xe0 | (c >> 12));
                u[1] = (char) (0x80 | ((c >> 6) & 0x3f));
                u[2] = (char) (0x80 | (c & 0x3f));
                n = 3;
        } else {
                u[0] = (char) (0xf0 | (c >> 18));
                u[1] = (char) (0x80 | ((c >> 12) & 0x3f));
                u[2] = (char) (0x80 | ((c >> 6) & 0x3f));
                u[3] = (char) (0x80 | (c & 0x3f));
                n = 4;
        }
        return buf_put(b, u, n);
}

/* Decodes one C escape starting after the backslash; advances *p. `exec`: the word is part of a command
 * line, where '$' is expanded later, so "\$" must stay a literal '$' through exec_argv_expand(). */
static int decode_escape(const char **p, Buf *b, bool exec, char **ret_error) {
        const char *s = *p;
        unsigned long v = 0;

        switch (*s) {
        case 'a': v = '\a'; s++; break;
        case 'b': v = '\b'; s++; break;
        case 'f': v = '\f'; s++; break;
        case 'n': v = '\n'; s++; break;
        case 'r': v = '\r'; s++; break;
        case 't': v = '\t'; s++; break;
        case 'v': v = '\v'; s++; break;
        case 's': v = ' '; s++; break;
        case '\\': case '"': case '\'': case ' ': case '$': case '%': case ';':
                /* A backslash before '$' or '%' keeps it from starting an expansion later; systemd keeps
                 * '$' literally and expects "$$" instead, so in a command line emit the escape as "$$".
                 * Elsewhere (Environment=) nothing expands '$': it is just a '$'. */
                if (*s == '$' && exec) {
                        *p = s + 1;
                        return buf_put(b, "$$", 2);
                }
                v = (unsigned char) *s;
                s++;
                break;
        case 'x': {
                int h1 = unhexchar(s[1]), h2 = h1 >= 0 ? unhexchar(s[2]) : -1;
                if (h1 < 0 || h2 < 0)
                        goto bad;
                v = (unsigned long) (h1 << 4 | h2);
                s += 3;
                if (v == 0)
                        goto nul;
                break;
        }
        case 'u': case 'U': {
                int digits = *s == 'u' ? 4 : 8;
                s++;
                for (int i = 0; i < digits; i++, s++) {
                        int h = unhexchar(*s);
                        if (h < 0)
                                goto bad;
                        v = v << 4 | (unsigned long) h;
                }
                if (v == 0)
                        goto nul;
                if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                        goto bad;
                *p = s;
                return buf_put_utf8(b, v);
        }
        case '0' ... '7':
                for (int i = 0; i < 3; i++, s++) {
                        if (*s < '0' || *s > '7')
                                goto bad;
                        v = v << 3 | (unsigned long) (*s - '0');
                }
                if (v == 0)
                        goto nul;
                if (v > 255)
                        goto bad;
                break;
        default:
                goto bad;
        }
        *p = s;
        return buf_putc(b, (char) v);

bad:
        if (asprintf(ret_error, "invalid escape sequence \"\\%.1s\"", *p) < 0)
                *ret_error = NULL;
        return -EINVAL;
nul:
        if (asprintf(ret_error, "escape sequence for a NUL byte is not allowed") < 0)
                *ret_error = NULL;
        return -EINVAL;
}

/* Appends the value of the specifier at p[0] == '%' (%% or %i); advances *p past it. Specifiers are
 * resolved while the words are split, so that a value with spaces, quotes or backslashes (the service
 * name comes from a file name) stays one literal piece of its word, and "\%" keeps a '%' literal. In a
 * command line (`exec`), a '$' of the service name is written "$$" so that it stays literal too. */
static int put_specifier(const char **p, const char *instance, bool exec, Buf *b, char **ret_error) {
        const char *s = *p;
        int r;

        if (s[1] == '%') {
                *p = s + 2;
                return buf_putc(b, '%');
        }
        if (s[1] == 'i' || s[1] == 'I') {
                *p = s + 2;
                for (const char *i = instance ?: ""; *i; i++) {
                        r = *i == '$' && exec ? buf_put(b, "$$", 2) : buf_putc(b, *i);
                        if (r < 0)
                                return r;
                }
                return buf_put(b, "", 0);
        }
        if (asprintf(ret_error, "unknown specifier \"%%%.1s\" (only %%i and %%%% are known; "
                     "write %%%% for a literal %%)", s + 1) < 0)
                *ret_error = NULL;
        return -EINVAL;
}

static int split(const char *line, const char *instance, bool exec, char ***ret_words, char **ret_error) {
        _cleanup_strv_free_ char **words = calloc(1, sizeof(char *));
        const char *p;
        int r;

        *ret_error = NULL;
        if (!words)
                return -ENOMEM;

        p = line;
        for (;;) {
                Buf word = {};
                bool have_word = false;
                char quote = 0;

                while (isspace((unsigned char) *p))
                        p++;
                if (*p == 0)
                        break;

                for (; *p; p++) {
                        if (!quote && isspace((unsigned char) *p))
                                break;
                        if (*p == '\\' && p[1] == 0) {
                                free(word.s);
                                *ret_error = strdup("trailing backslash");
                                return -EINVAL;
                        }
                        if (*p == '\\' || *p == '%') {
                                /* An escape or a specifier: both decode in place and advance p past them. */
                                r = *p == '%' ? put_specifier(&p, instance, exec, &word, ret_error)
                                              : (p++, decode_escape(&p, &word, exec, ret_error));
                                if (r < 0) {
                                        free(word.s);
                                        return r;
                                }
                                p--;
                                have_word = true;
                                continue;
                        }
                        if (quote && *p == quote) {
                                quote = 0;
                                continue;
                        }
                        if (!quote && (*p == '"' || *p == '\'')) {
                                quote = *p;
                                have_word = true;
                                continue;
                        }
                        r = buf_putc(&word, *p);
                        if (r < 0) {
                                free(word.s);
                                return r;
                        }
                        have_word = true;
                }
                if (quote) {
                        free(word.s);
                        if (asprintf(ret_error, "unterminated %s quote", quote == '"' ? "double" : "single") < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                if (have_word) {
                        if (!word.s && buf_put(&word, "", 0) < 0)
                                return -ENOMEM;
                        r = strv_consume(&words, word.s);
                        if (r < 0)
                                return r;
                }
        }

        *ret_words = TAKE_PTR(words);
        return 0;
}

int words_split(const char *line, const char *instance, char ***ret_words, char **ret_error) {
        return split(line, instance, false, ret_words, ret_error);
}

int exec_line_split(const char *line, const char *instance, char ***ret_words, char **ret_error) {
        _cleanup_strv_free_ char **words = NULL;
        int r;

        r = split(line, instance, true, &words, ret_error);
        if (r < 0)
                return r;
        if (strv_length(words) == 0) {
                *ret_error = strdup("empty command line");
                return -EINVAL;
        }
        if (words[0][0] != 0 && strchr("-@:+!", words[0][0])) {
                if (asprintf(ret_error, "command prefix \"%c\" is not supported", words[0][0]) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        *ret_words = TAKE_PTR(words);
        return 0;
}

static size_t env_name_length(const char *p) {
        size_t n = 0;

        if (!(isalpha((unsigned char) p[0]) || p[0] == '_'))
                return 0;
        while (isalnum((unsigned char) p[n]) || p[n] == '_')
                n++;
        return n;
}

static const char *env_lookup(char *const *env, const char *name, size_t n) {
        STRV_FOREACH(e, env)
                if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

int exec_argv_expand(char *const *words, char *const *env, char ***ret_argv) {
        _cleanup_strv_free_ char **argv = calloc(1, sizeof(char *));
        int r;

        if (!argv)
                return -ENOMEM;

        STRV_FOREACH(w, words) {
                const char *s = *w;
                size_t n = s[0] == '$' ? env_name_length(s + 1) : 0;

                /* "$NAME" as a whole word: the value, split on whitespace, as separate words. */
                if (n > 0 && s[1 + n] == 0) {
                        const char *v = env_lookup(env, s + 1, n);
                        while (v && *v) {
                                size_t k;
                                while (isspace((unsigned char) *v))
                                        v++;
                                k = 0;
                                while (v[k] && !isspace((unsigned char) v[k]))
                                        k++;
                                if (k > 0) {
                                        r = strv_consume(&argv, strndup(v, k));
                                        if (r < 0)
                                                return r;
                                }
                                v += k;
                        }
                        continue;
                }

                Buf b = {};
                for (const char *p = s; *p; p++) {
                        if (p[0] == '$' && p[1] == '$') {
                                r = buf_putc(&b, '$');
                                p++;
                        } else if (p[0] == '$' && p[1] == '{') {
                                const char *end = strchr(p + 2, '}');
                                size_t k = end ? env_name_length(p + 2) : 0;
                                if (k > 0 && p + 2 + k == end) {
                                        const char *v = env_lookup(env, p + 2, k);
                                        r = v ? buf_put(&b, v, strlen(v)) : 0;
                                        p = end;
                                } else
                                        r = buf_putc(&b, '$');
                        } else
                                r = buf_putc(&b, *p);
                        if (r < 0) {
                                free(b.s);
                                return r;
                        }
                }
                if (!b.s && buf_put(&b, "", 0) < 0)
                        return -ENOMEM;
                r = strv_consume(&argv, b.s);
                if (r < 0)
                        return r;
        }
        *ret_argv = TAKE_PTR(argv);
        return 0;
}
