/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "path-util.h"

bool path_has_dot_dot(const char *p) {
        for (;;) {
                size_t n;

                p += strspn(p, "/");
                if (!*p)
                        return false;
                n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p += n;
        }
}

char *path_simplify(char *p) {
        const char *in = p;
        char *out = p;
        bool absolute = *in == '/';

        if (absolute)
                *out++ = '/';
        for (;;) {
                size_t n;

                in += strspn(in, "/");
                if (!*in)
                        break;
                n = strcspn(in, "/");
                if (!(n == 1 && in[0] == '.')) {
                        if (out > p && out[-1] != '/')
                                *out++ = '/';
                        memmove(out, in, n);
                        out += n;
                }
                in += n;
        }
        if (out == p) /* "" or "./" alone: the current directory */
                *out++ = '.';
        *out = 0;
        return p;
}
