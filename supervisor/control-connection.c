/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include "control-bus.h"
#include "control-internal.h"
#include "fd-util.h"
#include "rpsup-limits.h"
#include "log.h"
#include "rpsup-protocol.h"

/* Each client of the control socket: who may connect (budgets by uid, an fd reserve), reading what it sends
 * in whole, bounded units and passing them on to its sd-bus object, deadlines a drip feed cannot extend, and
 * closing. The methods are in control.c. */

/* ---- connections ---- */

static void connection_unlink(ControlConnection *c) {
        ControlServer *cs = c->server;

        if (!cs)
                return;
        for (ControlConnection **p = &cs->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->server = NULL;
}

ControlConnection *connection_unref(ControlConnection *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        connection_unlink(c);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->more);
        sd_bus_close_unref(c->bus); /* no flush: a client that does not read must not block us */
        safe_close(c->feed_fd);
        control_wire_done(&c->wire);
        free(c);
        return NULL;
}

ControlConnection *connection_ref(ControlConnection *c) {
        c->n_ref++;
        return c;
}

/* Closes the connection now; the object lives on while answers are pending. */
void connection_close(ControlConnection *c) {
        if (c->closed)
                return;
        c->closed = true;
        connection_unlink(c);
        /* Off the event loop before sd-bus closes the socket under it. */
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        c->more = sd_event_source_disable_unref(c->more);
        if (c->bus)
                sd_bus_close(c->bus);
        c->feed_fd = safe_close(c->feed_fd);
        control_wire_done(&c->wire); /* nothing more is read: a pending answer may take days (reload --wait) */
        connection_unref(c);
}

/* A call arrived or was answered: the connection is not idle. */
void connection_touch(ControlConnection *c) {
        if (!c->closed && c->server)
                c->idle_deadline = usec_add(now_usec(CLOCK_MONOTONIC), c->server->idle_usec);
}

void connection_rearm(ControlConnection *c);

/* Runs sd-bus until it has nothing left to do: it does one step per call, and nothing else would call it
 * again for what it holds already (a call that came with BEGIN, an answer written late). */
static int connection_process(ControlConnection *c) {
        for (unsigned i = 0; i < 64; i++) {
                int r = sd_bus_process(c->bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0 || c->closed)
                        return 0;
        }
        c->again = true;
        return 0;
}

/* Passes the unit at the front of the wire on to sd-bus, if it may go now. 1 if something went. */
static int connection_feed(ControlConnection *c) {
        const uint8_t *p;
        bool message;
        size_t n = control_wire_unit(&c->wire, &p, &message);
        ssize_t k;
        int r;

        if (n == 0)
                return 0;
        if (message) {
                uint64_t queued = 0;

                /* Messages wait for the end of the authentication, and for a client that does not read its
                 * replies. */
                if (sd_bus_is_ready(c->bus) <= 0)
                        return 0;
                if (sd_bus_get_n_queued_write(c->bus, &queued) >= 0 && queued >= CONTROL_QUEUED_REPLIES_MAX)
                        return 0;
        }
        k = send(c->feed_fd, p + c->fed, n - c->fed, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                c->again = true;
                return 0;
        }
        c->fed += (size_t) k;
        if (c->fed < n)
                return 1;
        c->fed = 0;
        if (message)
                connection_touch(c);
        r = control_wire_next(&c->wire);
        return r < 0 ? r : 1;
}

/* Reads from the client what the wire wants next. 1 if something came, 0 if nothing (now). */
static int connection_read(ControlConnection *c) {
        uint8_t *p;
        size_t space = control_wire_space(&c->wire, &p);
        ssize_t k;
        int r;

        if (space == 0)
                return 0;
        /* recv() without room for control messages: the kernel closes fds a client tries to pass. */
        k = recv(c->fd, p, space, MSG_DONTWAIT);
        if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (k == 0)
                return -ECONNRESET;
        r = control_wire_fill(&c->wire, (size_t) k);
        return r < 0 ? r : 1;
}

static void connection_log_close(ControlConnection *c, int r) {
        switch (r) {
        case -EMSGSIZE:
                log_ratelimit(LOG_WARNING, "Closing the control connection of pid %d (uid %u): it announced a "
                              "message larger than %u bytes, or its authentication took more than %u.",
                              (int) c->peer.pid, (unsigned) c->peer.uid, CONTROL_MESSAGE_MAX,
                              CONTROL_AUTH_SIZE_MAX);
                break;
        case -EBADMSG:
                log_ratelimit(LOG_NOTICE, "Closing the control connection of pid %d (uid %u): it sent something "
                              "that is not a D-Bus message.", (int) c->peer.pid, (unsigned) c->peer.uid);
                break;
        default:
                log_debug("Control connection of pid %d (uid %u) closed: %s", (int) c->peer.pid,
                          (unsigned) c->peer.uid, strerror(-r));
        }
}

/* One turn: what sd-bus has to do, what may be passed on to it, what the client sent. */
static void connection_run(ControlConnection *c) {
        int r = 0;

        connection_ref(c);
        c->again = false;
        /* sd-bus runs after each step, so that what was passed on to it is done with. */
        for (unsigned i = 0;; i++) {
                r = connection_process(c);
                if (r < 0 || c->closed)
                        break;
                if (i == 16) {
                        c->again = true; /* a client that keeps sending gets its next turn later */
                        break;
                }
                r = connection_feed(c);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                r = connection_read(c);
                if (r <= 0)
                        break;
        }
        if (r < 0 && !c->closed) {
                connection_log_close(c, r);
                connection_close(c);
        } else if (!c->closed)
                connection_rearm(c);
        connection_unref(c);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ControlConnection *c = userdata;
        uint32_t events = 0;

        (void) sd_event_source_get_io_events(s, &events);
        /* A hang-up while nothing is read (a reply or a message waits): the peer is gone. */
        if ((revents & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
                log_debug("Control connection of pid %d hung up.", (int) c->peer.pid);
                connection_close(c);
                return 0;
        }
        connection_run(c);
        return 0;
}

static int on_more(sd_event_source *s, void *userdata) {
        connection_run(userdata);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlConnection *c = userdata;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        char span[FORMAT_TIMESPAN_MAX];
        const char *why;
        usec_t t;

        if (c->auth_deadline <= now)
                why = "it did not authenticate", t = c->server->auth_usec;
        else if (c->message_deadline <= now)
                why = "a message it began did not arrive in full", t = c->server->message_usec;
        else if (c->write_deadline <= now)
                why = "it did not read the replies waiting for it", t = c->server->write_usec;
        else if (c->idle_deadline <= now && c->pending == 0) {
                log_debug("Closing an idle control connection (pid %d).", (int) c->peer.pid);
                connection_close(c);
                return 0;
        } else {
                connection_rearm(c);
                return 0;
        }
        log_ratelimit(LOG_NOTICE, "Closing the control connection of pid %d (uid %u): %s within %s.",
                      (int) c->peer.pid, (unsigned) c->peer.uid, why,
                      format_timespan(span, sizeof(span), t, USEC_PER_MSEC));
        connection_close(c);
        return 0;
}

/* After a turn: what to wait for, and until when. */
void connection_rearm(ControlConnection *c) {
        usec_t now = now_usec(CLOCK_MONOTONIC), next;
        uint32_t events = 0;
        uint64_t queued = 0;
        int r;

        if (c->closed)
                return;
        if (control_wire_space(&c->wire, NULL) > 0)
                events |= EPOLLIN;
        r = sd_bus_get_events(c->bus);
        if (r > 0 && (r & POLLOUT))
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(c->io, events);

        if (c->auth_deadline != USEC_INFINITY && sd_bus_is_ready(c->bus) > 0)
                c->auth_deadline = USEC_INFINITY;
        /* Only a message's last byte ends its deadline: a drip feed does not extend it. */
        if (!control_wire_partial(&c->wire))
                c->message_deadline = USEC_INFINITY;
        else if (c->message_deadline == USEC_INFINITY)
                c->message_deadline = usec_add(now, c->server->message_usec);
        /* Replies waiting: the deadline starts again only when one of them is gone. */
        (void) sd_bus_get_n_queued_write(c->bus, &queued);
        if (queued == 0)
                c->write_deadline = USEC_INFINITY;
        else if (queued < c->queued || c->write_deadline == USEC_INFINITY)
                c->write_deadline = usec_add(now, c->server->write_usec);
        c->queued = queued;

        /* A call in flight (Reload, Scale) keeps the connection however long it takes. */
        next = MIN(MIN(c->auth_deadline, c->message_deadline),
                   MIN(c->write_deadline, c->pending > 0 ? USEC_INFINITY : c->idle_deadline));
        if (next == USEC_INFINITY)
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(c->timer, next);
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        if (c->again)
                (void) sd_event_source_set_enabled(c->more, SD_EVENT_ONESHOT);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        connection_close(userdata);
        return 0;
}

ControlConnection *connection_of(ControlServer *cs, sd_bus_message *m) {
        sd_bus *bus = sd_bus_message_get_bus(m);

        for (ControlConnection *c = cs->connections; c; c = c->next)
                if (c->bus == bus)
                        return c;
        return NULL;
}

static bool uid_privileged(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* How many more fds rpsupd may open before RLIMIT_NOFILE. The lowest free fd number says nothing about the
 * ones above it (closed fds leave gaps), so the open fds are counted, at most every FD_COUNT_USEC; fds that
 * control clients were given since are added (until the next count, an overestimate: the safe side). */
uint64_t fds_left(ControlServer *cs) {
        usec_t t = now_usec(CLOCK_MONOTONIC);
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return UINT64_MAX;
        if (cs->fds_counted_at == 0 || t - cs->fds_counted_at >= FD_COUNT_USEC) {
                int n = fd_count_open();
                if (n < 0)
                        return 0; /* cannot tell: as if at the limit */
                cs->fds_counted = (uint64_t) n;
                cs->fds_since = 0;
                cs->fds_counted_at = t;
        }
        return cs->fds_counted + cs->fds_since < rl.rlim_cur ? rl.rlim_cur - cs->fds_counted - cs->fds_since : 0;
}

/* ---- accepting ---- */

/* The connection's sd-bus server: it writes to the client's socket `fd` and reads from our socket pair. */
static int connection_start_bus(ControlConnection *c, int fd) {
        ControlServer *cs = c->server;
        _cleanup_close_ int cfd = fd, in = -EBADF;
        int pair[2], sndbuf = CONTROL_SNDBUF, r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        c->feed_fd = pair[0];
        in = pair[1];

        r = sd_bus_new(&c->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_fd(c->bus, in, cfd);
        if (r < 0)
                return r;
        c->fd = TAKE_FD(cfd);
        TAKE_FD(in);
        /* Anonymous: sd-bus would compare the uid a client names in AUTH EXTERNAL with the socket pair's. */
        if ((r = sd_bus_set_server(c->bus, 1, cs->server_id)) < 0 ||
            (r = sd_bus_set_anonymous(c->bus, true)) < 0 ||
            (r = sd_bus_negotiate_fds(c->bus, true)) < 0 ||
            (r = sd_bus_add_object_vtable(c->bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, control_vtable,
                                          cs)) < 0 ||
            (r = sd_bus_add_object_vtable(c->bus, NULL, CONTROL_BUS_PATH, CONTROL_BUS_NAME, control_bus_vtable,
                                          cs)) < 0 ||
            (r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                     "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c)) < 0 ||
            (r = sd_bus_start(c->bus)) < 0)
                return r;
        (void) sd_bus_set_description(c->bus, "control");
        /* sd-bus raised it to 8 MiB: that much kernel memory per client that does not read is too much. */
        (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        return 0;
}

/* The client's socket, the deadlines and the work left over, on the event loop; other users' clients
 * after root's. */
static int connection_watch(ControlConnection *c) {
        ControlServer *cs = c->server;
        int prio = c->privileged ? SD_EVENT_PRIORITY_NORMAL : SD_EVENT_PRIORITY_NORMAL + 1, r;

        if ((r = sd_event_add_io(cs->event, &c->io, c->fd, EPOLLIN, on_io, c)) < 0 ||
            (r = sd_event_source_set_priority(c->io, prio)) < 0 ||
            (r = sd_event_add_time(cs->event, &c->timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC,
                                   on_deadline, c)) < 0 ||
            (r = sd_event_source_set_priority(c->timer, prio)) < 0 ||
            (r = sd_event_add_defer(cs->event, &c->more, on_more, c)) < 0 ||
            (r = sd_event_source_set_priority(c->more, prio)) < 0 ||
            (r = sd_event_source_set_enabled(c->more, SD_EVENT_OFF)) < 0)
                return r;
        return 0;
}

static int connection_new(ControlServer *cs, int fd, const struct ucred *peer, bool privileged) {
        _cleanup_close_ int cfd = fd;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        ControlConnection *c;
        int r;

        c = calloc(1, sizeof(ControlConnection));
        if (!c)
                return -ENOMEM;
        *c = (ControlConnection) {
                .server = cs,
                .n_ref = 1,
                .fd = -EBADF,
                .feed_fd = -EBADF,
                .peer = *peer,
                .privileged = privileged,
                .id = ++cs->connection_ids,
                .auth_deadline = usec_add(now, cs->auth_usec),
                .message_deadline = USEC_INFINITY,
                .write_deadline = USEC_INFINITY,
                .idle_deadline = usec_add(now, cs->idle_usec),
        };
        c->next = cs->connections;
        cs->connections = c;

        if ((r = control_wire_init(&c->wire)) < 0 ||
            (r = connection_start_bus(c, TAKE_FD(cfd))) < 0 ||
            (r = connection_watch(c)) < 0) {
                connection_close(c);
                return r;
        }
        connection_rearm(c);
        return 0;
}

/* Whether a client of `peer` may have one more connection: root and rpsupd's own uid have a budget of
 * their own, which other users' clients cannot use up. */
static bool connection_admit(ControlServer *cs, const struct ucred *peer, bool privileged) {
        unsigned same = 0, same_uid = 0;

        for (ControlConnection *c = cs->connections; c; c = c->next) {
                same += c->privileged == privileged;
                same_uid += c->peer.uid == peer->uid;
        }
        if (privileged && same >= CONTROL_CONNECTIONS_PRIVILEGED_MAX) {
                log_ratelimit(LOG_WARNING, "Refusing a control connection of uid %u (pid %d): root and uid %u have "
                              "%u open already, the limit.", (unsigned) peer->uid, (int) peer->pid,
                              (unsigned) geteuid(), CONTROL_CONNECTIONS_PRIVILEGED_MAX);
                return false;
        }
        if (!privileged && same_uid >= CONTROL_CONNECTIONS_PER_UID_MAX) {
                log_ratelimit(LOG_WARNING, "Refusing a control connection of uid %u (pid %d): that uid has %u open "
                              "already, the limit.", (unsigned) peer->uid, (int) peer->pid,
                              CONTROL_CONNECTIONS_PER_UID_MAX);
                return false;
        }
        if (!privileged && same >= CONTROL_CONNECTIONS_UNPRIVILEGED_MAX) {
                log_ratelimit(LOG_WARNING, "Refusing a control connection of uid %u (pid %d): users other than root "
                              "and uid %u have %u open already, the limit.", (unsigned) peer->uid, (int) peer->pid,
                              (unsigned) geteuid(), CONTROL_CONNECTIONS_UNPRIVILEGED_MAX);
                return false;
        }
        return true;
}

static void connection_accepted(ControlServer *cs, int cfd) {
        struct ucred peer;
        socklen_t l = sizeof(peer);
        unsigned reserve;
        bool privileged;
        int r;

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &peer, &l) < 0) {
                log_ratelimit(LOG_WARNING, "Refusing a control connection whose peer is not known: %s",
                              strerror(errno));
                safe_close(cfd);
                return;
        }
        privileged = uid_privileged(peer.uid);
        if (!connection_admit(cs, &peer, privileged)) {
                safe_close(cfd);
                return;
        }
        /* The connection takes two more fds (the feed's socket pair). Root's clients may use half of the
         * reserve: it can still see what is going on. */
        reserve = privileged ? FD_RESERVE / 2 : FD_RESERVE;
        if (fds_left(cs) < 2 + reserve) {
                log_ratelimit(LOG_WARNING, "Refusing a control connection of uid %u (pid %d): rpsupd is short of "
                              "file descriptors and keeps the last %u below RLIMIT_NOFILE for its own work.",
                              (unsigned) peer.uid, (int) peer.pid, reserve);
                safe_close(cfd);
                return;
        }
        cs->fds_since += 3;
        r = connection_new(cs, cfd, &peer, privileged);
        if (r < 0)
                log_ratelimit(LOG_WARNING, "Failed to set up a control connection of pid %d: %s", (int) peer.pid,
                              strerror(-r));
}

int control_on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlServer *cs = userdata;

        return sd_event_source_set_enabled(cs->accept_source, SD_EVENT_ON);
}

/* accept() fails for want of fds (or memory): accepting rests a while instead of failing again at once. */
static void accept_rest(ControlServer *cs) {
        if (sd_event_source_set_time_relative(cs->accept_resume, CONTROL_ACCEPT_PAUSE_USEC) < 0 ||
            sd_event_source_set_enabled(cs->accept_resume, SD_EVENT_ONESHOT) < 0)
                return; /* better to fail again than to stop accepting for good */
        (void) sd_event_source_set_enabled(cs->accept_source, SD_EVENT_OFF);
}

int control_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ControlServer *cs = userdata;

        for (unsigned i = 0; i < 64; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (cfd < 0) {
                        int r = -errno;
                        char span[FORMAT_TIMESPAN_MAX];

                        if (r == -EAGAIN)
                                return 0;
                        if (r == -EINTR || r == -ECONNABORTED || r == -EPROTO)
                                continue;
                        if (!cs->accept_failing)
                                log_warning_errno(r, "Failed to accept a control connection, trying again every %s: %m",
                                                  format_timespan(span, sizeof(span), CONTROL_ACCEPT_PAUSE_USEC,
                                                                  USEC_PER_MSEC));
                        cs->accept_failing = true;
                        accept_rest(cs);
                        return 0;
                }
                if (cs->accept_failing) {
                        log_info("Accepting control connections again.");
                        cs->accept_failing = false;
                }
                connection_accepted(cs, cfd);
        }
        return 0;
}

