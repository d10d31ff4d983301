/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A retiring worker's open connections (supervisor/worker-connections.c): the inet_diag filter run the way
 * the kernel runs it, the fd link parser, and the count on real sockets held by this process and by its
 * children (no privilege needed: the kernel lists TCP sockets to anyone; as root, in a network namespace of
 * its own). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "proc-parse.h"
#include "worker-connections.h"

/* ---- the filter, checked and run as the kernel does (net/ipv4/inet_diag.c) ---- */

static bool bc_audit(const uint8_t *bc, int len) {
        const uint8_t *p = bc;
        int rest = len;

        while (rest > 0) {
                const struct inet_diag_bc_op *op = (const void *) p;
                int min_len = sizeof(*op);

                switch (op->code) {
                case INET_DIAG_BC_S_GE:
                case INET_DIAG_BC_S_LE:
                        min_len = 2 * sizeof(*op);
                        if (rest < min_len)
                                return false;
                        break;
                case INET_DIAG_BC_JMP:
                        break;
                default:
                        return false;
                }
                if (op->no < min_len || op->no > rest + 4 || (op->no & 3))
                        return false;
                if (op->yes < min_len || op->yes > rest + 4 || (op->yes & 3))
                        return false;
                p += op->yes;
                rest -= op->yes;
        }
        return rest == 0;
}

static bool bc_run(const uint8_t *bc, int len, uint16_t sport) {
        const uint8_t *p = bc;

        while (len > 0) {
                const struct inet_diag_bc_op *op = (const void *) p;
                bool yes = true;

                switch (op->code) {
                case INET_DIAG_BC_JMP:
                        yes = false;
                        break;
                case INET_DIAG_BC_S_GE:
                        yes = sport >= op[1].no;
                        break;
                case INET_DIAG_BC_S_LE:
                        yes = sport <= op[1].no;
                        break;
                }
                if (yes) {
                        len -= op->yes;
                        p += op->yes;
                } else {
                        len -= op->no;
                        p += op->no;
                }
        }
        return len == 0;
}

static void check_filter(const uint16_t *ports, size_t n) {
        uint8_t bc[1024];
        int len = worker_connections_filter(ports, n, bc, sizeof(bc));

        assert_true(len > 0);
        assert_true(bc_audit(bc, len));
        for (unsigned sport = 0; sport <= 65535; sport++) {
                bool want = false;
                for (size_t i = 0; i < n; i++)
                        want = want || ports[i] == sport;
                if (bc_run(bc, len, (uint16_t) sport) != want)
                        fail_msg("port %u: %s by the filter", sport, want ? "rejected" : "accepted");
        }
}

static void test_filter(void **state) {
        uint8_t small[16];

        check_filter((uint16_t[]) { 8080 }, 1);
        check_filter((uint16_t[]) { 80, 443 }, 2);
        check_filter((uint16_t[]) { 443, 80, 443, 1, 65535 }, 5);
        check_filter((uint16_t[]) { 0 }, 1);
        assert_int_equal(worker_connections_filter(NULL, 0, small, sizeof(small)), 0);
        assert_int_equal(worker_connections_filter((uint16_t[]) { 80, 443 }, 2, small, sizeof(small)), -E2BIG);
}

static void test_inode_from_link(void **state) {
        uint64_t inode = 0;

        /* The /proc fd link parser the connection walk shares with rpsupctl fds (common/proc-parse.c). */
        assert_int_equal(parse_socket_link("socket:[123456]", &inode), 0);
        assert_int_equal(inode, 123456);
        assert_int_equal(parse_socket_link("socket:[4294967295]", &inode), 0);
        assert_int_equal(inode, UINT32_MAX);
        /* Parsed; the walk then skips it: sock_diag's inodes are 32 bits wide. */
        assert_int_equal(parse_socket_link("socket:[4294967296]", &inode), 0);
        assert_true(inode > UINT32_MAX);
        assert_int_equal(parse_socket_link("pipe:[123]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[12a]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[0]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[1]x", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("/dev/null", &inode), -EINVAL);
}

/* ---- real sockets ---- */

static int listen_on(int family, const char *addr) {
        struct sockaddr_storage sa = {};
        socklen_t len;
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &sa;
                in->sin_family = AF_INET;
                assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
                len = sizeof(*in);
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;
                in6->sin6_family = AF_INET6;
                assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
                assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int) { 0 }, sizeof(int)), 0);
                len = sizeof(*in6);
        }
        if (bind(fd, (struct sockaddr *) &sa, len) < 0) {
                close(fd);
                return -errno;
        }
        assert_int_equal(listen(fd, 16), 0);
        return fd;
}

/* A client connected to the listener's port at `addr` (the listener may be a wildcard). */
static int connect_to(int listener, int family, const char *addr) {
        struct sockaddr_storage sa = {};
        socklen_t len = sizeof(sa);
        uint16_t port;
        int fd;

        assert_int_equal(getsockname(listener, (struct sockaddr *) &sa, &len), 0);
        port = sa.ss_family == AF_INET ? ((struct sockaddr_in *) &sa)->sin_port
                                       : ((struct sockaddr_in6 *) &sa)->sin6_port;
        memset(&sa, 0, sizeof(sa));
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &sa;
                in->sin_family = AF_INET;
                in->sin_port = port;
                assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
                len = sizeof(*in);
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = port;
                assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
                len = sizeof(*in6);
        }
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, len), 0);
        return fd;
}

static uint64_t count(pid_t pid, const int *fds, size_t n) {
        uint64_t c = UINT64_MAX;
        int r = worker_connections_count(pid, fds, n, 0, &c);

        if (r < 0)
                fail_msg("worker_connections_count(%d): %s", (int) pid, strerror(-r));
        return c;
}

static int setup(void **state) {
        int fd;
        struct ifreq ifr = { .ifr_name = "lo" };

        /* As root, a network namespace of our own with its loopback up; else the one we are in (the counts
         * go by inode: other processes' sockets on the same ports are not ours). */
        if (unshare(CLONE_NEWNET) == 0) {
                fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                assert_true(fd >= 0);
                assert_int_equal(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
                ifr.ifr_flags |= IFF_UP;
                assert_int_equal(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
                close(fd);
        }
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0) {
                print_message("no NETLINK_SOCK_DIAG here (%s): the kernel tests are skipped\n", strerror(errno));
                *state = (void *) 1;
        } else
                close(fd);
        return 0;
}

static void test_accepted_counted(void **state) {
        int l, other, c[4], a[3], oc, oa;

        if (*state)
                skip();
        l = listen_on(AF_INET, "127.0.0.1");
        other = listen_on(AF_INET, "127.0.0.1");
        assert_int_equal(count(getpid(), &l, 1), 0);

        for (int i = 0; i < 4; i++)
                c[i] = connect_to(l, AF_INET, "127.0.0.1");
        /* Queued, not accepted: no process holds them yet. The clients' ends are ours too, but their local
         * port is not the listener's. */
        assert_int_equal(count(getpid(), &l, 1), 0);
        for (int i = 0; i < 3; i++)
                assert_true((a[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(count(getpid(), &l, 1), 3);

        /* Connections of another listener are not this one's. */
        oc = connect_to(other, AF_INET, "127.0.0.1");
        assert_true((oa = accept4(other, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(count(getpid(), &l, 1), 3);
        assert_int_equal(count(getpid(), (int[]) { l, other }, 2), 4);

        /* A connection the client closed is still open until the worker closes it (CLOSE_WAIT). */
        close(c[0]);
        assert_int_equal(count(getpid(), &l, 1), 3);
        close(a[0]);
        close(a[1]);
        assert_int_equal(count(getpid(), &l, 1), 1);

        /* A duplicate fd is the same connection. */
        int d = fcntl(a[2], F_DUPFD_CLOEXEC, 3);
        assert_true(d >= 0);
        assert_int_equal(count(getpid(), &l, 1), 1);
        close(d);

        /* Another process (a child that closed its copies) holds none of them. */
        int p[2], ready[2];
        char x;
        pid_t child;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                close(a[2]);
                close(c[1]);
                close(c[2]);
                close(c[3]);
                close(oa);
                close(oc);
                close(p[1]);
                (void) write(ready[1], "r", 1);
                (void) read(p[0], &x, 1);
                _exit(0);
        }
        close(p[0]);
        close(ready[1]);
        assert_int_equal(read(ready[0], &x, 1), 1);
        close(ready[0]);
        assert_int_equal(count(child, &l, 1), 0);
        assert_int_equal(count(getpid(), &l, 1), 1);
        close(p[1]);
        assert_int_equal(waitpid(child, NULL, 0), child);

        close(a[2]);
        assert_int_equal(count(getpid(), &l, 1), 0);
        for (int i = 1; i < 4; i++)
                close(c[i]);
        close(oa);
        close(oc);
        close(other);
        close(l);
}

/* A forking daemon serves in its children: their connections are the worker's. */
/* Workers looked at in one turn of the loop share one dump: within max_age, a second count for the same
 * listener reads the first one's list of sockets (a connection accepted in between is not in it yet);
 * another listener, or max_age 0, gets a list of its own. */
static void test_shared_dump(void **state) {
        int l, other, c, a;
        uint64_t n = UINT64_MAX;

        if (*state)
                skip();
        l = listen_on(AF_INET, "127.0.0.1");
        other = listen_on(AF_INET, "127.0.0.1");
        assert_int_equal(worker_connections_count(getpid(), &l, 1, USEC_PER_HOUR, &n), 0);
        assert_int_equal(n, 0);
        c = connect_to(l, AF_INET, "127.0.0.1");
        assert_true((a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(worker_connections_count(getpid(), &l, 1, USEC_PER_HOUR, &n), 0);
        assert_int_equal(n, 0); /* the shared list, from before the connection */
        assert_int_equal(count(getpid(), &l, 1), 1);
        /* Another listener's look is a new dump, which the next look at it shares. */
        assert_int_equal(worker_connections_count(getpid(), &other, 1, USEC_PER_HOUR, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(worker_connections_count(getpid(), &l, 1, USEC_PER_HOUR, &n), 0);
        assert_int_equal(n, 1);
        close(a);
        close(c);
        close(other);
        close(l);
}

static void test_descendants(void **state) {
        int l, c, a, go[2], done[2], status;
        pid_t child;
        char x;

        if (*state)
                skip();
        l = listen_on(AF_INET, "127.0.0.1");
        c = connect_to(l, AF_INET, "127.0.0.1");
        assert_true((a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(done, O_CLOEXEC), 0);

        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                /* A grandchild holds the connection; the child waits for it. */
                pid_t grandchild = fork();
                if (grandchild < 0)
                        _exit(1);
                if (grandchild == 0) {
                        close(l);
                        (void) write(go[1], "g", 1);
                        (void) read(done[0], &x, 1);
                        _exit(0);
                }
                close(a);
                (void) waitpid(grandchild, NULL, 0);
                _exit(0);
        }
        close(a);
        assert_int_equal(read(go[0], &x, 1), 1);
        /* The grandchild's only, by the time the child closed its copy: one connection either way. */
        assert_int_equal(count(getpid(), &l, 1), 1);
        assert_int_equal(count(child, &l, 1), 1);

        assert_int_equal(write(done[1], "d", 1), 1);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(count(getpid(), &l, 1), 0);

        /* A worker that is gone: whatever is on the port. */
        uint64_t n;
        assert_int_equal(worker_connections_count(child, &l, 1, 0, &n), -ESRCH);
        int c2 = connect_to(l, AF_INET, "127.0.0.1"), a2 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        assert_true(a2 >= 0);
        assert_int_equal(worker_connections_count(child, &l, 1, 0, &n), -ESRCH);
        close(a2);
        close(c2);
        close(c);
        close(l);
        close(go[0]);
        close(go[1]);
        close(done[0]);
        close(done[1]);
}

/* A dual-stack wildcard listener: IPv4 clients arrive as v4-mapped IPv6 connections. */
static void test_ipv6(void **state) {
        int l, c4, c6, a4, a6;

        if (*state)
                skip();
        l = listen_on(AF_INET6, "::");
        if (l < 0)
                skip();
        c4 = connect_to(l, AF_INET, "127.0.0.1");
        c6 = connect_to(l, AF_INET6, "::1");
        assert_true((a4 = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_true((a6 = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(count(getpid(), &l, 1), 2);
        close(a4);
        assert_int_equal(count(getpid(), &l, 1), 1);
        close(a6);
        assert_int_equal(count(getpid(), &l, 1), 0);
        close(c4);
        close(c6);
        close(l);
}

/* Enough connections that the kernel's dump comes in several parts. */
static void test_many(void **state) {
        enum { N = 400 };
        int l, c[N], a[N];

        if (*state)
                skip();
        l = listen_on(AF_INET, "127.0.0.1");
        for (int i = 0; i < N; i++) {
                c[i] = connect_to(l, AF_INET, "127.0.0.1");
                assert_true((a[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        }
        assert_int_equal(count(getpid(), &l, 1), N);
        for (int i = 0; i < N; i += 2)
                close(a[i]);
        assert_int_equal(count(getpid(), &l, 1), N / 2);
        for (int i = 0; i < N; i++) {
                if (i % 2)
                        close(a[i]);
                close(c[i]);
        }
        close(l);
}

/* Beyond its bounds the count is unknown, never 0. */
static void test_bounded(void **state) {
        struct rlimit rl;
        int l, c, a, n = 0;
        int *fds;
        uint64_t x = 0;

        if (*state)
                skip();
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_max < 8192)
                skip();
        rl.rlim_cur = MAX(rl.rlim_cur, (rlim_t) 8192);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);

        l = listen_on(AF_INET, "127.0.0.1");
        c = connect_to(l, AF_INET, "127.0.0.1");
        assert_true((a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
        assert_int_equal(count(getpid(), &l, 1), 1);
        fds = calloc(5000, sizeof(int));
        assert_non_null(fds);
        while (n < 5000 && (fds[n] = fcntl(l, F_DUPFD_CLOEXEC, 3)) >= 0)
                n++;
        assert_int_equal(n, 5000);
        assert_int_equal(worker_connections_count(getpid(), &l, 1, 0, &x), -E2BIG);
        while (n > 0)
                close(fds[--n]);
        free(fds);
        assert_int_equal(count(getpid(), &l, 1), 1);
        close(a);
        close(c);
        close(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filter),
                cmocka_unit_test(test_inode_from_link),
                cmocka_unit_test(test_accepted_counted),
                cmocka_unit_test(test_shared_dump),
                cmocka_unit_test(test_descendants),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_many),
                cmocka_unit_test(test_bounded),
        };

        return cmocka_run_group_tests(tests, setup, NULL);
}
