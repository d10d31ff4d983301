/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "prometheus-label.h"
#include "utf8.h"

char *prometheus_label_value(const char *s) {
        _cleanup_free_ char *valid = utf8_sanitize_dup(s ?: "", 0);
        char *buf, *o;

        if (!valid)
                return NULL;
        buf = o = malloc(strlen(valid) * 2 + 1);
        if (!buf)
                return NULL;
        for (const char *p = valid; *p; p++) {
                if (*p == '\\' || *p == '"' || *p == '\n')
                        *o++ = '\\';
                *o++ = *p == '\n' ? 'n' : *p;
        }
        *o = 0;
        return buf;
}
