/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-metrics-http: answers one HTTP request, GET /metrics, with the metrics of every rpsup service on the
 * host, in the Prometheus text exposition format. systemd starts it for each connection to
 * rpsup-metrics.socket (Accept=yes), with the connection as fd 3 (LISTEN_FDS), or as stdin (inetd style,
 * StandardInput=socket). Like rpsupctl, it asks each rpsupd through its control socket (GetMetrics, which
 * any user may call). Every step is bounded: the request's size and time, the wait for the services, the
 * time to send the answer. */

#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "http-request.h"
#include "log.h"
#include "metrics-fetch.h"
#include "metrics-merge.h"
#include "prometheus-label.h"
#include "rpsup-protocol.h"
#include "service-list.h"
#include "strv.h"
#include "time-util.h"

/* The whole request (up to the end of its head) must arrive within this. */
#define REQUEST_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* All services together must answer within this (Prometheus' scrape_timeout is 10 s by default). */
#define FETCH_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* The client must take the answer within this. */
#define SEND_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* After the answer, what the client still sends is read and dropped for this long (up to LINGER_BYTES), so
 * that closing with unread data does not reset the connection before the client has read the answer. */
#define LINGER_USEC (2 * USEC_PER_SEC)
#define LINGER_BYTES (256U * 1024U)

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

static const char *arg_runtime_dir;

/* The connection systemd passed: fd 3 (LISTEN_FDS), or stdin. */
static int connection_fd(void) {
        int n, fd, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "Cannot read LISTEN_FDS: %m");
        if (n > 1)
                return log_error_errno(-EINVAL, "Got %d sockets, expected one connection: start rpsup-metrics-http "
                                       "from a socket unit with Accept=yes (rpsup-metrics.socket).", n);
        fd = n == 1 ? SD_LISTEN_FDS_START : STDIN_FILENO;
        r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0);
        if (r <= 0)
                return log_error_errno(r < 0 ? r : -ENOTSOCK, "%s is not a connected stream socket: start "
                                       "rpsup-metrics-http from a socket unit with Accept=yes "
                                       "(rpsup-metrics.socket).", n == 1 ? "fd 3 (LISTEN_FDS)" : "stdin");
        if (n == 1 && (r = fd_set_cloexec(fd, true)) < 0)
                return log_error_errno(r, "Cannot set FD_CLOEXEC on the connection: %m");
        r = fd_set_nonblock(fd, true);
        if (r < 0)
                return log_error_errno(r, "Cannot make the connection non-blocking: %m");
        return fd;
}

/* Waits until fd is ready for `events` or the deadline has passed: 1 ready, 0 deadline, negative errno. */
static int wait_fd(int fd, short events, usec_t deadline) {
        for (;;) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p = { .fd = fd, .events = events };
                int r;

                if (now >= deadline)
                        return 0;
                r = poll(&p, 1, (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 1;
        }
}

/* Reads the request's head. Returns the status to answer, or a negative errno when there is no one to
 * answer (the client went away without a byte, or the connection broke). */
static int read_request(int fd, HttpRequest *req) {
        char buf[HTTP_REQUEST_HEAD_MAX];
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), REQUEST_TIMEOUT_USEC);
        size_t n = 0;

        for (;;) {
                ssize_t k;
                int r;

                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
                if (r == 0) {
                        log_debug("The request did not arrive within %" PRIu64 " s: answering 408.",
                                  REQUEST_TIMEOUT_USEC / USEC_PER_SEC);
                        return 408;
                }
                k = read(fd, buf + n, sizeof(buf) - n);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return n == 0 ? -ECONNRESET : 400; /* the client stopped sending mid-request */
                n += (size_t) k;
                r = http_request_parse(buf, n, req);
                if (r > 0)
                        return r;
        }
}

static int send_all(int fd, const char *p, size_t n, usec_t deadline) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r <= 0)
                                return r < 0 ? r : -ETIMEDOUT;
                        continue;
                }
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Sends the answer, then reads and drops what the client still sends until it closes (bounded). */
static int respond(int fd, int status, const char *content_type, const char *body, size_t size, bool with_body) {
        usec_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), SEND_TIMEOUT_USEC);
        char head[512], drop[4096];
        size_t dropped = 0;
        int n, r;

        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "Connection: close\r\n"
                     "\r\n",
                     status, http_status_reason(status), content_type, size,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
        r = send_all(fd, head, (size_t) n, deadline);
        if (r >= 0 && with_body)
                r = send_all(fd, body, size, deadline);
        if (r < 0)
                return log_debug_errno(r, "Cannot send the answer (%d): %m", status);

        (void) shutdown(fd, SHUT_WR);
        deadline = usec_add(now_usec(CLOCK_MONOTONIC), LINGER_USEC);
        while (dropped < LINGER_BYTES && wait_fd(fd, POLLIN, deadline) > 0) {
                ssize_t k = read(fd, drop, sizeof(drop));
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k <= 0)
                        break;
                dropped += (size_t) k;
        }
        return 0;
}

/* An error's answer; to HEAD (as far as the request was read) without its body. */
static int respond_error(int fd, int status, HttpMethod method) {
        char body[128];
        int n = snprintf(body, sizeof(body), "%d %s\n", status, http_status_reason(status));

        return respond(fd, status, "text/plain; charset=utf-8", body, (size_t) n, method != HTTP_METHOD_HEAD);
}

/* The exporter's own families: which services answered, and how long it took. */
static int write_own_metrics(FILE *f, const ServiceMetrics *results, size_t n, usec_t took) {
        fputs("# HELP rpsup_exporter_service_up Whether the service's rpsupd answered this scrape (1) or not (0: "
              "its metrics are missing).\n"
              "# TYPE rpsup_exporter_service_up gauge\n", f);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *label = prometheus_label_value(results[i].name);
                if (!label)
                        return -ENOMEM;
                fprintf(f, "rpsup_exporter_service_up{service=\"%s\"} %d\n", label, results[i].text ? 1 : 0);
        }
        fprintf(f, "# HELP rpsup_exporter_scrape_duration_seconds How long asking all services took.\n"
                   "# TYPE rpsup_exporter_scrape_duration_seconds gauge\n"
                   "rpsup_exporter_scrape_duration_seconds %.6f\n", (double) took / 1e6);
        return 0;
}

/* The metrics of every service, merged family by family, and the exporter's own. */
static int collect(char **ret, size_t *ret_size) {
        _cleanup_(metrics_merge_freep) MetricsMerge *merge = metrics_merge_new();
        _cleanup_free_ ServiceMetrics *results = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *own = NULL, *out = NULL;
        usec_t begin = now_usec(CLOCK_MONOTONIC);
        size_t n, own_size = 0, out_size = 0;
        FILE *f;
        int r;

        if (!merge)
                return log_oom();
        r = service_list(arg_runtime_dir, &names);
        if (r < 0)
                return log_error_errno(r, "Cannot read the runtime directory %s: %m; answering 500.", arg_runtime_dir);
        n = strv_length(names);
        results = calloc(MAX(n, 1u), sizeof(ServiceMetrics));
        if (!results)
                return log_oom();
        for (size_t i = 0; i < n; i++)
                results[i].name = names[i];
        r = metrics_fetch(arg_runtime_dir, results, n, FETCH_TIMEOUT_USEC);
        if (r < 0) {
                service_metrics_done(results, n);
                return log_error_errno(r, "Cannot ask the services for their metrics: %m; answering 500.");
        }

        for (size_t i = 0; i < n && r >= 0; i++) {
                if (!results[i].text) {
                        log_warning_errno(results[i].error, "rpsupd of \"%s\" did not answer: %m. Its metrics are "
                                          "left out (rpsup_exporter_service_up 0).", results[i].name);
                        continue;
                }
                r = metrics_merge_add(merge, results[i].text);
                if (r > 0)
                        log_warning("%d samples of \"%s\" left out: their family has another TYPE in the metrics of "
                                    "another service (another version of rpsupd?).", r, results[i].name);
        }
        if (r >= 0) {
                f = open_memstream(&own, &own_size);
                if (!f)
                        r = -ENOMEM;
                else {
                        r = write_own_metrics(f, results, n, now_usec(CLOCK_MONOTONIC) - begin);
                        if (fclose(f) != 0 && r >= 0)
                                r = -ENOMEM;
                }
        }
        service_metrics_done(results, n);
        if (r >= 0)
                r = metrics_merge_add(merge, own);
        if (r < 0)
                return log_oom();

        f = open_memstream(&out, &out_size);
        if (!f)
                return log_oom();
        metrics_merge_write(merge, f);
        if (fclose(f) != 0)
                return log_oom();
        *ret = TAKE_PTR(out);
        *ret_size = out_size;
        return 0;
}

static void help(void) {
        printf("rpsup-metrics-http [OPTIONS]\n\n"
               "Answer one HTTP request for /metrics on the connection systemd passes (fd 3 with LISTEN_FDS,\n"
               "or stdin) with the Prometheus metrics of every rpsup service on this host.\n"
               "Started by rpsup-metrics.socket (Accept=yes) for each connection.\n\n"
               "Options:\n"
               "     --runtime-dir DIR Where services' runtime directories are (default: $RPSUP_RUNTIME_DIR\n"
               "                       or %s)\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n",
               RPSUP_RUNTIME_PARENT_DEFAULT);
}

int main(int argc, char *argv[]) {
        enum { ARG_RUNTIME_DIR = 0x100, ARG_VERSION };
        static const struct option options[] = {
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_free_ char *body = NULL;
        _cleanup_close_ int fd = -EBADF;
        HttpRequest req = {};
        size_t size = 0;
        int c, status;

        log_setup("rpsup-metrics-http");
        arg_runtime_dir = getenv("RPSUP_RUNTIME_DIR");
        if (isempty(arg_runtime_dir))
                arg_runtime_dir = RPSUP_RUNTIME_PARENT_DEFAULT;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("rpsup-metrics-http %s\n", RPSUP_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "rpsup-metrics-http: takes no arguments. See rpsup-metrics-http --help.\n");
                return 2;
        }

        fd = connection_fd();
        if (fd < 0)
                return EXIT_FAILURE;

        status = read_request(fd, &req);
        if (status < 0)
                return EXIT_SUCCESS; /* the client went away: nobody to answer */
        if (status != 200) {
                log_debug("Answering %d %s.", status, http_status_reason(status));
                (void) respond_error(fd, status, req.method);
                return EXIT_SUCCESS;
        }
        if (collect(&body, &size) < 0) {
                (void) respond_error(fd, 500, req.method);
                return EXIT_FAILURE;
        }
        (void) respond(fd, 200, CONTENT_TYPE_METRICS, body, size, req.method == HTTP_METHOD_GET);
        return EXIT_SUCCESS;
}
