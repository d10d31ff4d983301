/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

#include <stdarg.h>

/* A newly allocated formatted string, or NULL when out of memory. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
char *strdup_vprintf(const char *fmt, va_list ap) _printf_(1, 0);

/* The value of a hexadecimal digit, or -EINVAL. */
int unhexchar(char c);
