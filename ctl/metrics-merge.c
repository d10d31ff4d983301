/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/types.h>

#include "metrics-merge.h"

typedef struct Family {
        char *name;
        char *help; /* the docstring, NULL until a HELP line */
        char *type; /* NULL until a TYPE line (untyped) */
        char *samples;
        size_t samples_len, samples_size;
} Family;

struct MetricsMerge {
        Family *families;
        size_t n_families, size;
};

/* The suffixes a sample's name may add to its family's (text format 0.0.4 and OpenMetrics). */
static const char *const sample_suffixes[] = { "", "_total", "_bucket", "_sum", "_count", "_created" };

MetricsMerge *metrics_merge_new(void) {
        return calloc(1, sizeof(MetricsMerge));
}

MetricsMerge *metrics_merge_free(MetricsMerge *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_families; i++) {
                free(m->families[i].name);
                free(m->families[i].help);
                free(m->families[i].type);
                free(m->families[i].samples);
        }
        free(m->families);
        return mfree(m);
}

/* The index of the family, added if new (pointers into the array move when it grows), or -ENOMEM. */
static ssize_t family_get(MetricsMerge *m, const char *name, size_t len) {
        Family *f;

        for (size_t i = 0; i < m->n_families; i++)
                if (strlen(m->families[i].name) == len && memcmp(m->families[i].name, name, len) == 0)
                        return (ssize_t) i;
        if (m->n_families == m->size) {
                size_t size = MAX(m->size * 2, 64u);
                Family *a = reallocarray(m->families, size, sizeof(Family));
                if (!a)
                        return -ENOMEM;
                m->families = a;
                m->size = size;
        }
        f = &m->families[m->n_families];
        *f = (Family) { .name = strndup(name, len) };
        if (!f->name)
                return -ENOMEM;
        return (ssize_t) m->n_families++;
}

static int family_append(Family *f, const char *line, size_t len) {
        if (f->samples_len + len + 2 > f->samples_size) {
                size_t size = MAX(f->samples_size * 2, f->samples_len + len + 2);
                char *s = realloc(f->samples, MAX(size, 4096u));
                if (!s)
                        return -ENOMEM;
                f->samples = s;
                f->samples_size = MAX(size, 4096u);
        }
        memcpy(f->samples + f->samples_len, line, len);
        f->samples_len += len;
        f->samples[f->samples_len++] = '\n';
        f->samples[f->samples_len] = 0;
        return 0;
}

static bool sample_of(const Family *f, const char *name, size_t len) {
        size_t n = strlen(f->name);

        if (len < n || memcmp(name, f->name, n) != 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(sample_suffixes); i++)
                if (len - n == strlen(sample_suffixes[i]) && memcmp(name + n, sample_suffixes[i], len - n) == 0)
                        return true;
        return false;
}

/* "# HELP name doc" or "# TYPE name type": the index of the family it names (-EINVAL: none), and the rest
 * in *ret_rest. */
static ssize_t header_line(MetricsMerge *m, const char *line, size_t len, char **ret_rest) {
        const char *name = line + 7, *end = line + len, *p = name;

        while (p < end && *p != ' ' && *p != '\t')
                p++;
        if (p == name)
                return -EINVAL;
        *ret_rest = strndup(p < end ? p + 1 : end, p < end ? (size_t) (end - p - 1) : 0);
        if (!*ret_rest)
                return -ENOMEM;
        return family_get(m, name, p - name);
}

int metrics_merge_add(MetricsMerge *m, const char *text) {
        ssize_t current = -1;
        bool skip = false;
        int dropped = 0;

        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                const char *next = nl ? nl + 1 : line + len;

                if (len >= 7 && (memcmp(line, "# HELP ", 7) == 0 || memcmp(line, "# TYPE ", 7) == 0)) {
                        _cleanup_free_ char *rest = NULL;
                        ssize_t i = header_line(m, line, len, &rest);
                        if (i == -ENOMEM)
                                return -ENOMEM;
                        if (i >= 0) {
                                Family *f = &m->families[i];
                                /* A family whose TYPE conflicts stays skipped through its HELP. */
                                if (current != i)
                                        skip = false;
                                current = i;
                                if (line[2] == 'H' && !f->help)
                                        f->help = TAKE_PTR(rest);
                                else if (line[2] == 'T' && !f->type)
                                        f->type = TAKE_PTR(rest);
                                else if (line[2] == 'T' && !streq(f->type, rest))
                                        skip = true;
                        }
                } else if (len > 0 && line[0] != '#') {
                        size_t n = strcspn(line, "{ \t\n");
                        ssize_t i = current;
                        if (i < 0 || !sample_of(&m->families[i], line, n)) {
                                i = family_get(m, line, n); /* a sample without HELP or TYPE: untyped */
                                if (i < 0)
                                        return -ENOMEM;
                                current = -1;
                                skip = false;
                        }
                        if (skip)
                                dropped++;
                        else if (family_append(&m->families[i], line, len) < 0)
                                return -ENOMEM;
                }
                line = next;
        }
        return dropped;
}

void metrics_merge_write(const MetricsMerge *m, FILE *f) {
        for (size_t i = 0; i < m->n_families; i++) {
                const Family *x = &m->families[i];
                if (x->help)
                        fprintf(f, "# HELP %s %s\n", x->name, x->help);
                if (x->type)
                        fprintf(f, "# TYPE %s %s\n", x->name, x->type);
                if (x->samples)
                        fputs(x->samples, f);
        }
}

