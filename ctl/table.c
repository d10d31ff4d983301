/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "table.h"
#include "time-util.h"

struct Table {
        size_t n_columns;
        size_t n_cells;
        char **cells; /* headers first, then rows */
};

Table *table_new(size_t n_columns, ...) {
        Table *t = calloc(1, sizeof(Table));
        va_list ap;

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->cells = calloc(n_columns, sizeof(char *));
        if (!t->cells) {
                free(t);
                return NULL;
        }
        va_start(ap, n_columns);
        for (size_t i = 0; i < n_columns; i++)
                t->cells[i] = strdup(va_arg(ap, const char *));
        va_end(ap);
        t->n_cells = n_columns;
        return t;
}

int table_add(Table *t, ...) {
        char **c = realloc(t->cells, sizeof(char *) * (t->n_cells + t->n_columns));
        va_list ap;

        if (!c)
                return -ENOMEM;
        t->cells = c;
        va_start(ap, t);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = va_arg(ap, const char *);
                t->cells[t->n_cells++] = strdup(isempty(s) ? "-" : s);
        }
        va_end(ap);
        return 0;
}

void table_print(Table *t) {
        size_t width[16] = {};

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns, n = t->cells[i] ? strlen(t->cells[i]) : 0;
                if (col < ELEMENTSOF(width) && n > width[col])
                        width[col] = n;
        }
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns;
                bool last = col == t->n_columns - 1;
                if (last)
                        printf("%s\n", t->cells[i] ?: "");
                else
                        printf("%-*s  ", (int) width[MIN(col, ELEMENTSOF(width) - 1)], t->cells[i] ?: "");
        }
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

const char *format_age(char *buf, size_t l, uint64_t realtime_usec) {
        usec_t n = now_usec(CLOCK_REALTIME);

        if (realtime_usec == 0) {
                snprintf(buf, l, "-");
                return buf;
        }
        return format_timespan(buf, l, n > realtime_usec ? n - realtime_usec : 0, USEC_PER_SEC);
}

const char *format_relative(char *buf, size_t l, uint64_t realtime_usec) {
        char span[FORMAT_TIMESPAN_MAX];
        usec_t n = now_usec(CLOCK_REALTIME);

        if (realtime_usec == 0)
                snprintf(buf, l, "-");
        else if (realtime_usec >= n)
                snprintf(buf, l, "in %s", format_timespan(span, sizeof(span), realtime_usec - n, USEC_PER_SEC / 10));
        else
                snprintf(buf, l, "%s ago", format_timespan(span, sizeof(span), n - realtime_usec, USEC_PER_SEC / 10));
        return buf;
}
