/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "string-util.h"

char *strdup_printf(const char *fmt, ...) {
        char *p;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&p, fmt, ap) < 0)
                p = NULL;
        va_end(ap);
        return p;
}
