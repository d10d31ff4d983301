/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "parse-util.h"
#include "readiness-probe-exec.h"
#include "readiness-probe-http.h"
#include "readiness-probe.h"
#include "rpsup-limits.h"
#include "strv.h"

typedef enum AttemptState {
        ATTEMPT_CONNECTING,
        ATTEMPT_SENDING,   /* http: the request */
        ATTEMPT_READING,   /* tcp: EOF, data or a reset; http: the status line */
        ATTEMPT_RUNNING,   /* exec: the command runs */
        ATTEMPT_REAPING,   /* exec: killed (timeout, cancel), its exit not seen yet; reports nothing */
} AttemptState;

typedef struct ProbeAttempt ProbeAttempt;
struct ProbeAttempt {
        ProbeRunner *runner;
        Worker *worker;  /* NULL once reaping */
        ProbeKind kind;
        AttemptState state;
        usec_t timeout;
        sd_event_source *timer;
        sd_event_source *defer; /* reports a failure found while starting, from the loop */
        int result;
        char what[PROBE_WHAT_MAX];

        /* tcp, http */
        int fd;
        sd_event_source *io;
        Slot *aimed;     /* the slot the local port is aimed at; NULL: not aimed */
        size_t listen_index;
        uint16_t port;
        char *request;
        size_t request_size, sent;
        char answer[PROBE_ANSWER_MAX];
        size_t n_answer;

        /* exec */
        pid_t pid;
        int pidfd, error_fd;
        sd_event_source *child;

        LIST_ENTRY(ProbeAttempt) link;
};

struct ProbeRunner {
        ProbeHost host;
        LIST_HEAD(, ProbeAttempt) attempts;
        size_t n_attempts;
};

int probe_runner_new(const ProbeHost *h, ProbeRunner **ret) {
        ProbeRunner *pr = calloc(1, sizeof(ProbeRunner));

        if (!pr)
                return -ENOMEM;
        pr->host = *h;
        LIST_INIT(&pr->attempts);
        *ret = pr;
        return 0;
}

static ProbeAttempt *find_attempt(ProbeRunner *pr, Worker *w) {
        ProbeAttempt *a;

        LIST_FOREACH(a, &pr->attempts, link)
                if (a->worker == w)
                        return a;
        return NULL;
}

static void attempt_unaim(ProbeAttempt *a) {
        Strategy *st = a->runner->host.strategy;
        int r;

        if (!a->aimed)
                return;
        r = st->ops->probe_aim(st, a->aimed, a->listen_index, a->port, false);
        if (r < 0)
                log_warning_errno(r, "Failed to stop aiming local port %u at worker %u of generation %" PRIu64 ": %m",
                                  a->port, a->aimed->index, a->aimed->generation->id);
        a->aimed = NULL;
}

static void attempt_free(ProbeAttempt *a) {
        attempt_unaim(a);
        sd_event_source_disable_unref(a->timer);
        sd_event_source_disable_unref(a->defer);
        sd_event_source_disable_unref(a->io);
        sd_event_source_disable_unref(a->child);
        safe_close(a->fd);
        safe_close(a->pidfd);
        safe_close(a->error_fd);
        free(a->request);
        LIST_REMOVE(a, link);
        a->runner->n_attempts--;
        free(a);
}

/* The attempt is over for its worker: a command still running is killed and reaped when it is gone (its
 * pid, and so its process group, is ours until then). */
static void attempt_end(ProbeAttempt *a) {
        if (a->child && a->state != ATTEMPT_REAPING) {
                attempt_unaim(a);
                (void) kill(-a->pid, SIGKILL);
                a->state = ATTEMPT_REAPING;
                a->worker = NULL;
                a->timer = sd_event_source_disable_unref(a->timer);
                a->defer = sd_event_source_disable_unref(a->defer);
                return;
        }
        attempt_free(a);
}

static void attempt_finish(ProbeAttempt *a, int r, const char *what) {
        ProbeRunner *pr = a->runner;
        Worker *w = a->worker;
        char copy[PROBE_WHAT_MAX];

        /* `what` may live in the attempt, and the callback may start the next one. */
        snprintf(copy, sizeof(copy), "%s", what);
        if (w)
                log_debug("Readiness probe of worker %u of generation %" PRIu64 " (pid %d): %s: %s", w->slot->index,
                          w->slot->generation->id, (int) w->pid, r >= 0 ? "passed" : "failed", copy);
        attempt_end(a);
        if (w)
                pr->host.done(pr->host.userdata, w, r, copy);
}

static void attempt_finishf(ProbeAttempt *a, int r, const char *fmt, ...) _printf_(3, 4);
static void attempt_finishf(ProbeAttempt *a, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(a->what, sizeof(a->what), fmt, ap);
        va_end(ap);
        attempt_finish(a, r, a->what);
}

static int on_deferred(sd_event_source *source, void *userdata) {
        ProbeAttempt *a = userdata;

        attempt_finish(a, a->result, a->what);
        return 0;
}

/* A failure found while starting: reported from the loop, not from within probe_runner_start(). */
static int attempt_fail_later(ProbeAttempt *a, int r, const char *fmt, ...) _printf_(3, 4);
static int attempt_fail_later(ProbeAttempt *a, int r, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        vsnprintf(a->what, sizeof(a->what), fmt, ap);
        va_end(ap);
        a->result = r < 0 ? r : -EIO;
        /* Nothing else of it may fire meanwhile. */
        a->io = sd_event_source_disable_unref(a->io);
        a->timer = sd_event_source_disable_unref(a->timer);
        k = sd_event_add_defer(a->runner->host.event, &a->defer, on_deferred, a);
        return k < 0 ? k : 0;
}

static const char *connect_error(int error, char *buf, size_t l) {
        switch (error) {
        case ECONNREFUSED:
                return "connection refused";
        case ECONNRESET:
                return "connection reset";
        case EAGAIN: /* a Unix socket whose accept queue is full */
                return "the accept queue is full";
        default:
                snprintf(buf, l, "cannot connect: %s", strerror(error));
                return buf;
        }
}

/* ---- tcp, http ---- */

static void http_answer(ProbeAttempt *a, bool eof) {
        char what[PROBE_WHAT_MAX];
        unsigned code;
        int r;

        r = http_status_parse(a->answer, a->n_answer, eof || a->n_answer >= sizeof(a->answer), &code, what,
                              sizeof(what));
        if (r == 0)
                return;
        if (r < 0)
                attempt_finish(a, -EBADMSG, eof && a->n_answer == 0 ? "closed the connection without an answer" : what);
        else
                attempt_finish(a, http_status_passes(code) ? 0 : -EPROTO, what);
}

static void attempt_read(ProbeAttempt *a) {
        for (;;) {
                bool http = a->kind == PROBE_HTTP;
                /* tcp: what came is not kept, but read as far as it goes, so that closing sends no reset. */
                ssize_t k = http ? recv(a->fd, a->answer + a->n_answer, sizeof(a->answer) - a->n_answer, MSG_DONTWAIT)
                                 : recv(a->fd, a->answer, sizeof(a->answer), MSG_DONTWAIT);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return;
                if (!http) {
                        /* The worker took the connection from its queue and did something with it. */
                        if (k > 0)
                                attempt_finish(a, 0, "answered");
                        else if (k == 0)
                                attempt_finish(a, 0, "closed the connection");
                        else if (errno == ECONNRESET)
                                attempt_finish(a, 0, "reset the connection");
                        else
                                attempt_finishf(a, -errno, "cannot read: %s", strerror(errno));
                        return;
                }
                if (k < 0) {
                        int error = errno;
                        if (a->n_answer > 0)
                                http_answer(a, true); /* an answer that ended in a reset still says something */
                        else
                                attempt_finishf(a, -error, "%s", error == ECONNRESET ? "connection reset"
                                                                                   : strerror(error));
                        return;
                }
                a->n_answer += (size_t) k;
                http_answer(a, k == 0);
                return; /* decided, or more is to come (or the buffer is full, which decides) */
        }
}

static void attempt_send(ProbeAttempt *a) {
        while (a->sent < a->request_size) {
                ssize_t k = send(a->fd, a->request + a->sent, a->request_size - a->sent, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return; /* EPOLLOUT */
                if (k < 0) {
                        attempt_finishf(a, -errno, "%s", errno == ECONNRESET || errno == EPIPE
                                                                 ? "connection reset before the request was sent"
                                                                 : strerror(errno));
                        return;
                }
                a->sent += (size_t) k;
        }
        a->state = ATTEMPT_READING;
        (void) sd_event_source_set_io_events(a->io, EPOLLIN | EPOLLRDHUP);
        attempt_read(a);
}

static void attempt_connected(ProbeAttempt *a) {
        if (a->kind == PROBE_TCP) {
                /* Nothing to say: the end of our side asks the worker to answer or close. */
                (void) shutdown(a->fd, SHUT_WR);
                a->state = ATTEMPT_READING;
                (void) sd_event_source_set_io_events(a->io, EPOLLIN | EPOLLRDHUP);
                attempt_read(a);
                return;
        }
        a->state = ATTEMPT_SENDING;
        (void) sd_event_source_set_io_events(a->io, EPOLLOUT);
        attempt_send(a);
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        ProbeAttempt *a = userdata;

        switch (a->state) {
        case ATTEMPT_CONNECTING: {
                char buf[PROBE_WHAT_MAX];
                int error = 0;
                socklen_t l = sizeof(error);

                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &l) < 0)
                        error = errno;
                if (error != 0) {
                        attempt_finish(a, -error, connect_error(error, buf, sizeof(buf)));
                        return 0;
                }
                attempt_connected(a);
                break;
        }
        case ATTEMPT_SENDING:
                attempt_send(a);
                break;
        case ATTEMPT_READING:
                attempt_read(a);
                break;
        default:
                break;
        }
        return 0;
}

/* The local address of a probe connection: loopback for a loopback target (the port is then aimed), else
 * the family's wildcard (the kernel picks the address). Port 0: the kernel picks one now. */
/* Where the probe connects from: loopback for a loopback target, else the target's own address (port 0).
 * The steering program honours an aim only from this host (a loopback source, or source = destination),
 * so that a remote client with the same port is never aimed. */
static void local_address(const SocketAddress *target, SocketAddress *ret) {
        *ret = (SocketAddress) { .type = SOCK_STREAM };
        if (target->sa.sa_family == AF_INET) {
                ret->in.sin_family = AF_INET;
                ret->in.sin_addr.s_addr = (ntohl(target->in.sin_addr.s_addr) >> 24) == 127 ? htonl(INADDR_LOOPBACK)
                                                                                           : target->in.sin_addr.s_addr;
                ret->size = sizeof(ret->in);
        } else {
                ret->in6.sin6_family = AF_INET6;
                ret->in6.sin6_addr = IN6_IS_ADDR_LOOPBACK(&target->in6.sin6_addr) ? in6addr_loopback
                                                                                 : target->in6.sin6_addr;
                ret->in6.sin6_scope_id = target->in6.sin6_scope_id;
                ret->size = sizeof(ret->in6);
        }
}

static int connect_start(ProbeAttempt *a, Worker *w, const Config *c) {
        Strategy *st = a->runner->host.strategy;
        SocketAddress target, local;
        char buf[PROBE_WHAT_MAX], shown[SOCKET_ADDRESS_STRING_MAX];
        int r;

        r = probe_target(c, &a->listen_index, &target);
        if (r < 0)
                return attempt_fail_later(a, r, "no ListenStream= to connect to");
        if (a->kind == PROBE_HTTP) {
                r = http_probe_request(c->probe_path, &target, &a->request, &a->request_size);
                if (r < 0)
                        return r;
        }

        a->fd = socket(target.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (a->fd < 0)
                return attempt_fail_later(a, -errno, "cannot probe: %s", strerror(errno));

        if (socket_address_is_inet(&target)) {
                /* The local port names the probe connection: the strategy sends a connection from it to this
                 * worker, whichever workers take new connections. */
                local_address(&target, &local);
                if (bind(a->fd, &local.sa, local.size) < 0)
                        return attempt_fail_later(a, -errno, "cannot bind the probe connection: %s", strerror(errno));
                if (socket_address_from_fd(a->fd, &local) < 0)
                        return attempt_fail_later(a, -EIO, "cannot read the probe connection's local port");
                a->port = ntohs(local.sa.sa_family == AF_INET ? local.in.sin_port : local.in6.sin6_port);
                r = st->ops->probe_aim ? st->ops->probe_aim(st, w->slot, a->listen_index, a->port, true) : -EOPNOTSUPP;
                if (r >= 0)
                        a->aimed = w->slot;
                else if (r != -EOPNOTSUPP)
                        /* Unaimed, another worker could pass it for this one: no probe is better. */
                        return attempt_fail_later(a, r, "cannot aim the probe at the worker: %s", strerror(-r));
        }

        r = sd_event_add_io(a->runner->host.event, &a->io, a->fd, EPOLLOUT, on_io, a);
        if (r < 0)
                return r;
        if (connect(a->fd, &target.sa, target.size) < 0) {
                if (errno != EINPROGRESS)
                        return attempt_fail_later(a, -errno, "%s (%s)", connect_error(errno, buf, sizeof(buf)),
                                                  socket_address_format(&target, shown, sizeof(shown)));
                return 0; /* EPOLLOUT when connected */
        }
        /* Connected at once (a Unix socket): go on from the loop, as for any connection. */
        return 0;
}

/* ---- exec ---- */

static int on_child(sd_event_source *source, const siginfo_t *si, void *userdata) {
        ProbeAttempt *a = userdata;
        const Config *c;
        int error = 0;

        /* Not reaped yet (sd-event reaps it after this callback): its process group is still ours to end.
         * Whatever the command left behind goes with it. */
        (void) kill(-a->pid, SIGKILL);
        a->child = sd_event_source_disable_unref(a->child);
        if (a->state == ATTEMPT_REAPING || !a->worker) {
                attempt_free(a);
                return 0;
        }

        c = a->worker->slot->generation->config;
        if (read(a->error_fd, &error, sizeof(error)) == (ssize_t) sizeof(error) && error > 0)
                attempt_finishf(a, -error, "cannot run %s: %s", c->probe_exec_path, strerror(error));
        else if (si->si_code == CLD_EXITED)
                attempt_finishf(a, si->si_status == 0 ? 0 : -EPROTO, "exited with status %d", si->si_status);
        else
                attempt_finishf(a, -EPROTO, "killed by %s", signal_name(si->si_status) ?: "a signal");
        return 0;
}

static int exec_start(ProbeAttempt *a, Worker *w, const Config *c) {
        _cleanup_strv_free_ char **env = NULL;
        char address[SOCKET_ADDRESS_STRING_MAX];
        SocketAddress target;
        size_t index;
        int r;

        r = probe_exec_environment(w, a->runner->host.service_name,
                                   probe_target(c, &index, &target) >= 0
                                           ? probe_target_format(&target, address, sizeof(address))
                                           : NULL,
                                   &env);
        if (r < 0)
                return r;
        r = probe_exec_spawn(c, env, &a->pid, &a->pidfd, &a->error_fd);
        if (r < 0)
                return attempt_fail_later(a, r, "cannot start %s: %s", c->probe_exec_path, strerror(-r));
        a->state = ATTEMPT_RUNNING;
        r = sd_event_add_child_pidfd(a->runner->host.event, &a->child, a->pidfd, WEXITED, on_child, a);
        if (r < 0) {
                (void) kill(-a->pid, SIGKILL);
                (void) kill(a->pid, SIGKILL);
                /* Nobody else would reap it; it is gone at once after SIGKILL. */
                (void) waitpid(a->pid, NULL, 0);
                return r;
        }
        return 0;
}

/* ---- attempts ---- */

static int on_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        ProbeAttempt *a = userdata;
        char span[FORMAT_TIMESPAN_MAX], shown[48];

        format_timespan(span, sizeof(span), a->timeout, USEC_PER_MSEC);
        switch (a->state) {
        case ATTEMPT_CONNECTING:
                attempt_finishf(a, -ETIMEDOUT, "not connected within %s", span);
                break;
        case ATTEMPT_SENDING:
                attempt_finishf(a, -ETIMEDOUT, "the request was not taken within %s", span);
                break;
        case ATTEMPT_READING:
                if (a->n_answer > 0)
                        attempt_finishf(a, -ETIMEDOUT, "no complete status line within %s: \"%s\"", span,
                                        probe_sanitize(a->answer, a->n_answer, shown, sizeof(shown)));
                else
                        attempt_finishf(a, -ETIMEDOUT, "no answer within %s", span);
                break;
        default:
                attempt_finishf(a, -ETIMEDOUT, "did not exit within %s (killed)", span);
                break;
        }
        return 0;
}

int probe_runner_start(ProbeRunner *pr, Worker *w) {
        const Config *c = w->slot->generation->config;
        ProbeAttempt *a;
        int r;

        if (c->probe == PROBE_NONE)
                return -EINVAL;
        if (find_attempt(pr, w))
                return -EBUSY;

        a = calloc(1, sizeof(ProbeAttempt));
        if (!a)
                return -ENOMEM;
        *a = (ProbeAttempt) {
                .runner = pr,
                .worker = w,
                .kind = c->probe,
                .state = ATTEMPT_CONNECTING,
                .timeout = c->probe_timeout,
                .fd = -EBADF,
                .pidfd = -EBADF,
                .error_fd = -EBADF,
        };
        LIST_INSERT_HEAD(&pr->attempts, a, link);
        pr->n_attempts++;

        r = sd_event_add_time_relative(pr->host.event, &a->timer, CLOCK_MONOTONIC, a->timeout, USEC_PER_MSEC,
                                       on_timeout, a);
        if (r >= 0)
                r = a->kind == PROBE_EXEC ? exec_start(a, w, c) : connect_start(a, w, c);
        if (r < 0) {
                a->worker = NULL; /* nothing is reported */
                attempt_end(a);
                return r;
        }
        return 0;
}

void probe_runner_cancel(ProbeRunner *pr, Worker *w) {
        ProbeAttempt *a;

        if (!pr)
                return;
        a = find_attempt(pr, w);
        if (a) {
                a->worker = NULL;
                attempt_end(a);
        }
}

size_t probe_runner_count(ProbeRunner *pr) {
        return pr ? pr->n_attempts : 0;
}

ProbeRunner *probe_runner_free(ProbeRunner *pr) {
        if (!pr)
                return NULL;
        while (!LIST_EMPTY(&pr->attempts)) {
                ProbeAttempt *a = LIST_FIRST(&pr->attempts);
                /* rpsupd is going away: kill what runs; whoever inherits it reaps it. */
                if (a->child)
                        (void) kill(-a->pid, SIGKILL);
                attempt_free(a);
        }
        free(pr);
        return NULL;
}
