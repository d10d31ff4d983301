/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Aligned text tables for the terminal. */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Table Table;

Table *table_new(size_t n_columns, ...); /* column headers */
int table_add(Table *t, ...);            /* one row: n_columns strings (NULL prints "-") */
void table_print(Table *t);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* "2min 3s" since a wall-clock time in microseconds, or "-" for 0. */
const char *format_age(char *buf, size_t l, uint64_t realtime_usec);
/* "in 28s" / "28s ago". */
const char *format_relative(char *buf, size_t l, uint64_t realtime_usec);
