/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ReadyProbe= (supervisor/readiness-probe*.c): what a probe connects to and how it reads an HTTP status line,
 * then whole attempts on a real event loop, against a listener this test serves and commands it runs, with a
 * fake strategy that records how probe connections are aimed. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"
#include "readiness-probe-http.h"
#include "readiness-probe.h"
#include "strategy.h"

/* ---- the status line ---- */

static void check_status(const char *answer, bool eof, int want_r, unsigned want_code, const char *want_what) {
        char what[PROBE_WHAT_MAX] = "";
        unsigned code = 0;
        int r = http_status_parse(answer, strlen(answer), eof, &code, what, sizeof(what));

        if (r != want_r || (want_what && !streq(what, want_what)))
                print_error("\"%s\": r=%d what=\"%s\" (expected %d, \"%s\")\n", answer, r, what, want_r,
                            want_what ?: "");
        assert_int_equal(r, want_r);
        if (r > 0)
                assert_int_equal(code, want_code);
        if (want_what)
                assert_string_equal(what, want_what);
}

static void test_http_status_line(void **state) {
        check_status("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 1, 200, "HTTP 200 OK");
        check_status("HTTP/1.0 500 Internal Server Error\r\n", false, 1, 500, "HTTP 500 Internal Server Error");
        check_status("HTTP/1.1 301 Moved Permanently\n", false, 1, 301, "HTTP 301 Moved Permanently");
        check_status("HTTP/2 204 \r\n", false, 1, 204, "HTTP 204");
        check_status("HTTP/1.1 404\r\n", false, 1, 404, "HTTP 404");
        /* The end of the answer ends the line too. */
        check_status("HTTP/1.1 503 Service Unavailable", true, 1, 503, "HTTP 503 Service Unavailable");

        /* More is needed: a line not ended yet, or the start of "HTTP/". */
        check_status("HTTP/1.1 20", false, 0, 0, NULL);
        check_status("HTT", false, 0, 0, NULL);
        check_status("", false, 0, 0, NULL);

        /* Not HTTP, as soon as that is clear. */
        check_status("SSH-2.0-OpenSSH_9.2\r\n", false, -EBADMSG, 0,
                     "an answer that is not HTTP: \"SSH-2.0-OpenSSH_9.2\"");
        check_status("generation=3 pid=1234 worker=0\n", false, -EBADMSG, 0, NULL);
        check_status("X", false, -EBADMSG, 0, "an answer that is not HTTP: \"X\"");
        check_status("", true, -EBADMSG, 0, "no answer");
        check_status("HTTP/1.1 2000 OK\r\n", false, -EBADMSG, 0, NULL);
        check_status("HTTP/1.1 099 Low\r\n", false, -EBADMSG, 0, NULL);
        check_status("HTTP/1.1 20x OK\r\n", false, -EBADMSG, 0, NULL);
        check_status("HTTP/x 200 OK\r\n", false, -EBADMSG, 0, NULL);
        check_status("HTTP/1.1\r\n", false, -EBADMSG, 0, NULL);
        check_status("HTTP/1.1 20", true, -EBADMSG, 0, "an answer that is not HTTP: \"HTTP/1.1 20\"");

        /* What it says is made printable and bounded. */
        check_status("HTTP/1.1 500 Bad\x01\xff\tthing\r\n", false, 1, 500, "HTTP 500 Bad???thing");
        check_status("\x01\x02SSH\r\n", false, -EBADMSG, 0, "an answer that is not HTTP: \"??SSH\"");
        char line[600], what[PROBE_WHAT_MAX];
        unsigned code;
        snprintf(line, sizeof(line), "HTTP/1.1 502 %0500d\r\n", 0);
        assert_int_equal(http_status_parse(line, strlen(line), false, &code, what, sizeof(what)), 1);
        assert_true(strlen(what) < PROBE_WHAT_MAX);
        assert_non_null(strstr(what, "..."));
        assert_int_equal(strncmp(what, "HTTP 502 000", 12), 0);

        assert_false(http_status_passes(199));
        assert_true(http_status_passes(200));
        assert_true(http_status_passes(302));
        assert_true(http_status_passes(399));
        assert_false(http_status_passes(400));
        assert_false(http_status_passes(500));
}

static void test_sanitize(void **state) {
        char buf[8];

        assert_string_equal(probe_sanitize("abc", 3, buf, sizeof(buf)), "abc");
        assert_string_equal(probe_sanitize("a\nb\x80", 4, buf, sizeof(buf)), "a?b?");
        assert_string_equal(probe_sanitize("abcdefgh", 8, buf, sizeof(buf)), "abcd...");
        assert_string_equal(probe_sanitize("abcdefg", 7, buf, sizeof(buf)), "abcdefg");
        assert_string_equal(probe_sanitize("", 0, buf, sizeof(buf)), "");
}

/* ---- what a probe connects to ---- */

static Config *config_with(const char *const *listen, const int *types) {
        Config *c = calloc(1, sizeof(Config));
        size_t n = 0;

        assert_non_null(c);
        while (listen[n])
                n++;
        c->n_ref = 1;
        c->listen = calloc(n, sizeof(ListenSpec));
        assert_non_null(c->listen);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(socket_address_parse(listen[i], types[i], &c->listen[i].address), 0);
        c->n_listen = n;
        return c;
}

static void config_with_free(Config *c) {
        free(c->listen);
        free(c);
}

static void check_target(const char *const *listen, const int *types, int want_r, size_t want_index,
                         const char *want_address) {
        Config *c = config_with(listen, types);
        char shown[SOCKET_ADDRESS_STRING_MAX];
        SocketAddress a;
        size_t index = 99;
        int r = probe_target(c, &index, &a);

        assert_int_equal(r, want_r);
        if (r >= 0) {
                assert_int_equal(index, want_index);
                assert_string_equal(probe_target_format(&a, shown, sizeof(shown)), want_address);
                assert_int_equal(a.type, SOCK_STREAM);
        }
        config_with_free(c);
}

static void test_target(void **state) {
        static const int S = SOCK_STREAM, D = SOCK_DGRAM;

        /* A wildcard address is reached on loopback, of the same family. */
        check_target((const char *[]) { "8080", NULL }, (int[]) { S }, 0, 0, "[::1]:8080");
        check_target((const char *[]) { "[::]:8080", NULL }, (int[]) { S }, 0, 0, "[::1]:8080");
        check_target((const char *[]) { "0.0.0.0:80", NULL }, (int[]) { S }, 0, 0, "127.0.0.1:80");
        /* Any other address as it is. */
        check_target((const char *[]) { "10.1.2.3:80", NULL }, (int[]) { S }, 0, 0, "10.1.2.3:80");
        check_target((const char *[]) { "127.0.0.2:80", NULL }, (int[]) { S }, 0, 0, "127.0.0.2:80");
        check_target((const char *[]) { "[fe80::1%1]:80", NULL }, (int[]) { S }, 0, 0, "[fe80::1%1]:80");
        check_target((const char *[]) { "/run/web.sock", NULL }, (int[]) { S }, 0, 0, "/run/web.sock");
        check_target((const char *[]) { "@web", NULL }, (int[]) { S }, 0, 0, "@web");
        /* The first stream listener; its index is that of the config's list. */
        check_target((const char *[]) { "5353", "127.0.0.1:53", "0.0.0.0:8080", "9090", NULL },
                     (int[]) { D, D, S, S }, 0, 2, "127.0.0.1:8080");
        check_target((const char *[]) { "5353", NULL }, (int[]) { D }, -ENOENT, 0, NULL);
}

static void check_request(const char *listen, const char *path, const char *want_host) {
        Config *c = config_with((const char *[]) { listen, NULL }, (int[]) { SOCK_STREAM });
        char *request = NULL, *want = NULL;
        SocketAddress a;
        size_t index, n;

        assert_int_equal(probe_target(c, &index, &a), 0);
        assert_int_equal(http_probe_request(path, &a, &request, &n), 0);
        assert_true(asprintf(&want, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rpsup-probe\r\nAccept: */*\r\n"
                                    "Connection: close\r\n\r\n", path, want_host) > 0);
        assert_string_equal(request, want);
        assert_int_equal(n, strlen(want));
        free(request);
        free(want);
        config_with_free(c);
}

static void test_http_request(void **state) {
        check_request("0.0.0.0:8080", "/healthz?deep=1", "127.0.0.1:8080");
        check_request("8080", "/", "[::1]:8080");
        /* A zone has no place in Host:. */
        check_request("[fe80::1%1]:80", "/", "[fe80::1]:80");
        check_request("/run/web.sock", "/status", "localhost");
}

/* ---- attempts on a real loop ---- */

typedef enum ServeMode {
        SERVE_HTTP_200,
        SERVE_HTTP_500,
        SERVE_GARBAGE,
        SERVE_CLOSE,       /* accept, then close at once */
        SERVE_NOTHING,     /* never accept */
        SERVE_SILENT,      /* accept, then say nothing */
} ServeMode;

static struct {
        sd_event *event;
        char dir[64];
        int listen_fd;
        uint16_t port;
        sd_event_source *accept_source;
        ServeMode mode;
        int accepted[8];
        size_t n_accepted;
        uint16_t accepted_port; /* the peer port of the last connection accepted */
        char request[1024];
        /* The fake strategy. */
        int aim_result;
        unsigned aims_on, aims_off;
        uint16_t aim_port;
        size_t aim_index;
        Slot *aim_slot;
        /* Outcomes. */
        unsigned n_done;
        Worker *done_worker;
        int done_r;
        char done_what[PROBE_WHAT_MAX];
} t;

static int fake_probe_aim(Strategy *st, Slot *slot, size_t listen_index, uint16_t port, bool on) {
        if (t.aim_result < 0 && on)
                return t.aim_result;
        if (on) {
                t.aims_on++;
                t.aim_port = port;
                t.aim_index = listen_index;
                t.aim_slot = slot;
        } else {
                /* Cleared as it was set. */
                assert_int_equal(port, t.aim_port);
                assert_int_equal(listen_index, t.aim_index);
                assert_ptr_equal(slot, t.aim_slot);
                t.aims_off++;
        }
        return 0;
}

static const StrategyOps fake_ops = { .probe_aim = fake_probe_aim };
static const StrategyOps fake_ops_no_aim = {};
static Strategy strategy = { .kind = STRATEGY_MIGRATE, .ops = &fake_ops };

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct sockaddr_in peer;
        socklen_t l = sizeof(peer);
        int c = accept4(fd, (struct sockaddr *) &peer, &l, SOCK_CLOEXEC);
        const char *answer = NULL;

        if (c < 0)
                return 0;
        t.accepted_port = peer.sin_family == AF_INET ? ntohs(peer.sin_port) : 0;
        assert_true(t.n_accepted < ELEMENTSOF(t.accepted));
        t.accepted[t.n_accepted++] = c;
        switch (t.mode) {
        case SERVE_HTTP_200:
                answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                break;
        case SERVE_HTTP_500:
                answer = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
                break;
        case SERVE_GARBAGE:
                answer = "hello\n";
                break;
        case SERVE_CLOSE:
                t.accepted[--t.n_accepted] = safe_close(c);
                return 0;
        default:
                return 0;
        }
        /* At once, not after reading the request: the probe runs on this very loop. */
        assert_int_equal(send(c, answer, strlen(answer), MSG_NOSIGNAL), (ssize_t) strlen(answer));
        return 0;
}

/* What the last connection accepted received (the probe is done: all of it is there). */
static const char *last_request(void) {
        ssize_t n;

        assert_true(t.n_accepted > 0);
        n = recv(t.accepted[t.n_accepted - 1], t.request, sizeof(t.request) - 1, MSG_DONTWAIT);
        t.request[n > 0 ? n : 0] = 0;
        return t.request;
}

static void on_done(void *userdata, Worker *w, int r, const char *what) {
        t.n_done++;
        t.done_worker = w;
        t.done_r = r;
        snprintf(t.done_what, sizeof(t.done_what), "%s", what);
}

static int setup(void **state) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        sigset_t mask;

        /* As in rpsupd: children are watched on the loop. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -1;
        (void) signal(SIGPIPE, SIG_IGN);
        snprintf(t.dir, sizeof(t.dir), "/tmp/rpsup-test-probe-XXXXXX");
        if (!mkdtemp(t.dir))
                return -1;
        if (sd_event_new(&t.event) < 0)
                return -1;
        t.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (t.listen_fd < 0 || bind(t.listen_fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            getsockname(t.listen_fd, (struct sockaddr *) &a, &l) < 0 || listen(t.listen_fd, 16) < 0)
                return -1;
        t.port = ntohs(a.sin_port);
        return sd_event_add_io(t.event, &t.accept_source, t.listen_fd, EPOLLIN, on_accept, NULL) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        char cmd[128];

        sd_event_source_disable_unref(t.accept_source);
        safe_close(t.listen_fd);
        sd_event_unref(t.event);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", t.dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Before each test: a server in `mode`, no outcome yet, aims accepted. */
static void reset(ServeMode mode) {
        int c;

        for (size_t i = 0; i < t.n_accepted; i++)
                safe_close(t.accepted[i]);
        t.n_accepted = 0;
        /* What an earlier test left in the accept queue. */
        while ((c = accept4(t.listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
                safe_close(c);
        assert_int_equal(sd_event_source_set_enabled(t.accept_source,
                                                     mode == SERVE_NOTHING ? SD_EVENT_OFF : SD_EVENT_ON), 0);
        t.mode = mode;
        t.aim_result = 0;
        t.aims_on = t.aims_off = 0;
        t.aim_port = 0;
        t.accepted_port = 0;
        t.request[0] = 0;
        t.n_done = 0;
        t.done_worker = NULL;
        t.done_r = 1;
        t.done_what[0] = 0;
        strategy.ops = &fake_ops;
}

typedef struct TestWorker {
        Config *config;
        Generation generation;
        Slot slot;
        Worker worker;
} TestWorker;

/* Worker 1 of generation 7 (pid 4242), whose config probes as `probe` says, connecting to the test's listener. */
static TestWorker *test_worker_listening(const char *probe, const char *timeout, const char *listen) {
        TestWorker *tw = calloc(1, sizeof(TestWorker));
        char *text = NULL, *error = NULL;

        assert_non_null(tw);
        assert_true(asprintf(&text, "[Service]\nExecStart=/bin/true\nReadyProbe=%s\nReadyProbeTimeoutSec=%s\n"
                                    "[Socket]\nListenDatagram=127.0.0.1:%u\nListenStream=%s\n",
                             probe, timeout, t.port, listen) > 0);
        if (config_parse_buffer(text, strlen(text), "/etc/rpsup/web.conf", "web", &tw->config, &error) < 0)
                fail_msg("%s", error);
        free(text);
        tw->generation = (Generation) { .id = 7, .config = tw->config, .state = GENERATION_STARTING };
        tw->slot = (Slot) { .generation = &tw->generation, .index = 1, .id = 11 };
        tw->worker = (Worker) { .slot = &tw->slot, .pid = 4242, .state = WORKER_STARTING };
        return tw;
}

static TestWorker *test_worker(const char *probe, const char *timeout) {
        char listen[32];

        snprintf(listen, sizeof(listen), "127.0.0.1:%u", t.port);
        return test_worker_listening(probe, timeout, listen);
}

static void test_worker_free(TestWorker *tw) {
        config_unref(tw->config);
        free(tw);
}

static ProbeRunner *runner(void) {
        ProbeRunner *pr = NULL;

        assert_int_equal(probe_runner_new(&(ProbeHost) {
                                                  .event = t.event,
                                                  .strategy = &strategy,
                                                  .service_name = "web",
                                                  .done = on_done,
                                          }, &pr), 0);
        return pr;
}

/* Runs the loop until `n` outcomes came and no attempt is left (or 10 s passed). */
static void run_until_done(ProbeRunner *pr, unsigned n) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;

        while ((t.n_done < n || probe_runner_count(pr) > 0) && now_usec(CLOCK_MONOTONIC) < deadline)
                assert_true(sd_event_run(t.event, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(t.n_done, n);
        assert_int_equal(probe_runner_count(pr), 0);
}

/* One attempt of `probe` against the server in `mode`: its outcome. */
static void check_attempt(const char *probe, ServeMode mode, const char *timeout, int want_r, const char *want_what) {
        TestWorker *tw = test_worker(probe, timeout);
        ProbeRunner *pr = runner();

        reset(mode);
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        /* Never reported from within the start. */
        assert_int_equal(t.n_done, 0);
        run_until_done(pr, 1);
        if ((want_r == 0) != (t.done_r == 0) || !strstr(t.done_what, want_what))
                print_error("%s: r=%d \"%s\" (expected %d, \"%s\")\n", probe, t.done_r, t.done_what, want_r, want_what);
        assert_ptr_equal(t.done_worker, &tw->worker);
        if (want_r == 0)
                assert_int_equal(t.done_r, 0);
        else
                assert_true(t.done_r < 0);
        assert_non_null(strstr(t.done_what, want_what));
        probe_runner_free(pr);
        test_worker_free(tw);
}

static void test_http_attempts(void **state) {
        check_attempt("http:/healthz", SERVE_HTTP_200, "2s", 0, "HTTP 200 OK");
        /* What the worker got: the request, from the aimed port, which was aimed at its slot and cleared. */
        assert_non_null(strstr(last_request(), "GET /healthz HTTP/1.1\r\n"));
        assert_non_null(strstr(t.request, "\r\nUser-Agent: rpsup-probe\r\n"));
        assert_non_null(strstr(t.request, "\r\nConnection: close\r\n"));
        assert_int_equal(t.aims_on, 1);
        assert_int_equal(t.aims_off, 1);
        assert_int_equal(t.aim_port, t.accepted_port);
        assert_int_equal(t.aim_index, 1); /* the ListenStream=, after a ListenDatagram= */

        check_attempt("http:/", SERVE_HTTP_500, "2s", -EPROTO, "HTTP 500 Internal Server Error");
        assert_int_equal(t.aims_off, 1);
        check_attempt("http:/", SERVE_GARBAGE, "2s", -EBADMSG, "an answer that is not HTTP: \"hello\"");
        /* Closed before or after the request came: "closed the connection without an answer" or "connection reset". */
        check_attempt("http:/", SERVE_CLOSE, "2s", -EBADMSG, "connection");
        check_attempt("http:/", SERVE_SILENT, "300ms", -ETIMEDOUT, "no answer within 300ms");
        assert_int_equal(t.aims_off, 1);
        check_attempt("http:/", SERVE_NOTHING, "300ms", -ETIMEDOUT, "no answer within 300ms");
        assert_int_equal(t.n_accepted, 0);
}

static void test_tcp_attempts(void **state) {
        /* Taken from the queue and answered, or closed: the worker handled it. */
        check_attempt("tcp", SERVE_GARBAGE, "2s", 0, "answered");
        assert_int_equal(t.aim_port, t.accepted_port);
        assert_int_equal(t.aims_off, 1);
        check_attempt("tcp", SERVE_CLOSE, "2s", 0, "closed the connection");
        /* Left in the accept queue, or accepted and ignored: nothing proves the worker serves. */
        check_attempt("tcp", SERVE_NOTHING, "300ms", -ETIMEDOUT, "no answer within 300ms");
        check_attempt("tcp", SERVE_SILENT, "300ms", -ETIMEDOUT, "no answer within 300ms");
}

static void test_aim(void **state) {
        TestWorker *tw = test_worker("http:/", "2s");
        ProbeRunner *pr = runner();

        /* A strategy that cannot aim (handoff): the probe goes on unaimed. */
        reset(SERVE_HTTP_200);
        strategy.ops = &fake_ops_no_aim;
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        run_until_done(pr, 1);
        assert_int_equal(t.done_r, 0);

        reset(SERVE_HTTP_200);
        t.aim_result = -EOPNOTSUPP;
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        run_until_done(pr, 1);
        assert_int_equal(t.done_r, 0);
        assert_int_equal(t.aims_off, 0);

        /* One that can but failed: unaimed, another worker could pass it; the attempt fails instead. */
        reset(SERVE_HTTP_200);
        t.aim_result = -ENOSPC;
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        run_until_done(pr, 1);
        assert_int_equal(t.done_r, -ENOSPC);
        assert_non_null(strstr(t.done_what, "cannot aim the probe at the worker"));
        assert_int_equal(t.n_accepted, 0);

        probe_runner_free(pr);
        test_worker_free(tw);
}

static void test_unix_socket(void **state) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        sd_event_source *source = NULL;
        ProbeRunner *pr = runner();
        TestWorker *tw;
        int fd;

        /* A socket path is connected as it is, and cannot be aimed. */
        snprintf(a.sun_path, sizeof(a.sun_path), "%s/web.sock", t.dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(sd_event_add_io(t.event, &source, fd, EPOLLIN, on_accept, NULL), 0);
        tw = test_worker_listening("http:/unix", "2s", a.sun_path);

        reset(SERVE_HTTP_200);
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        run_until_done(pr, 1);
        assert_int_equal(t.done_r, 0);
        assert_string_equal(t.done_what, "HTTP 200 OK");
        assert_non_null(strstr(last_request(), "GET /unix HTTP/1.1\r\nHost: localhost\r\n"));
        assert_int_equal(t.aims_on, 0);

        sd_event_source_disable_unref(source);
        safe_close(fd);
        probe_runner_free(pr);
        test_worker_free(tw);
}

static void test_refused(void **state) {
        TestWorker *tw;
        ProbeRunner *pr = runner();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        uint16_t port = t.port;

        /* A port nobody listens on. */
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        t.port = ntohs(a.sin_port);
        tw = test_worker("tcp", "2s");
        t.port = port;

        reset(SERVE_NOTHING);
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        run_until_done(pr, 1);
        assert_int_equal(t.done_r, -ECONNREFUSED);
        assert_non_null(strstr(t.done_what, "connection refused"));
        /* The aim is cleared however the attempt ends. */
        assert_int_equal(t.aims_on, 1);
        assert_int_equal(t.aims_off, 1);

        safe_close(fd);
        probe_runner_free(pr);
        test_worker_free(tw);
}

/* The pid a probe command wrote to NAME in the test's directory. */
static pid_t read_pid(const char *name) {
        char path[128], line[32] = "";
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", t.dir, name);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof(line), f));
        fclose(f);
        return (pid_t) atoi(line);
}

/* The process is gone, or a zombie (an orphan waits for whoever reaps it here): dead either way. */
static bool process_dies(pid_t pid) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                char path[64], stat[256] = "";
                FILE *f;

                snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
                f = fopen(path, "re");
                if (!f)
                        return true;
                (void) !fgets(stat, sizeof(stat), f);
                fclose(f);
                if (strstr(stat, ") Z "))
                        return true;
                usleep(10000);
        }
        return false;
}

static void test_exec_attempts(void **state) {
        char probe[512];

        check_attempt("exec:/bin/sh -c 'exit 0'", SERVE_NOTHING, "5s", 0, "exited with status 0");
        check_attempt("exec:/bin/sh -c 'exit 3'", SERVE_NOTHING, "5s", -EPROTO, "exited with status 3");
        check_attempt("exec:/bin/sh -c 'kill -TERM $$$$'", SERVE_NOTHING, "5s", -EPROTO, "killed by SIGTERM");
        /* The worker's variables; $VARS expand from them as in ExecStart=; stdin is /dev/null. */
        snprintf(probe, sizeof(probe),
                 "exec:/bin/sh -c 'test \"$RPSUP_SERVICE $RPSUP_GENERATION $RPSUP_WORKER $MAINPID\" = "
                 "\"web 7 1 4242\" && "
                 "test \"$RPSUP_PROBE_ADDRESS\" = 127.0.0.1:%u && test \"$$1\" = 1 && test ! -t 0 && "
                 "test -z \"$(cat)\" && test -z \"$LISTEN_FDS$NOTIFY_SOCKET\"' probe ${RPSUP_WORKER}", t.port);
        check_attempt(probe, SERVE_NOTHING, "5s", 0, "exited with status 0");
        /* A probe runs in a process group of its own: a timeout kills all of it. */
        snprintf(probe, sizeof(probe), "exec:/bin/sh -c 'sleep 30 & echo $$! > %s/child; wait'", t.dir);
        check_attempt(probe, SERVE_NOTHING, "500ms", -ETIMEDOUT, "did not exit within 500ms (killed)");
        assert_true(process_dies(read_pid("child")));
}

static void test_busy_and_cancel(void **state) {
        char probe[256];
        TestWorker *tw, *other;
        ProbeRunner *pr = runner();

        snprintf(probe, sizeof(probe), "exec:/bin/sh -c 'echo $$$$ > %s/probe; exec sleep 30'", t.dir);
        tw = test_worker(probe, "10s");
        other = test_worker("tcp", "10s");
        reset(SERVE_NOTHING);

        /* One attempt per worker. */
        assert_int_equal(probe_runner_start(pr, &tw->worker), 0);
        assert_int_equal(probe_runner_start(pr, &tw->worker), -EBUSY);
        assert_int_equal(probe_runner_start(pr, &other->worker), 0);
        assert_int_equal(probe_runner_count(pr), 2);

        /* Cancelled (the worker is gone): never reported; the command is killed and reaped on the loop. */
        char path[128];
        struct stat st = {};
        snprintf(path, sizeof(path), "%s/probe", t.dir);
        for (usec_t end = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
             (stat(path, &st) < 0 || st.st_size == 0) && now_usec(CLOCK_MONOTONIC) < end;)
                usleep(10000); /* until the command runs */
        probe_runner_cancel(pr, &tw->worker);
        probe_runner_cancel(pr, &other->worker);
        assert_int_equal(t.aims_off, 1);
        probe_runner_cancel(pr, &other->worker); /* nothing runs: nothing happens */
        run_until_done(pr, 0);
        assert_int_equal(t.n_done, 0);
        assert_true(process_dies(read_pid("probe")));

        /* A worker without a probe. */
        tw->config->probe = PROBE_NONE;
        assert_int_equal(probe_runner_start(pr, &tw->worker), -EINVAL);

        probe_runner_free(pr);
        probe_runner_cancel(NULL, &tw->worker);
        test_worker_free(tw);
        test_worker_free(other);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_status_line),
                cmocka_unit_test(test_sanitize),
                cmocka_unit_test(test_target),
                cmocka_unit_test(test_http_request),
                cmocka_unit_test(test_http_attempts),
                cmocka_unit_test(test_tcp_attempts),
                cmocka_unit_test(test_aim),
                cmocka_unit_test(test_unix_socket),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_exec_attempts),
                cmocka_unit_test(test_busy_and_cancel),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
