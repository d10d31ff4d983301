/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc-parse.h"

/* A decimal number of at most 20 digits, no sign, ending at *ret_end. */
static int parse_decimal(const char *s, uint64_t *ret, const char **ret_end) {
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        *ret = v;
        *ret_end = p;
        return 0;
}

int parse_socket_link(const char *target, uint64_t *ret_inode) {
        const char *end;
        uint64_t v;

        if (strncmp(target, "socket:[", 8) != 0 || parse_decimal(target + 8, &v, &end) < 0 || strcmp(end, "]") != 0 ||
            v == 0)
                return -EINVAL;
        *ret_inode = v;
        return 0;
}

int parse_proc_stat(const char *text, pid_t *ret_ppid, char *comm, size_t comm_size) {
        const char *open = strchr(text, '('), *close = strrchr(text, ')'), *end;
        uint64_t ppid;
        size_t n;

        if (!open || !close || close < open || comm_size == 0)
                return -EINVAL;
        /* ") S 123 ": the state is one character. */
        if (close[1] != ' ' || !close[2] || close[3] != ' ' || parse_decimal(close + 4, &ppid, &end) < 0 ||
            (*end != ' ' && *end != '\0' && *end != '\n') || ppid > INT32_MAX)
                return -EINVAL;
        n = (size_t) (close - open - 1);
        if (n >= comm_size)
                n = comm_size - 1;
        memcpy(comm, open + 1, n);
        comm[n] = 0;
        *ret_ppid = (pid_t) ppid;
        return 0;
}

int parse_proc_stat_start_time(const char *text, uint64_t *ret) {
        const char *p = strrchr(text, ')'), *end;
        uint64_t v;

        if (!p)
                return -EINVAL;
        p++;
        /* The fields after the name start at 3 (the state); the start time is field 22. */
        for (int field = 3; field <= 22; field++) {
                if (*p != ' ' || p[1] == ' ' || p[1] == '\0' || p[1] == '\n')
                        return -EINVAL;
                p++;
                if (field < 22)
                        p += strcspn(p, " \n");
        }
        if (parse_decimal(p, &v, &end) < 0 || (*end != ' ' && *end != '\0' && *end != '\n'))
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_fdinfo_flags(const char *text, unsigned *ret_flags) {
        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                unsigned long v;
                char *end;

                if (strncmp(line, "flags:", 6) != 0)
                        continue;
                line += 6;
                line += strspn(line, " \t");
                if (*line < '0' || *line > '7')
                        return -EINVAL;
                errno = 0;
                v = strtoul(line, &end, 8);
                if (errno != 0 || v > UINT32_MAX || (*end != '\n' && *end != '\0'))
                        return -EINVAL;
                *ret_flags = (unsigned) v;
                return 0;
        }
        return -EINVAL;
}

int parse_unix_line(const char *line, uint64_t *ret_inode, const char **ret_path, size_t *ret_path_len) {
        const char *p = line, *end;
        uint64_t inode;

        /* Num: (hex, ends with ':'), then RefCount Protocol Flags Type St (hex), then Inode (decimal). */
        p += strspn(p, " ");
        end = strchr(p, ':');
        if (!end || end == p || strspn(p, "0123456789abcdefABCDEF") != (size_t) (end - p))
                return -EINVAL;
        p = end + 1;
        for (int i = 0; i < 5; i++) {
                size_t n;

                p += strspn(p, " ");
                n = strspn(p, "0123456789abcdefABCDEF");
                if (n == 0 || p[n] != ' ')
                        return -EINVAL;
                p += n;
        }
        p += strspn(p, " ");
        if (parse_decimal(p, &inode, &end) < 0)
                return -EINVAL;
        p = end;
        if (*p == '\0' || *p == '\n') {
                *ret_path = NULL;
                *ret_path_len = 0;
        } else if (*p == ' ') {
                p += strspn(p, " ");
                *ret_path = *p && *p != '\n' ? p : NULL;
                *ret_path_len = *ret_path ? strcspn(p, "\n") : 0;
        } else
                return -EINVAL;
        *ret_inode = inode;
        return 0;
}
