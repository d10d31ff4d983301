/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* A newly allocated formatted string, or NULL when out of memory. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
