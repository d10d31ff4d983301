/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The listening sockets rpsupd holds. This is where a listener is created (bound), adopted from systemd
 * socket activation, or restored from the fd store after an rpsupd restart, and where it is closed. Every
 * listener rpsupd creates goes to the fd store; it is closed only when no generation uses it any more and
 * rpsupd is not stopping (a stopping rpsupd leaves them all to the fd store for its successor). */

#include "config.h"
#include "listener-history.h"
#include "systemd-fdstore.h"
#include "macro.h"
#include "socket-address.h"

typedef struct ListenerSet ListenerSet;

typedef struct Listener {
        ListenerSet *set;
        unsigned n_ref;
        int fd;
        SocketAddress address;
        char *store_name;  /* its name in the fd store; NULL when a socket unit owns it */
        uint64_t slot_id;  /* the worker slot it belongs to; 0 when every worker shares it */
        bool socket_unit;  /* handed to us by systemd socket activation */
        bool reuseport;
        bool restored;     /* came back from the fd store */
        bool steer_joined; /* the strategy put it under BPF steering, at steer_index */
        uint32_t steer_index;
        struct Listener *next;
} Listener;

struct ListenerSet {
        Listener *listeners;
        size_t n;
        InheritedFds *inherited; /* fds passed at start-up, claimed by name */
        bool keep;               /* stopping: close nothing */
        ListenerHistory *closed; /* the listeners closed last, for `rpsupctl fds` */
};

int listener_set_new(InheritedFds *inherited, ListenerSet **ret);
ListenerSet *listener_set_free(ListenerSet *set);

/* A listener for `spec`: one already held, one systemd passed, or a new one. slot_id 0 asks for the
 * shared listener of that address; otherwise a per-slot SO_REUSEPORT listener. On failure sets
 * *ret_error to a message naming the address (caller frees). */
int listener_acquire(ListenerSet *set, const ListenSpec *spec, unsigned backlog, const char *socket_unit_name,
                     uint64_t slot_id, bool reuseport, Listener **ret, char **ret_error);
/* The listener systemd's socket unit passed for `spec`, if any (1), adopted like listener_acquire() does;
 * 0 if none was passed. Never binds. */
int listener_adopt_socket_unit(ListenerSet *set, const ListenSpec *spec, unsigned backlog, const char *name,
                               Listener **ret);
/* Takes an already open socket into the set (no fd store entry). */
Listener *listener_wrap(ListenerSet *set, int fd, const SocketAddress *a);
Listener *listener_unref(Listener *l);

/* Connections waiting in the accept queue, and the backlog. -EOPNOTSUPP for non-TCP sockets. */
int listener_accept_queue(const Listener *l, uint32_t *ret_depth, uint32_t *ret_backlog);
/* Creates and binds a socket (and listen()s for streams). */
int socket_bind_listen(const SocketAddress *a, unsigned backlog, bool reuseport, int *ret_fd);
