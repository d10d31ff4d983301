/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What control.c (the server and its methods) and control-connection.c (each client: admission, reading,
 * deadlines) share. Nothing else includes this. */

#include <sys/socket.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "control.h"
#include "control-wire.h"
#include "probe.h"

/* Each connection is served by an sd-bus object that writes to the client's socket itself but reads what
 * rpsupd passes on to it through a socket pair: rpsupd reads the client, bounds the SASL exchange and the
 * size of each message before it is read (control-wire.c), and passes on one whole message at a time, and
 * only while fewer than CONTROL_QUEUED_REPLIES_MAX replies wait for the client. sd-bus is not attached to
 * the event loop: rpsupd runs it until it has nothing left to do each time it passed something on, so
 * that nothing stays buffered inside it unnoticed.
 *
 * sd-bus sees rpsupd's own credentials on the socket pair: authorisation uses only the SO_PEERCRED of the
 * client's socket, read at accept (every method is SD_BUS_VTABLE_UNPRIVILEGED and checks for itself). */

typedef struct ControlConnection {
        ControlServer *server;
        unsigned n_ref;
        sd_bus *bus;
        int fd;                    /* the client's socket (sd-bus owns it and writes to it) */
        int feed_fd;               /* our end of the socket pair sd-bus reads from */
        struct ucred peer;
        bool privileged;
        uint64_t id;               /* unique among this rpsupd's connections: the name Hello gives */
        bool said_hello;
        ControlWire wire;
        size_t fed;                /* bytes of the unit at the front of `wire` passed on already */
        unsigned pending;          /* calls answered later (Reload, Scale) */
        uint64_t queued;           /* replies waiting for the client, at the last look */
        usec_t auth_deadline;      /* BEGIN by then, from the accept */
        usec_t message_deadline;   /* the message being read complete by then, from its first byte */
        usec_t write_deadline;     /* a waiting reply gone by then */
        usec_t idle_deadline;      /* a call by then, unless one is in flight */
        sd_event_source *io, *timer, *more;
        bool again;                /* work left after a turn: `more` runs it */
        bool closed;
        struct ControlConnection *next;
} ControlConnection;

struct ControlServer {
        sd_event *event;
        const ControlHandlers *handlers;
        void *userdata;            /* of the handlers */
        int fd;
        char *remove_path;         /* the socket file to remove at exit (control_server_remove_at_exit) */
        dev_t remove_dev;
        ino_t remove_ino;
        sd_event_source *accept_source, *accept_resume;
        bool accept_failing;       /* accept() failed and was logged; cleared by the next success */
        sd_id128_t server_id;
        ControlConnection *connections;
        uint64_t connection_ids;   /* connections accepted so far */
        usec_t auth_usec, message_usec, write_usec, idle_usec;
        ProbeResult probe;         /* made at start, and again on Reprobe */
        uint64_t probed_usec;
        /* Open fds as last counted, and fds handed out since (see fds_left()). */
        usec_t fds_counted_at;
        uint64_t fds_counted, fds_since;
};

extern const sd_bus_vtable control_vtable[];

ControlConnection *connection_ref(ControlConnection *c);
ControlConnection *connection_unref(ControlConnection *c);
/* Closes the connection now; the object lives on while answers are pending. */
void connection_close(ControlConnection *c);
/* A call arrived or was answered: the connection is not idle. */
void connection_touch(ControlConnection *c);
/* After a turn: what to wait for, and until when. */
void connection_rearm(ControlConnection *c);
ControlConnection *connection_of(ControlServer *cs, sd_bus_message *m);
/* How many more fds rpsupd may open before RLIMIT_NOFILE (see control-connection.c). */
uint64_t fds_left(ControlServer *cs);
int control_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int control_on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata);
