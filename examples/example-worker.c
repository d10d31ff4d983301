/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-example-worker: a small socket-activated server, as any rpsup worker is. It takes its listeners
 * from LISTEN_FDS (sd_listen_fds_with_names), says READY=1, and answers every connection (or datagram)
 * with one line naming itself:
 *
 *     generation=3 pid=1234 worker=0
 *
 * A request starting with "GET " gets the same line as an HTTP/1.0 response, so curl works too. On
 * SIGTERM (or SIGINT) it stops accepting, finishes the connections it has, and exits 0.
 *
 * Options for trying failure modes: --fail-start (exit 1 before READY=1), --ready-delay MS,
 * --reply-delay MS, --ignore-sigterm, --no-watchdog (never send WATCHDOG=1), --http-status CODE (says
 * READY=1, but answers every GET with that status: an application that is up and broken), --exit-after MS
 * (says READY=1, then exits with status 3 at the first moment after MS without a connection open: a crash
 * between requests), --slow-request MS (a request line starting with "SLOW" is answered in full after MS
 * milliseconds, during which the worker is busy with it alone: it accepts and serves nothing else, as a
 * single-threaded daemon busy with one long request would), --exit-on-term (on SIGTERM or SIGINT exit 0 at
 * once, dropping the connections it has: a daemon without a graceful stop). */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define CONNECTIONS_MAX 4096
#define REQUEST_MAX 4096

typedef struct Connection {
        int fd;
        size_t n;
        char buf[REQUEST_MAX];
        struct timespec reply_at; /* with --reply-delay */
        bool replying;
} Connection;

static int arg_ready_delay_ms;
static int arg_reply_delay_ms;
static bool arg_fail_start;
static bool arg_ignore_sigterm;
static bool arg_no_watchdog;
static int arg_http_status = 200;
static int arg_exit_after_ms = -1;
static int arg_slow_request_ms;
static bool arg_exit_on_term;

static int epfd = -1;
static unsigned n_connections;
static char identity[128];

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "ready-delay", required_argument, NULL, 'r' },
                { "reply-delay", required_argument, NULL, 'd' },
                { "fail-start", no_argument, NULL, 'f' },
                { "ignore-sigterm", no_argument, NULL, 'i' },
                { "no-watchdog", no_argument, NULL, 'w' },
                { "http-status", required_argument, NULL, 's' },
                { "exit-after", required_argument, NULL, 'x' },
                { "slow-request", required_argument, NULL, 'S' },
                { "exit-on-term", no_argument, NULL, 'e' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        arg_ready_delay_ms = atoi(optarg);
                        break;
                case 'd':
                        arg_reply_delay_ms = atoi(optarg);
                        break;
                case 'f':
                        arg_fail_start = true;
                        break;
                case 'i':
                        arg_ignore_sigterm = true;
                        break;
                case 'w':
                        arg_no_watchdog = true;
                        break;
                case 's':
                        arg_http_status = atoi(optarg);
                        if (arg_http_status < 100 || arg_http_status > 599)
                                return -1;
                        break;
                case 'x':
                        arg_exit_after_ms = atoi(optarg);
                        break;
                case 'S':
                        arg_slow_request_ms = atoi(optarg);
                        break;
                case 'e':
                        arg_exit_on_term = true;
                        break;
                case 'h':
                        printf("rpsup-example-worker [--fail-start] [--ready-delay MS] [--reply-delay MS]\n"
                               "                     [--ignore-sigterm] [--no-watchdog] [--http-status CODE]\n"
                               "                     [--exit-after MS] [--slow-request MS] [--exit-on-term]\n"
                               "Run it under rpsupd (or any socket activation); see rpsupd(8).\n");
                        exit(0);
                default:
                        return -1;
                }
        return 0;
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int reply(char *out, size_t l, const char *request, size_t n) {
        if (n >= 4 && memcmp(request, "GET ", 4) == 0)
                return snprintf(out, l,
                                "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                                "Connection: close\r\n\r\n%s\n", arg_http_status,
                                arg_http_status == 200 ? "OK" : arg_http_status < 400 ? "Other" : "Error",
                                strlen(identity) + 1, identity);
        return snprintf(out, l, "%s\n", identity);
}

static void connection_close(Connection *c) {
        (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c);
        n_connections--;
}

static void connection_answer(Connection *c) {
        char out[512];
        int n = reply(out, sizeof(out), c->buf, c->n);

        /* The reply is small: one write fits into any socket buffer. */
        (void) !send(c->fd, out, (size_t) n, MSG_NOSIGNAL);
        /* Half-close and let the client close first, so no unread request byte turns our close into an RST. */
        (void) shutdown(c->fd, SHUT_WR);
        c->replying = true;
}

static void connection_readable(Connection *c) {
        for (;;) {
                ssize_t k;

                if (c->replying) {
                        char sink[512];
                        k = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
                        if (k > 0)
                                continue;
                        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                                return;
                        connection_close(c); /* EOF or error: the client is done */
                        return;
                }
                k = recv(c->fd, c->buf + c->n, sizeof(c->buf) - 1 - c->n, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (k < 0) {
                        connection_close(c);
                        return;
                }
                c->n += (size_t) k;
                if (k == 0 || memchr(c->buf, '\n', c->n) || c->n >= sizeof(c->buf) - 1) {
                        if (arg_reply_delay_ms > 0)
                                sleep_ms(arg_reply_delay_ms);
                        /* Busy with this request alone: the event loop waits, nothing else is accepted or
                         * served, and a stop request waits until the answer is out. */
                        if (arg_slow_request_ms > 0 && c->n >= 4 && memcmp(c->buf, "SLOW", 4) == 0)
                                sleep_ms(arg_slow_request_ms);
                        connection_answer(c);
                        if (k == 0) {
                                connection_close(c);
                                return;
                        }
                }
        }
}

static void accept_all(int lfd) {
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                Connection *c;

                if (fd < 0) {
                        /* EAGAIN: nothing more. EINVAL: the listener was shut down by the supervisor (migrate):
                         * it is not ours to serve any more. */
                        if (errno == EINVAL)
                                (void) epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL);
                        return;
                }
                if (n_connections >= CONNECTIONS_MAX) {
                        close(fd);
                        continue;
                }
                c = calloc(1, sizeof(Connection));
                if (!c) {
                        close(fd);
                        continue;
                }
                c->fd = fd;
                n_connections++;
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        free(c);
                        n_connections--;
                        continue;
                }
                connection_readable(c);
        }
}

static void datagram(int fd) {
        for (;;) {
                char in[REQUEST_MAX], out[512];
                struct sockaddr_storage sa;
                socklen_t l = sizeof(sa);
                ssize_t k = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *) &sa, &l);
                int n;

                if (k < 0)
                        return;
                n = reply(out, sizeof(out), in, (size_t) k);
                (void) sendto(fd, out, (size_t) n, MSG_DONTWAIT, (struct sockaddr *) &sa, l);
        }
}

int main(int argc, char *argv[]) {
        int n_fds, sfd, tfd = -1;
        uint64_t watchdog_usec = 0;
        bool stopping = false, exiting = false;
        sigset_t mask;
        /* Tags in epoll data: small integers for listeners, pointers for connections. */
        enum { TAG_SIGNAL = 1, TAG_TIMER = 2, TAG_EXIT = 3, TAG_LISTENER_BASE = 16 };

        if (parse_argv(argc, argv) < 0)
                return 2;

        snprintf(identity, sizeof(identity), "generation=%s pid=%d worker=%s",
                 getenv("RPSUP_GENERATION") ?: "0", (int) getpid(), getenv("RPSUP_WORKER") ?: "0");

        if (arg_fail_start) {
                fprintf(stderr, "rpsup-example-worker: failing on purpose (--fail-start)\n");
                return 1;
        }

        n_fds = sd_listen_fds(true);
        if (n_fds <= 0) {
                fprintf(stderr, "rpsup-example-worker: no listening sockets passed (LISTEN_FDS); run me under "
                        "rpsupd or systemd socket activation\n");
                return 1;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (sfd < 0 || epfd < 0)
                return 1;
        struct epoll_event sev = { .events = EPOLLIN, .data.u64 = TAG_SIGNAL };
        epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &sev);

        for (int i = 0; i < n_fds; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                /* Every worker shares the listener: another one may take the connection first, so accept()
                 * must not block. (O_NONBLOCK is shared with the other holders; none of them minds.) */
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                /* EPOLLEXCLUSIVE: a connection on a shared listener (handoff) wakes one of the workers
                 * waiting on it, not all of them. */
                struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
                                          .data.u64 = TAG_LISTENER_BASE + (uint64_t) i };
                epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }

        if (!arg_no_watchdog && sd_watchdog_enabled(false, &watchdog_usec) > 0) {
                struct itimerspec its = {};
                uint64_t half = watchdog_usec / 2;
                its.it_interval.tv_sec = (time_t) (half / 1000000);
                its.it_interval.tv_nsec = (long) (half % 1000000) * 1000;
                its.it_value = its.it_interval;
                tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                timerfd_settime(tfd, 0, &its, NULL);
                struct epoll_event tev = { .events = EPOLLIN, .data.u64 = TAG_TIMER };
                epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
        }

        if (arg_ready_delay_ms > 0)
                sleep_ms(arg_ready_delay_ms);
        sd_notifyf(false, "READY=1\nSTATUS=Serving as %s", identity);
        if (arg_exit_after_ms >= 0) {
                struct itimerspec its = { .it_value.tv_sec = arg_exit_after_ms / 1000,
                                          .it_value.tv_nsec = (long) (arg_exit_after_ms % 1000) * 1000000L + 1 };
                int xfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                struct epoll_event xev = { .events = EPOLLIN, .data.u64 = TAG_EXIT };
                if (xfd < 0 || timerfd_settime(xfd, 0, &its, NULL) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, xfd, &xev) < 0)
                        return 1;
        }

        for (;;) {
                struct epoll_event events[64];
                int n;

                if (stopping && n_connections == 0)
                        break;
                if (exiting && n_connections == 0) {
                        fprintf(stderr, "rpsup-example-worker: exiting on purpose (--exit-after)\n");
                        return 3;
                }
                n = epoll_wait(epfd, events, 64, -1);
                if (n < 0 && errno != EINTR)
                        return 1;
                /* A stop request first: after it, nothing more is accepted, even if it arrived together
                 * with new connections. */
                for (int i = 0; i < n; i++)
                        if (events[i].data.u64 == TAG_SIGNAL && i > 0) {
                                struct epoll_event t = events[0];
                                events[0] = events[i];
                                events[i] = t;
                        }
                for (int i = 0; i < n; i++) {
                        uint64_t tag = events[i].data.u64;

                        if (tag == TAG_SIGNAL) {
                                struct signalfd_siginfo si;
                                if (read(sfd, &si, sizeof(si)) != sizeof(si) || arg_ignore_sigterm)
                                        continue;
                                if (arg_exit_on_term)
                                        return 0; /* no graceful stop: what is open is dropped */
                                /* Stop accepting; what is queued stays with the supervisor's listener. */
                                stopping = true;
                                sd_notify(false, "STOPPING=1");
                                for (int j = 0; j < n_fds; j++) {
                                        epoll_ctl(epfd, EPOLL_CTL_DEL, SD_LISTEN_FDS_START + j, NULL);
                                        close(SD_LISTEN_FDS_START + j);
                                }
                        } else if (tag == TAG_EXIT) {
                                exiting = true;
                        } else if (tag == TAG_TIMER) {
                                uint64_t expirations;
                                (void) !read(tfd, &expirations, sizeof(expirations));
                                sd_notify(false, "WATCHDOG=1");
                        } else if (tag >= TAG_LISTENER_BASE && tag < TAG_LISTENER_BASE + (uint64_t) n_fds) {
                                int fd = SD_LISTEN_FDS_START + (int) (tag - TAG_LISTENER_BASE);
                                if (stopping)
                                        continue;
                                if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0)
                                        datagram(fd);
                                else
                                        accept_all(fd);
                        } else
                                connection_readable(events[i].data.ptr);
                }
        }
        return 0;
}
