/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The steering program (bpf/steer.bpf.c) through its userspace API (bpf/steer.c), on real SO_REUSEPORT
 * listeners and real connections in a network namespace of the test's own: the active set decides where
 * new connections go, a set switch is one update, the standby set serves when no listener is active, an
 * empty set refuses, a socket joining the group from outside gets nothing, a closing listener's queue
 * migrates to the active set, and the counters count all of it. Needs root (BPF, namespaces): exits 77
 * without it, or fails with RPSUP_REQUIRE_PRIVILEGED=1. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "steer.h"

#define N_LISTENERS 3

static Steering *steering;
static int listeners[N_LISTENERS];
static uint32_t indices[N_LISTENERS] = { 11, 12, 13 };
static struct steer_group_key key;
static uint16_t port;

static int listener(uint16_t p) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        assert_true(fd >= 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 128), 0);
        return fd;
}

/* Opens n connections; returns how many the kernel refused. The others are left in accept queues. */
static int connect_n(int n, int *fds) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int refused = 0;

        for (int i = 0; i < n; i++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(fd >= 0);
                /* Different source ports: different hashes. */
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        assert_int_equal(errno, ECONNREFUSED);
                        refused++;
                        close(fd);
                        fd = -1;
                }
                fds[i] = fd;
        }
        return refused;
}

static void close_all(int *fds, int n) {
        for (int i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* Accepts everything queued on a listener; returns the count. */
static int drain(int lfd) {
        int n = 0, fd;

        while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                close(fd);
                n++;
        }
        assert_int_equal(errno, EAGAIN);
        return n;
}

static void set(const uint32_t *active, size_t n_active, const uint32_t *standby, size_t n_standby) {
        assert_int_equal(steering_set_group(steering, &key, active, n_active, standby, n_standby), 0);
}

static uint64_t syns(int i) {
        struct steer_counters c;

        assert_int_equal(steering_counters(steering, indices[i], &c), 0);
        return c.syns;
}

static int setup(void **state) {
        assert_int_equal(steering_load(&steering, NULL), 0);
        listeners[0] = listener(0);
        {
                struct sockaddr_in sa;
                socklen_t l = sizeof(sa);
                assert_int_equal(getsockname(listeners[0], (struct sockaddr *) &sa, &l), 0);
                port = ntohs(sa.sin_port);
        }
        for (int i = 1; i < N_LISTENERS; i++)
                listeners[i] = listener(port);
        assert_int_equal(steering_group_key(listeners[0], &key), 0);
        assert_int_equal(key.port, port);
        for (int i = 0; i < N_LISTENERS; i++) {
                assert_int_equal(steering_insert(steering, indices[i], listeners[i]), 0);
                assert_int_equal(steering_counters_reset(steering, indices[i]), 0);
        }
        set(indices, 1, NULL, 0);
        assert_int_equal(steering_attach(steering, listeners[0]), 0);
        return 0;
}

static int teardown(void **state) {
        for (int i = 0; i < N_LISTENERS; i++)
                if (listeners[i] >= 0)
                        close(listeners[i]);
        steering = steering_free(steering);
        return 0;
}

static void test_active_set_decides(void **state) {
        int c[30];

        set(&indices[1], 1, NULL, 0);
        assert_int_equal(connect_n(30, c), 0);
        assert_int_equal(drain(listeners[0]), 0);
        assert_int_equal(drain(listeners[1]), 30);
        assert_int_equal(drain(listeners[2]), 0);
        assert_int_equal(syns(1), 30);
        close_all(c, 30);
}

static void test_switch_is_one_update(void **state) {
        int c[60], n1, n2;
        uint64_t before1 = syns(1), before2 = syns(2);

        set(&indices[1], 2, NULL, 0); /* listeners 1 and 2 */
        assert_int_equal(connect_n(60, c), 0);
        assert_int_equal(drain(listeners[0]), 0);
        n1 = drain(listeners[1]);
        n2 = drain(listeners[2]);
        assert_int_equal(n1 + n2, 60);
        /* New connections take turns (round robin per CPU, on whichever CPUs the handshakes run): both
         * get some. */
        assert_true(n1 > 5 && n2 > 5);
        assert_int_equal(syns(1) - before1, (uint64_t) n1);
        assert_int_equal(syns(2) - before2, (uint64_t) n2);
        close_all(c, 60);

        set(&indices[0], 1, NULL, 0);
        assert_int_equal(connect_n(20, c), 0);
        assert_int_equal(drain(listeners[0]), 20);
        assert_int_equal(drain(listeners[1]) + drain(listeners[2]), 0);
        close_all(c, 20);
}

static void test_standby_when_nothing_active(void **state) {
        int c[20];

        set(NULL, 0, &indices[2], 1);
        assert_int_equal(connect_n(20, c), 0);
        assert_int_equal(drain(listeners[2]), 20);
        assert_int_equal(drain(listeners[0]) + drain(listeners[1]), 0);
        close_all(c, 20);
}

static void test_empty_set_refuses(void **state) {
        struct steer_counters before, after;
        int c[10];

        assert_int_equal(steering_counters(steering, 0, &before), 0);
        set(NULL, 0, NULL, 0);
        assert_int_equal(connect_n(10, c), 10);
        assert_int_equal(steering_counters(steering, 0, &after), 0);
        assert_int_equal(after.refused - before.refused, 10);
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(drain(listeners[i]), 0);
}

static void test_outsider_gets_nothing(void **state) {
        int intruder = listener(port), c[40];

        /* Same uid, same port, SO_REUSEPORT: it is in the group, but not in rpsupd's sockarray. */
        set(&indices[0], 1, NULL, 0);
        assert_int_equal(connect_n(40, c), 0);
        assert_int_equal(drain(intruder), 0);
        assert_int_equal(drain(listeners[0]), 40);
        close_all(c, 40);
        close(intruder);
}

static void test_closing_listener_migrates(void **state) {
        struct steer_counters before, after;
        int c[15], fd, n = 0;

        set(&indices[1], 1, NULL, 0);
        assert_int_equal(connect_n(15, c), 0); /* queued on listener 1, not accepted */
        assert_int_equal(steering_counters(steering, indices[2], &before), 0);
        /* Listener 1 retires: out of the set, then shut down; its queue goes to listener 2. */
        set(&indices[2], 1, NULL, 0);
        assert_int_equal(shutdown(listeners[1], SHUT_RD), 0);
        while ((fd = accept4(listeners[2], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                close(fd);
                n++;
        }
        assert_int_equal(n, 15);
        assert_int_equal(steering_counters(steering, indices[2], &after), 0);
        assert_int_equal(after.migrated_queue - before.migrated_queue, 15);
        /* The shut-down listener left the sockarray by itself. */
        uint32_t found;
        assert_int_equal(steering_find(steering, listeners[1], &found), -ENOENT);
        close_all(c, 15);
}

static void test_restore_checks_layout(void **state) {
        int fds[_STEERING_FD_MAX];
        Steering *copy = NULL;
        _cleanup_free_ char *error = NULL;

        for (int i = 0; i < _STEERING_FD_MAX; i++)
                fds[i] = fcntl(steering_fd(steering, i), F_DUPFD_CLOEXEC, 3);
        assert_int_equal(steering_restore(fds, &copy, &error), 0);
        assert_null(error);
        /* The restored copy sees the same maps: the listener found at the index it was put at. */
        uint32_t index;
        assert_int_equal(steering_find(copy, listeners[0], &index), 0);
        assert_int_equal(index, indices[0]);
        steering_free(copy);

        /* Maps in the wrong places are refused with a reason. */
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                fds[i] = fcntl(steering_fd(steering, i == STEERING_GROUPS ? STEERING_COUNTERS : i), F_DUPFD_CLOEXEC, 3);
        assert_true(steering_restore(fds, &copy, &error) < 0);
        assert_non_null(error);
        assert_non_null(strstr(error, "bpf.groups"));
}

static int enter_netns(void) {
        struct ifreq ifr = {};
        int fd;

        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)) {
                close(fd);
                return -errno;
        }
        close(fd);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_active_set_decides),
                cmocka_unit_test(test_switch_is_one_update),
                cmocka_unit_test(test_standby_when_nothing_active),
                cmocka_unit_test(test_empty_set_refuses),
                cmocka_unit_test(test_outsider_gets_nothing),
                cmocka_unit_test(test_closing_listener_migrates),
                cmocka_unit_test(test_restore_checks_layout),
        };
        const char *required = getenv("RPSUP_REQUIRE_PRIVILEGED");
        int r;

        r = geteuid() == 0 ? enter_netns() : -EPERM;
        if (r < 0) {
                fprintf(stderr, "%s: needs root and a network namespace of its own: %s\n",
                        required && strcmp(required, "1") == 0 ? "FAIL" : "SKIP", strerror(-r));
                return required && strcmp(required, "1") == 0 ? 1 : 77;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
