/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd's file descriptor store: what rpsupd hands to systemd to keep across its own restarts, and what
 * comes back (with socket activation's fds) in LISTEN_FDS/LISTEN_FDNAMES. */

#include "macro.h"

typedef struct InheritedFd {
        int fd;       /* -EBADF once claimed */
        char *name;   /* LISTEN_FDNAMES entry */
} InheritedFd;

typedef struct InheritedFds {
        InheritedFd *fds;
        size_t n;
} InheritedFds;

/* Stores a copy of fd under name. Both return 0 on success, and also when there is no store. Either way
 * rpsupd keeps a copy of its own under the name (at most FDSTORE_KEPT_MAX), which a reexec passes on. */
int fdstore_add(int fd, const char *name);
/* Drops every fd stored under name, rpsupd's own copies too. */
int fdstore_remove(const char *name);

/* rpsupd's own copies of what it stored (and of what was passed to it, until released): O_CLOEXEC. */
typedef struct StoredFd {
        int fd;
        char *name;
} StoredFd;
size_t fdstore_kept(const StoredFd **ret);
/* false once an fd could not be kept: a reexec would lose it. */
bool fdstore_kept_complete(void);
void fdstore_kept_done(void);

/* Takes the fds passed in LISTEN_FDS (socket activation and the fd store) and unsets the variables, so
 * that workers do not see them. Every fd is made O_CLOEXEC. */
int inherited_fds_take(InheritedFds *ret);
/* The first unclaimed fd with this name, claimed: the caller owns it. -EBADF if none. */
int inherited_fds_claim(InheritedFds *l, const char *name);
void inherited_fds_done(InheritedFds *l);
