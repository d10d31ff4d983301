/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <stdio.h>

#include "macro.h"

/* Closes fd if valid and returns -EBADF, so "fd = safe_close(fd);" is always safe. */
int safe_close(int fd);

static inline void closep(int *fd) {
        (void) safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);
/* Duplicates fd to a number >= 3 with O_CLOEXEC set. */
int fd_dup_cloexec(int fd);
/* How many fds the process has open (counted in /proc/self/fd). */
int fd_count_open(void);
/* Reads a small file (relative to dir_fd) with one read(), NUL-terminated: for /proc, /sys and cgroup files,
 * which give their contents whole. At most size - 1 bytes. */
int read_small_file(int dir_fd, const char *path, char *buf, size_t size);
