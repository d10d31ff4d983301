/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#include "control-internal.h"
#include "fd-util.h"
#include "rpsup-limits.h"
#include "log.h"
#include "probe.h"
#include "rpsup-protocol.h"
#include "control-metrics.h"
#include "control-listeners.h"

/* Methods that change the state, hand out the listeners or load BPF programs: for root and the user
 * rpsupd runs as (see uid_privileged()), checked before their arguments. */
static int require_privileged(ControlServer *cs, sd_bus_message *m, sd_bus_error *error) {
        ControlConnection *c = connection_of(cs, m);
        unsigned caller = c ? (unsigned) c->peer.uid : UINT_MAX;

        if (c && c->privileged)
                return 0;
        return sd_bus_error_setf(error, RPSUP_ERROR_PERMISSION_DENIED,
                                 "%s is not allowed: only root or the service's user (uid %u, as which rpsupd "
                                 "runs) may call it; you are uid %u", sd_bus_message_get_member(m),
                                 (unsigned) geteuid(), caller);
}

/* ---- answers that come later ---- */

typedef struct PendingCall {
        ControlConnection *connection;
        sd_bus_message *message;
} PendingCall;

static PendingCall *pending_new(sd_bus_message *m, ControlConnection *c) {
        PendingCall *p = calloc(1, sizeof(PendingCall));

        if (!p)
                return NULL;
        p->connection = connection_ref(c);
        p->message = sd_bus_message_ref(m);
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
        /* The answer may wait for the client to read: watch for that, and pass on what waited for it. */
        connection_rearm(p->connection);
        connection_unref(p->connection);
        sd_bus_message_unref(p->message);
        free(p);
}

static void scale_done(Service *s, int r, const char *message, void *userdata) {
        pending_answer(userdata, r, message, 0, false);
}

/* Promote, Rollback: the generation that serves now. */
static void soak_done(Service *s, int r, const char *message, void *userdata) {
        pending_answer(userdata, r, message, r >= 0 && s->live ? s->live->id : 0, true);
}

static void reload_done(Service *s, int r, const char *message, void *userdata) {
        PendingCall *p = userdata;
        uint64_t id = 0;

        /* With --wait, the answer comes when the previous generation is gone; that may be because the
         * service stopped meanwhile. */
        if (r >= 0 && !s->live) {
                r = -ESHUTDOWN;
                message = "the service stopped while the reload waited for the previous generation";
        }
        if (r >= 0)
                id = s->live->id;
        pending_answer(p, r, message, id, true);
}


/* ---- methods ---- */

/* m: the call (NULL: no caller known). */
static StatusView control_view(ControlServer *cs, sd_bus_message *m) {
        ControlConnection *c = m ? connection_of(cs, m) : NULL;
        StatusView v = {};

        cs->handlers->view(cs->userdata, &v);
        v.caller = c ? c->peer.uid : BALANCE_NO_CALLER;
        return v;
}

static int method_list(sd_bus_message *m, ControlServer *cs, int (*append)(sd_bus_message *, const StatusView *)) {
        StatusView v = control_view(cs, m);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = append(reply, &v);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, status_append_service);
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

/* Read-only, for anyone who may read the status: the inodes and pids it gives, /proc and ListWorkers show. */
static int method_list_listener_holders(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_list(m, userdata, control_append_listener_holders);
}

static int reply_probe(sd_bus_message *m, ControlServer *cs) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = status_append_probe(reply, &cs->probe, cs->probed_usec);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The answer of the last probe: probing loads BPF programs, which is not for anyone to make rpsupd do. */
static int method_probe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return reply_probe(m, userdata);
}

static void control_probe(ControlServer *cs) {
        probe_run(&cs->probe);
        cs->probed_usec = now_usec(CLOCK_REALTIME);
}

static int method_reprobe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        control_probe(cs);
        log_info("Probed the kernel again (Reprobe): Strategy=auto would pick %s.", cs->probe.reason[STRATEGY_AUTO]);
        return reply_probe(m, cs);
}

static int method_get_metrics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        StatusView v = control_view(userdata, m);
        int r;

        r = control_metrics(&v, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", text);
}

/* For methods that change state and answer later: the caller's right to, and the call kept for the answer. */
static int pending_begin(ControlServer *cs, sd_bus_message *m, sd_bus_error *error, PendingCall **ret) {
        ControlConnection *c;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        c = connection_of(cs, m);
        if (!c)
                return -ENOTCONN;
        *ret = pending_new(m, c);
        return *ret ? 0 : -ENOMEM;
}

static int method_scale(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        PendingCall *p;
        uint32_t n;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "u", &n);
        if (r < 0)
                return r;
        if (n < 1 || n > WORKERS_MAX)
                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                         "%" PRIu32 " is not a worker count between 1 and %u", n, WORKERS_MAX);
        r = pending_begin(cs, m, error, &p);
        if (r < 0)
                return r;
        cs->handlers->scale(cs->userdata, n, scale_done, p);
        return 1;
}

/* What SetSteering and SetShadowSteering begin with: root or rpsupd's uid (checked before the argument is
 * read), the caller's connection, the policy's name. */
static int policy_call_begin(ControlServer *cs, sd_bus_message *m, sd_bus_error *error, ControlConnection **ret_c,
                             const char **ret_name) {
        ControlConnection *c;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        c = connection_of(cs, m);
        if (!c)
                return -ENOTCONN;
        r = sd_bus_message_read(m, "s", ret_name);
        if (r < 0)
                return r;
        *ret_c = c;
        return 0;
}

/* SetSteering and SetShadowSteering: the policy's name, then the service decides (and says why not). A shadow
 * may also be "off"; kernel is a policy, refused as a shadow by the service with the reason. */
static int set_policy(sd_bus_message *m, ControlServer *cs, sd_bus_error *error, bool shadow) {
        ControlConnection *c;
        _cleanup_free_ char *message = NULL;
        const char *name;
        SteeringPolicy p;
        int r;

        r = policy_call_begin(cs, m, error, &c, &name);
        if (r < 0)
                return r;
        p = shadow && streq(name, "off") ? _STEERING_POLICY_INVALID : steering_policy_from_string(name);
        if (p < 0 && !(shadow && streq(name, "off")))
                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT, "\"%.64s\" is not a %s policy (expected %s)",
                                         name, shadow ? "shadow" : "steering",
                                         shadow ? "round-robin, hash or off" : "round-robin, hash or kernel");
        r = shadow ? cs->handlers->steer_shadow(cs->userdata, p, c->peer.uid, &message)
                   : cs->handlers->steer(cs->userdata, p, c->peer.uid, &message);
        if (r < 0)
                return sd_bus_error_setf(error, rpsup_error_name(r), "%s", message ?: strerror(-r));
        return sd_bus_reply_method_return(m, NULL);
}

static int method_set_steering(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return set_policy(m, userdata, error, false);
}

static int method_set_shadow_steering(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return set_policy(m, userdata, error, true);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        ReloadOptions o = {};
        PendingCall *p;
        int wait, r;

        r = sd_bus_message_read(m, "b", &wait);
        if (r < 0)
                return r;
        r = pending_begin(cs, m, error, &p);
        if (r < 0)
                return r;
        o.wait_retired = wait;
        cs->handlers->reload(cs->userdata, &o, reload_done, p);
        return 1;
}

/* One boolean option's value; -EINVAL (in `error`) for another type. */
static int read_option_bool(sd_bus_message *m, const char *key, bool *ret, sd_bus_error *error) {
        const char *contents;
        char type;
        int b, r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (!streq_ptr(contents, "b"))
                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                         "reload option \"%s\" is a boolean (b), not %s", key, contents ?: "nothing");
        r = sd_bus_message_read(m, "v", "b", &b);
        if (r < 0)
                return r;
        *ret = b;
        return 0;
}

/* ReloadWithOptions's a{sv}: "wait" (b), "soak" (b), "canary" (u, percent). Unknown keys are refused: an
 * option a client relies on is never ignored silently. */
static int read_reload_options(sd_bus_message *m, ReloadOptions *ret, sd_bus_error *error) {
        ReloadOptions o = {};
        bool soak = true;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key, *contents;
                char type;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "wait"))
                        r = read_option_bool(m, key, &o.wait_retired, error);
                else if (streq(key, "soak"))
                        r = read_option_bool(m, key, &soak, error);
                else if (streq(key, "canary")) {
                        uint32_t percent;

                        r = sd_bus_message_peek_type(m, &type, &contents);
                        if (r < 0)
                                return r;
                        if (!streq_ptr(contents, "u"))
                                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                                         "reload option \"canary\" is a percentage (u), not %s",
                                                         contents ?: "nothing");
                        r = sd_bus_message_read(m, "v", "u", &percent);
                        if (r < 0)
                                return r;
                        if (percent < 1 || percent > 100)
                                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                                         "%" PRIu32 " is not a canary percentage between 1 and 100",
                                                         percent);
                        o.canary = percent;
                } else
                        return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                                 "unknown reload option \"%.64s\" (known: wait, soak, canary)", key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (!soak && o.canary > 0)
                return sd_bus_error_setf(error, RPSUP_ERROR_INVALID_ARGUMENT,
                                         "a canary runs during the soak: \"canary\" and \"soak\"=false exclude "
                                         "each other");
        o.no_soak = !soak;
        *ret = o;
        return 0;
}

static int method_reload_with_options(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        ReloadOptions o;
        PendingCall *p;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        r = read_reload_options(m, &o, error);
        if (r < 0)
                return r;
        r = pending_begin(cs, m, error, &p);
        if (r < 0)
                return r;
        cs->handlers->reload(cs->userdata, &o, reload_done, p);
        return 1;
}

/* Who asked, for the log and status: the caller's uid, and whether it is rpsupctl (by its command name:
 * a hint for people, not something to trust). */
static void caller_name(ControlConnection *c, char *buf, size_t size) {
        char path[64], comm[17] = ""; /* TASK_COMM_LEN is 16 */
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int) c->peer.pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0 && (n = read(fd, comm, sizeof(comm) - 1)) > 0) {
                comm[n] = 0;
                comm[strcspn(comm, "\n")] = 0;
        }
        snprintf(buf, size, "uid %u via %s (pid %d)", (unsigned) c->peer.uid,
                 streq(comm, "rpsupctl") ? "rpsupctl" : "the control socket", (int) c->peer.pid);
}

static int method_soak_decision(sd_bus_message *m, ControlServer *cs, sd_bus_error *error,
                                void (*decide)(void *userdata, const char *by, ServiceDone done, void *done_userdata)) {
        char by[128];
        PendingCall *p;
        int r;

        r = pending_begin(cs, m, error, &p);
        if (r < 0)
                return r;
        caller_name(p->connection, by, sizeof(by));
        decide(cs->userdata, by, soak_done, p);
        return 1;
}

static int method_promote(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        return method_soak_decision(m, cs, error, cs->handlers->promote);
}

static int method_rollback(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ControlServer *cs = userdata;
        return method_soak_decision(m, cs, error, cs->handlers->rollback);
}

/* Reexec: answered with the attempt's number before rpsupd executes its binary; the outcome is in GetStatus
 * (reexec_seq, reexec_last_failed, reexec_last_error) once rpsupd answers again. */
static int method_reexec(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        ControlServer *cs = userdata;
        uint64_t seq = 0;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        r = cs->handlers->reexec(cs->userdata, &seq, &message);
        if (r < 0)
                return sd_bus_error_setf(error, rpsup_error_name(r), "%s", message ?: strerror(-r));
        return sd_bus_reply_method_return(m, "t", seq);
}

static int method_get_listener_fds(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ControlServer *cs = userdata;
        StatusView v;
        int r;

        r = require_privileged(cs, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        v = control_view(cs, m);
        r = status_append_listener_fds(reply, &v);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, RPSUP_ERROR_BUSY, "no generation is serving yet");
        if (r == -E2BIG)
                return sd_bus_error_setf(error, RPSUP_ERROR_LIMIT, "the live generation holds more listeners than "
                                         "one message can carry (%u)", LISTENER_FDS_REPLY_MAX);
        /* The reply holds copies of the listeners until the client reads it (one reply at most: the client's
         * next call is read once it is gone); whatever a client does not read, rpsupd keeps the fds its
         * workers and listeners need. */
        /* sd-bus duplicates each listener into the reply: up to LISTENER_FDS_REPLY_MAX more fds. */
        if (r == -EMFILE || r == -ENFILE || (r >= 0 && fds_left(cs) < FD_RESERVE + LISTENER_FDS_REPLY_MAX)) {
                log_ratelimit(LOG_WARNING, "Refusing GetListenerFds: rpsupd is short of file descriptors and keeps "
                              "the last %u for its own work.", FD_RESERVE);
                return sd_bus_error_setf(error, RPSUP_ERROR_LIMIT, "rpsupd is short of file descriptors (it keeps "
                                         "the last %u below RLIMIT_NOFILE for its own work)", FD_RESERVE);
        }
        if (r < 0)
                return r;
        cs->fds_since += LISTENER_FDS_REPLY_MAX;
        return sd_bus_send(NULL, reply, NULL);
}

/* The properties: what `rpsupctl list` shows, for tools that read properties (busctl get-property). */
static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        StatusView v = control_view(userdata, NULL);

        return status_append_property(reply, &v, property);
}

const sd_bus_vtable control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Service", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get, 0, 0),
        SD_BUS_PROPERTY("Strategy", "s", property_get, 0, 0),
        SD_BUS_PROPERTY("Status", "s", property_get, 0, 0),
        SD_BUS_PROPERTY("LiveGeneration", "t", property_get, 0, 0),
        SD_BUS_PROPERTY("Workers", "u", property_get, 0, 0),
        SD_BUS_PROPERTY("ReadyWorkers", "u", property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListGenerations", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", generations),
                                method_list_generations, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListWorkers", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", workers),
                                method_list_workers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListListeners", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", listeners),
                                method_list_listeners, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListListenerHolders", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a{sv}", supervisor, "aa{sv}", listeners, "aa{sv}", expected),
                                method_list_listener_holders, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Probe", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", strategies),
                                method_probe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reprobe", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", strategies),
                                method_reprobe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Scale", SD_BUS_ARGS("u", workers), SD_BUS_NO_RESULT,
                                method_scale, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetSteering", SD_BUS_ARGS("s", policy), SD_BUS_NO_RESULT,
                                method_set_steering, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetShadowSteering", SD_BUS_ARGS("s", policy), SD_BUS_NO_RESULT,
                                method_set_shadow_steering, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_ARGS("b", wait), SD_BUS_RESULT("t", generation),
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReloadWithOptions", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("t", generation),
                                method_reload_with_options, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Promote", SD_BUS_NO_ARGS, SD_BUS_RESULT("t", generation),
                                method_promote, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rollback", SD_BUS_NO_ARGS, SD_BUS_RESULT("t", generation),
                                method_rollback, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetListenerFds", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sh)", listeners),
                                method_get_listener_fds, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reexec", SD_BUS_NO_ARGS, SD_BUS_RESULT("t", attempt),
                                method_reexec, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* RPSUP_CONTROL_TIMEOUT_SCALE (tests only): multiplies the control connections' time-outs, 0 < x <= 1. */
static double timeout_scale(void) {
        const char *e = getenv("RPSUP_CONTROL_TIMEOUT_SCALE");
        char *end;
        double x;

        if (isempty(e))
                return 1.0;
        errno = 0;
        x = strtod(e, &end);
        if (errno != 0 || *end || !(x > 0.0 && x <= 1.0)) {
                log_warning("Ignoring RPSUP_CONTROL_TIMEOUT_SCALE=%s: not a number in (0, 1].", e);
                return 1.0;
        }
        log_notice("Control connection time-outs scaled by %g (RPSUP_CONTROL_TIMEOUT_SCALE).", x);
        return x;
}

int control_server_new(sd_event *event, const ControlHandlers *handlers, void *userdata, const char *path, int fd,
                       ControlServer **ret) {
        _cleanup_close_ int sfd = fd;
        ControlServer *cs;
        double scale;
        int r;

        if (sfd < 0) {
                SocketAddress a;
                r = socket_address_parse(path, SOCK_STREAM, &a);
                if (r < 0)
                        return r; /* too long, or not a plain absolute path */
                /* Everyone may connect and read the status (mode 0666); changing state is checked per call. */
                r = socket_bind_listen(&a, CONTROL_BACKLOG, false, &sfd);
                if (r < 0)
                        return r;
        } else
                /* Taken from the fd store: the backlog may be an older rpsupd's. */
                (void) listen(sfd, CONTROL_BACKLOG);
        (void) fd_set_nonblock(sfd, true);

        cs = calloc(1, sizeof(ControlServer));
        if (!cs)
                return -ENOMEM;
        cs->event = event;
        cs->handlers = handlers;
        cs->userdata = userdata;
        cs->fd = -EBADF;
        scale = timeout_scale();
        cs->auth_usec = (usec_t) (CONTROL_AUTH_USEC * scale);
        cs->message_usec = (usec_t) (CONTROL_MESSAGE_USEC * scale);
        cs->write_usec = (usec_t) (CONTROL_WRITE_USEC * scale);
        cs->idle_usec = (usec_t) (CONTROL_IDLE_USEC * scale);
        /* Probe requests get this answer; only Reprobe (privileged) makes rpsupd probe again. */
        control_probe(cs);
        r = sd_id128_randomize(&cs->server_id);
        if (r >= 0)
                r = sd_event_add_io(event, &cs->accept_source, sfd, EPOLLIN, control_on_accept, cs);
        /* Made now: when it is needed, there may be no fd left to make it with. */
        if (r >= 0)
                r = sd_event_add_time(event, &cs->accept_resume, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC,
                                      control_on_accept_resume, cs);
        if (r >= 0)
                r = sd_event_source_set_enabled(cs->accept_resume, SD_EVENT_OFF);
        if (r < 0) {
                control_server_free(cs);
                return r;
        }
        cs->fd = TAKE_FD(sfd);
        *ret = cs;
        return 0;
}

int control_server_remove_at_exit(ControlServer *cs, const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        free(cs->remove_path);
        cs->remove_path = strdup(path);
        if (!cs->remove_path)
                return -ENOMEM;
        cs->remove_dev = st.st_dev;
        cs->remove_ino = st.st_ino;
        return 0;
}

ControlServer *control_server_free(ControlServer *cs) {
        struct stat st;

        if (!cs)
                return NULL;
        /* Before the socket closes: a client that finds the file then connects to a closed socket (refused)
         * rather than to nothing; either way it learns that rpsupd is gone. Another rpsupd's socket in its
         * place (the same service started again meanwhile) stays. */
        if (cs->remove_path && stat(cs->remove_path, &st) >= 0 && st.st_dev == cs->remove_dev &&
            st.st_ino == cs->remove_ino && unlink(cs->remove_path) < 0)
                log_warning_errno(errno, "Could not remove the control socket %s, which rpsupctl will list as not "
                                  "running: %m", cs->remove_path);
        free(cs->remove_path);
        while (cs->connections)
                connection_close(cs->connections);
        sd_event_source_disable_unref(cs->accept_source);
        sd_event_source_disable_unref(cs->accept_resume);
        safe_close(cs->fd);
        free(cs);
        return NULL;
}

int control_server_fd(ControlServer *cs) {
        return cs->fd;
}
