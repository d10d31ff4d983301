/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>

#include "string-util.h"

char *strdup_vprintf(const char *fmt, va_list ap) {
        char *p;

        if (vasprintf(&p, fmt, ap) < 0)
                return NULL;
        return p;
}

char *strdup_printf(const char *fmt, ...) {
        char *p;
        va_list ap;

        va_start(ap, fmt);
        p = strdup_vprintf(fmt, ap);
        va_end(ap);
        return p;
}

int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}
