/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "prometheus-check.h"
#include "string-util.h"
#include "strv.h"
#include "utf8.h"

typedef struct Family {
        char *name;
        char *type; /* NULL: no TYPE line */
        bool help;
        bool samples;
} Family;

typedef struct Checker {
        Family *families;
        size_t n_families;
        size_t current;    /* the family of the last line, + 1; 0: none yet */
        char **series;     /* "name{sorted labels}" of every sample so far */
        unsigned line;
        char *error;
} Checker;

static int fail(Checker *c, const char *fmt, ...) _printf_(2, 3);
static int fail(Checker *c, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        what = strdup_vprintf(fmt, ap);
        va_end(ap);
        free(c->error);
        c->error = strdup_printf("line %u: %s", c->line, what ?: "(out of memory)");
        return -EINVAL;
}

static bool is_name_start(char ch, bool colon) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (colon && ch == ':');
}

static bool is_name_char(char ch, bool colon) {
        return is_name_start(ch, colon) || (ch >= '0' && ch <= '9');
}

/* The length of the metric name (colon: true) or label name at p; 0 if there is none. */
static size_t name_length(const char *p, bool colon) {
        size_t n = 0;

        if (!is_name_start(p[0], colon))
                return 0;
        while (is_name_char(p[n], colon))
                n++;
        return n;
}

static Family *family_find(Checker *c, const char *name, size_t n) {
        for (size_t i = 0; i < c->n_families; i++)
                if (strlen(c->families[i].name) == n && strncmp(c->families[i].name, name, n) == 0)
                        return &c->families[i];
        return NULL;
}

/* Makes `name` the family of the current line: a family seen before must be the one of the line before. */
static int family_enter(Checker *c, const char *name, size_t n, Family **ret) {
        Family *f = family_find(c, name, n);

        if (f && (size_t) (f - c->families) + 1 != c->current)
                return fail(c, "\"%.*s\" appears again after other families: its lines must be one group", (int) n,
                            name);
        if (!f) {
                Family *a = realloc(c->families, (c->n_families + 1) * sizeof(Family));
                if (!a)
                        abort();
                c->families = a;
                f = &c->families[c->n_families++];
                *f = (Family) { .name = strndup(name, n) };
                if (!f->name)
                        abort();
        }
        c->current = (size_t) (f - c->families) + 1;
        *ret = f;
        return 0;
}

/* The family a sample named name[0..n) belongs to: a histogram's or summary's _bucket, _sum and _count
 * belong to it, anything else to the family of its own name. */
static const char *sample_family(Checker *c, const char *name, size_t *n) {
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t k = strlen(suffixes[i]);
                Family *f;
                if (*n <= k || strncmp(name + *n - k, suffixes[i], k) != 0)
                        continue;
                f = family_find(c, name, *n - k);
                if (f && f->type && (streq(f->type, "histogram") || streq(f->type, "summary"))) {
                        *n -= k;
                        return name;
                }
        }
        return name;
}

static int check_comment(Checker *c, const char *l) {
        const char *p = l + 1;
        bool help;
        size_t n;
        Family *f;
        int r;

        while (*p == ' ' || *p == '\t')
                p++;
        if (strncmp(p, "HELP", 4) == 0 && (p[4] == ' ' || p[4] == '\t'))
                help = true;
        else if (strncmp(p, "TYPE", 4) == 0 && (p[4] == ' ' || p[4] == '\t'))
                help = false;
        else
                return 0; /* any other comment */
        p += 4;
        while (*p == ' ' || *p == '\t')
                p++;
        n = name_length(p, true);
        if (n == 0)
                return fail(c, "%s without a valid metric name", help ? "HELP" : "TYPE");
        r = family_enter(c, p, n, &f);
        if (r < 0)
                return r;
        if (f->samples)
                return fail(c, "%s of \"%s\" after its samples", help ? "HELP" : "TYPE", f->name);
        p += n;
        if (*p && *p != ' ' && *p != '\t')
                return fail(c, "junk after the metric name \"%s\"", f->name);
        while (*p == ' ' || *p == '\t')
                p++;

        if (help) {
                if (f->help)
                        return fail(c, "second HELP for \"%s\"", f->name);
                f->help = true;
                for (const char *q = p; *q; q++)
                        if (*q == '\\') {
                                if (q[1] != '\\' && q[1] != 'n')
                                        return fail(c, "invalid escape \"\\%c\" in the HELP of \"%s\"", q[1] ?: ' ',
                                                    f->name);
                                q++;
                        }
                if (!utf8_is_valid(p))
                        return fail(c, "the HELP of \"%s\" is not UTF-8", f->name);
                return 0;
        }

        if (f->type)
                return fail(c, "second TYPE for \"%s\"", f->name);
        if (!streq(p, "counter") && !streq(p, "gauge") && !streq(p, "histogram") && !streq(p, "summary") &&
            !streq(p, "untyped"))
                return fail(c, "unknown TYPE \"%s\" for \"%s\"", p, f->name);
        f->type = strdup(p);
        if (!f->type)
                abort();
        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int check_sample(Checker *c, const char *l) {
        _cleanup_strv_free_ char **labels = NULL;
        _cleanup_free_ char *key = NULL;
        const char *p = l, *name = l;
        size_t n = name_length(p, true), fn = n;
        char *end;
        Family *f;
        int r;

        if (n == 0)
                return fail(c, "a sample must start with a metric name");
        p += n;

        if (*p == '{') {
                p++;
                while (*p != '}') {
                        size_t ln = name_length(p, false);
                        char *value = NULL, *label;
                        size_t vn = 0;

                        if (ln == 0)
                                return fail(c, "invalid label name at \"%.20s\"", p);
                        if (p[ln] != '=' || p[ln + 1] != '"')
                                return fail(c, "label \"%.*s\" without =\"value\"", (int) ln, p);
                        label = strndup(p, ln);
                        if (!label)
                                abort();
                        p += ln + 2;
                        value = malloc(strlen(p) + 1);
                        if (!value)
                                abort();
                        for (; *p != '"'; p++) {
                                if (*p == 0) {
                                        free(label);
                                        free(value);
                                        return fail(c, "unterminated label value");
                                }
                                if (*p == '\\') {
                                        p++;
                                        if (*p != '\\' && *p != '"' && *p != 'n') {
                                                free(label);
                                                free(value);
                                                return fail(c, "invalid escape \"\\%c\" in a label value", *p ?: ' ');
                                        }
                                        value[vn++] = *p == 'n' ? '\n' : *p;
                                } else
                                        value[vn++] = *p;
                        }
                        value[vn] = 0;
                        p++;
                        if (!utf8_is_valid_n(value, vn)) {
                                free(value);
                                r = fail(c, "the value of label \"%s\" is not UTF-8", label);
                                free(label);
                                return r;
                        }
                        /* Label names must differ: "name=value" with the name first sorts them by name. */
                        STRV_FOREACH(x, labels)
                                if (strncmp(*x, label, ln) == 0 && (*x)[ln] == '=') {
                                        free(value);
                                        r = fail(c, "label \"%s\" twice", label);
                                        free(label);
                                        return r;
                                }
                        r = strv_consume(&labels, strdup_printf("%s=%s", label, value));
                        free(label);
                        free(value);
                        if (r < 0)
                                abort();
                        if (*p == ',')
                                p++;
                        else if (*p != '}')
                                return fail(c, "expected ',' or '}' after a label value");
                }
                p++;
        }

        if (*p != ' ' && *p != '\t')
                return fail(c, "no value after \"%.*s\"", (int) n, name);
        while (*p == ' ' || *p == '\t')
                p++;
        {
                size_t vn = strcspn(p, " \t");
                _cleanup_free_ char *v = strndup(p, vn);
                if (!v)
                        abort();
                if (vn == 0)
                        return fail(c, "no value");
                (void) strtod(v, &end);
                if (*end != 0)
                        return fail(c, "\"%s\" is not a value", v);
                p += vn;
        }
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p) {
                errno = 0;
                (void) strtoll(p, &end, 10);
                if (errno != 0 || end == p || *end != 0)
                        return fail(c, "\"%s\" is not a timestamp", p);
        }

        name = sample_family(c, name, &fn);
        r = family_enter(c, name, fn, &f);
        if (r < 0)
                return r;
        if (!f->type)
                return fail(c, "sample of \"%s\", which has no TYPE: parsers file it under an untyped family",
                            f->name);
        f->samples = true;

        /* The same series twice is an error for every reader. */
        if (labels)
                qsort(labels, strv_length(labels), sizeof(char *), compare_strings);
        {
                FILE *k;
                size_t size = 0;
                k = open_memstream(&key, &size);
                if (!k)
                        abort();
                fprintf(k, "%.*s{", (int) n, l);
                STRV_FOREACH(x, labels)
                        fprintf(k, "%s\x1f", *x);
                fputc('}', k);
                if (fclose(k) != 0)
                        abort();
        }
        if (strv_contains(c->series, key))
                return fail(c, "the series \"%.*s\" with these labels appears twice", (int) n, l);
        if (strv_consume(&c->series, TAKE_PTR(key)) < 0)
                abort();
        return 0;
}

int prometheus_check(const char *text, char **ret_error) {
        Checker c = {};
        const char *p = text;
        int r = 0;

        *ret_error = NULL;
        if (*text && text[strlen(text) - 1] != '\n') {
                c.line = 0;
                r = fail(&c, "the text does not end with a newline");
        }
        while (r >= 0 && *p) {
                const char *nl = strchr(p, '\n');
                _cleanup_free_ char *l = strndup(p, nl ? (size_t) (nl - p) : strlen(p));

                if (!l)
                        abort();
                c.line++;
                p = nl ? nl + 1 : p + strlen(p);
                if (l[0] == 0)
                        continue;
                r = l[0] == '#' ? check_comment(&c, l) : check_sample(&c, l);
        }

        for (size_t i = 0; i < c.n_families; i++) {
                free(c.families[i].name);
                free(c.families[i].type);
        }
        free(c.families);
        strv_free(c.series);
        if (r < 0)
                *ret_error = c.error;
        else
                free(c.error);
        return r;
}
