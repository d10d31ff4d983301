/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The listeners rpsupd closed most recently: their inodes and addresses. Closing its own copy (and the fd
 * store's) does not close a socket that another process still holds; `rpsupctl fds` finds such copies by
 * these inodes (a listener shut down before it closed is no longer in the kernel's socket tables, so
 * sock_diag cannot find it by its address any more). */

#include <stdint.h>

#include "socket-address.h"

#define LISTENER_HISTORY_MAX 128U

typedef struct ClosedListener {
        uint64_t inode;
        SocketAddress address;
        uint64_t closed_at; /* CLOCK_REALTIME, usec */
} ClosedListener;

typedef struct ListenerHistory {
        ClosedListener entries[LISTENER_HISTORY_MAX];
        size_t n;           /* valid entries, at most LISTENER_HISTORY_MAX */
        size_t next;        /* where the next one goes (the oldest is overwritten) */
        uint64_t forgotten; /* closures no longer remembered */
} ListenerHistory;

/* Remembers the socket behind fd (before it is closed); allocates *h on first use. Best effort: nothing is
 * remembered without memory or when fd is not a socket. */
void listener_history_add(ListenerHistory **h, int fd, const SocketAddress *address);
ListenerHistory *listener_history_free(ListenerHistory *h);
