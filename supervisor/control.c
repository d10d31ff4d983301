/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include "control.h"
#include "fd-util.h"
#include "rpsup-limits.h"
#include "listener.h"
#include "log.h"
#include "manager.h"
#include "probe.h"
#include "rpsup-protocol.h"
#include "status.h"

typedef struct ControlConnection {
        ControlServer *server;
        unsigned n_ref;
        sd_bus *bus;
        struct ucred peer;
        unsigned pending;          /* calls answered later (Reload, Scale) */
        sd_event_source *idle_timer;
        bool closed;
        struct ControlConnection *next;
} ControlConnection;

struct ControlServer {
        Manager *manager;
        int fd;
        sd_event_source *accept_source;
        sd_id128_t server_id;
        ControlConnection *connections;
        unsigned n_connections;
};

static const sd_bus_vtable supervisor_vtable[];

/* ---- connections ---- */

static void connection_unlink(ControlConnection *c) {
        ControlServer *cs = c->server;

        if (!cs)
                return;
        for (ControlConnection **p = &cs->connections; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        cs->n_connections--;
                        break;
                }
        c->server = NULL;
}

static ControlConnection *connection_unref(ControlConnection *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        connection_unlink(c);
        sd_event_source_disable_unref(c->idle_timer);
        sd_bus_close_unref(c->bus); /* no flush: a client that does not read must not block us */
        free(c);
        return NULL;
}

static ControlConnection *connection_ref(ControlConnection *c) {
        c->n_ref++;
        return c;
}

/* Closes the connection now; the object lives on while answers are pending. */
static void connection_close(ControlConnection *c) {
        if (c->closed)
                return;
        c->closed = true;
        connection_unlink(c);
        c->idle_timer = sd_event_source_disable_unref(c->idle_timer);
        if (c->bus)
                sd_bus_close(c->bus);
        connection_unref(c);
}

static void connection_touch(ControlConnection *c) {
        if (c->idle_timer)
                (void) sd_event_source_set_time_relative(c->idle_timer, CONTROL_IDLE_USEC);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        ControlConnection *c = userdata;

        if (c->pending > 0) {
                connection_touch(c);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        log_debug("Closing an idle control connection (pid %d).", (int) c->peer.pid);
        connection_close(c);
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        connection_close(userdata);
        return 0;
}

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        connection_touch(userdata);
        return 0; /* go on with the dispatch */
}

static ControlConnection *connection_of(Manager *manager, sd_bus_message *m) {
        sd_bus *bus = sd_bus_message_get_bus(m);

        for (ControlConnection *c = manager->control->connections; c; c = c->next)
                if (c->bus == bus)
                        return c;
        return NULL;
}

static bool connection_privileged(ControlConnection *c) {
        return c->peer.uid == 0 || c->peer.uid == geteuid();
}

static int require_privileged(Manager *manager, sd_bus_message *m, sd_bus_error *error) {
        ControlConnection *c = connection_of(manager, m);

        if (c && connection_privileged(c))
                return 0;
        return sd_bus_error_setf(error, RPSUP_ERROR_PERMISSION_DENIED,
                                 "%s changes the state of the service: only root and uid %u may call it "
                                 "(you are uid %u)", sd_bus_message_get_member(m), (unsigned) geteuid(),
                                 c ? (unsigned) c->peer.uid : 0u);
}

/* ---- answers that come later ---- */

typedef struct PendingCall {
        ControlConnection *connection;
        sd_bus_message *message;
        Manager *manager;
} PendingCall;

static PendingCall *pending_new(sd_bus_message *m, ControlConnection *c, Manager *manager) {
        PendingCall *p = calloc(1, sizeof(PendingCall));

        if (!p)
                return NULL;
        p->connection = connection_ref(c);
        p->message = sd_bus_message_ref(m);
        p->manager = manager;
        c->pending++;
        return p;
}

static void pending_answer(PendingCall *p, int r, const char *message, uint64_t generation, bool with_generation) {
        int k;

        if (r < 0)
                k = sd_bus_reply_method_errorf(p->message, rpsup_error_name(r), "%s",
                                               message ?: strerror(-r));
        else if (with_generation)
                k = sd_bus_reply_method_return(p->message, "t", generation);
        else
                k = sd_bus_reply_method_return(p->message, NULL);
        if (k < 0)
                log_debug_errno(k, "Could not answer a control call (the client may be gone): %m");
        p->connection->pending--;
        connection_touch(p->connection);
        connection_unref(p->connection);
        sd_bus_message_unref(p->message);
        free(p);
}

static void scale_done(Service *s, int r, const char *message, void *userdata) {
        pending_answer(userdata, r, message, 0, false);
}

static void reload_done(Service *s, int r, const char *message, void *userdata) {
        PendingCall *p = userdata;
        uint64_t id = 0;

        /* With --wait, the answer comes when the previous generation is gone; that may be because the
         * service stopped meanwhile. */
        if (r >= 0 && !p->manager->service->live) {
                r = -ESHUTDOWN;
                message = "the service stopped while the reload waited for the previous generation";
        }
        if (r >= 0)
                id = p->manager->service->live->id;
        pending_answer(p, r, message, id, true);
}

/* ---- methods ---- */

static int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = status_append_service(reply, userdata);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list(sd_bus_message *m, Manager *manager, int (*append)(sd_bus_message *, Manager *)) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = append(reply, manager);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_generations(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, status_append_generations);
}

static int method_list_workers(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, status_append_workers);
}

static int method_list_listeners(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, status_append_listeners);
}

static int method_probe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, status_append_probe);
}

static int method_get_metrics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = status_metrics(userdata, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", text);
}

/* For methods that change state and answer later: the caller's right to, and the call kept for the answer. */
static int pending_begin(Manager *manager, sd_bus_message *m, sd_bus_error *error, PendingCall **ret) {
        ControlConnection *c;
        int r;

        r = require_privileged(manager, m, error);
        if (r < 0)
                return r;
        c = connection_of(manager, m);
        if (!c)
                return -ENOTCONN;
        *ret = pending_new(m, c, manager);
        return *ret ? 0 : -ENOMEM;
}

static int method_scale(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        PendingCall *p;
        uint32_t n;
        int r;

        r = sd_bus_message_read(m, "u", &n);
        if (r < 0)
                return r;
        if (n < 1 || n > WORKERS_MAX)
                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                         "%" PRIu32 " is not a worker count between 1 and %u", n, WORKERS_MAX);
        r = pending_begin(userdata, m, error, &p);
        if (r < 0)
                return r;
        manager_scale(userdata, n, scale_done, p);
        return 1;
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        PendingCall *p;
        int wait, r;

        r = sd_bus_message_read(m, "b", &wait);
        if (r < 0)
                return r;
        r = pending_begin(userdata, m, error, &p);
        if (r < 0)
                return r;
        manager_reload(userdata, wait, reload_done, p);
        return 1;
}

static int method_get_listener_fds(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = require_privileged(userdata, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = status_append_listener_fds(reply, userdata);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, RPSUP_ERROR_BUSY, "no generation is serving yet");
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable supervisor_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListGenerations", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", generations),
                                method_list_generations, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListWorkers", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", workers),
                                method_list_workers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListListeners", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", listeners),
                                method_list_listeners, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Probe", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", strategies),
                                method_probe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Scale", SD_BUS_ARGS("u", workers), SD_BUS_NO_RESULT,
                                method_scale, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_ARGS("b", wait), SD_BUS_RESULT("t", generation),
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetListenerFds", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sh)", listeners),
                                method_get_listener_fds, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- accepting ---- */

static int connection_new(ControlServer *cs, int fd) {
        Manager *m = cs->manager;
        ControlConnection *c;
        socklen_t l = sizeof(struct ucred);
        int r;

        c = calloc(1, sizeof(ControlConnection));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->n_ref = 1;
        c->server = cs;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &l) < 0) {
                r = -errno;
                safe_close(fd);
                free(c);
                return r;
        }

        r = sd_bus_new(&c->bus);
        if (r < 0) {
                safe_close(fd);
                free(c);
                return r;
        }
        c->next = cs->connections;
        cs->connections = c;
        cs->n_connections++;

        r = sd_bus_set_fd(c->bus, fd, fd);
        if (r < 0) {
                safe_close(fd);
                goto fail;
        }
        if ((r = sd_bus_set_server(c->bus, 1, cs->server_id)) < 0 ||
            (r = sd_bus_negotiate_fds(c->bus, true)) < 0 ||
            (r = sd_bus_add_object_vtable(c->bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, supervisor_vtable,
                                          m)) < 0 ||
            (r = sd_bus_add_filter(c->bus, NULL, on_message, c)) < 0 ||
            (r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                     "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c)) < 0 ||
            (r = sd_bus_attach_event(c->bus, m->event, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
            (r = sd_bus_start(c->bus)) < 0)
                goto fail;
        (void) sd_bus_set_description(c->bus, "control");
        r = sd_event_add_time_relative(m->event, &c->idle_timer, CLOCK_MONOTONIC, CONTROL_IDLE_USEC,
                                       USEC_PER_SEC, on_idle, c);
        if (r < 0)
                goto fail;
        return 0;

fail:
        connection_close(c);
        return r;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ControlServer *cs = userdata;

        for (unsigned i = 0; i < 16; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                int r;

                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_ratelimit(LOG_WARNING, "Failed to accept a control connection: %m");
                        return 0;
                }
                if (cs->n_connections >= CONTROL_CONNECTIONS_MAX) {
                        log_ratelimit(LOG_WARNING, "Refusing a control connection: %u are open already, the limit.",
                                      CONTROL_CONNECTIONS_MAX);
                        safe_close(cfd);
                        continue;
                }
                r = connection_new(cs, cfd);
                if (r < 0)
                        log_ratelimit(LOG_WARNING, "Failed to set up a control connection: %s", strerror(-r));
        }
        return 0;
}

int control_server_new(Manager *m, const char *path, int fd, ControlServer **ret) {
        _cleanup_close_ int sfd = fd;
        ControlServer *cs;
        int r;

        if (sfd < 0) {
                SocketAddress a;
                r = socket_address_parse(path, SOCK_STREAM, &a);
                if (r < 0)
                        return r == -EINVAL ? -ENAMETOOLONG : r;
                /* Everyone may connect and read the status (mode 0666); changing state is checked per call. */
                r = socket_bind_listen(&a, 64, false, &sfd);
                if (r < 0)
                        return r;
        }
        (void) fd_set_nonblock(sfd, true);

        cs = calloc(1, sizeof(ControlServer));
        if (!cs)
                return -ENOMEM;
        cs->manager = m;
        cs->fd = -EBADF;
        r = sd_id128_randomize(&cs->server_id);
        if (r >= 0)
                r = sd_event_add_io(m->event, &cs->accept_source, sfd, EPOLLIN, on_accept, cs);
        if (r < 0) {
                free(cs);
                return r;
        }
        cs->fd = TAKE_FD(sfd);
        *ret = cs;
        return 0;
}

ControlServer *control_server_free(ControlServer *cs) {
        if (!cs)
                return NULL;
        while (cs->connections)
                connection_close(cs->connections);
        sd_event_source_disable_unref(cs->accept_source);
        safe_close(cs->fd);
        free(cs);
        return NULL;
}

int control_server_fd(ControlServer *cs) {
        return cs->fd;
}
