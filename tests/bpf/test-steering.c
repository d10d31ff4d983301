/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The steering program (bpf/steer.bpf.c) through its userspace API (bpf/steer.c), on real SO_REUSEPORT
 * listeners and real connections in a network namespace of the test's own: the active set decides where new
 * connections go, a set switch is one update, the standby set serves when no listener is active, an empty
 * set refuses, a socket joining the group from outside gets nothing, a canary's previous set gets exactly
 * its share, a probe aimed by its source port reaches the listener it names, a closing listener's queue
 * migrates to the active set (never to the previous one), a newer program takes the listeners over from an
 * older one's sockarray, the hash policy keeps a 4-tuple on its listener, the kernel policy lets the kernel
 * pick among every socket of the group (an outsider's too), and the counters count all of it. Needs root
 * (BPF, namespaces): exits 77 without it, or fails with RPSUP_REQUIRE_PRIVILEGED=1. */

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

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer.h"

#define N_LISTENERS 5
#define CANARY_CONNECTIONS 20000

static Steering *steering;
static int listeners[N_LISTENERS];
static bool shut[N_LISTENERS]; /* shut down: no longer listening */
static uint32_t indices[N_LISTENERS] = { 11, 12, 13, 14, 15 };
static int n_cpus;
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

/* A client socket bound to loopback and an ephemeral port, which it returns. */
static int client(uint16_t local_port, uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(local_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &l), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static int connect_one(int fd) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

        return connect(fd, (struct sockaddr *) &sa, sizeof(sa));
}

/* Closes with a reset: nothing is left in TIME_WAIT, so tens of thousands of connections do not run out of
 * ports. */
static void close_reset(int fd) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        close(fd);
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
                close_reset(fd);
                n++;
        }
        assert_int_equal(errno, EAGAIN);
        return n;
}

/* n connections, in batches that never fill an accept queue; adds what each listener got to counts[]. */
static void connect_many(int n, int counts[N_LISTENERS]) {
        int batch[64];

        for (int done = 0; done < n;) {
                int k = MIN(64, n - done);
                assert_int_equal(connect_n(k, batch), 0);
                for (int i = 0; i < N_LISTENERS; i++)
                        if (!shut[i])
                                counts[i] += drain(listeners[i]);
                for (int i = 0; i < k; i++)
                        close_reset(batch[i]);
                done += k;
        }
}

static void set(const uint32_t *active, size_t n_active, const uint32_t *standby, size_t n_standby) {
        assert_int_equal(steering_set_group(steering, &key, active, n_active, standby, n_standby, NULL, 0, 0), 0);
}

static void set_canary(const uint32_t *active, size_t n_active, const uint32_t *previous, size_t n_previous,
                       unsigned percent) {
        assert_int_equal(steering_set_group(steering, &key, active, n_active, NULL, 0, previous, n_previous, percent), 0);
}

/* A listener's counters on each CPU (n_cpus of them). */
static void per_cpu(uint32_t index, struct steer_counters *ret) {
        assert_int_equal(bpf_map_lookup_elem(steering_fd(steering, STEERING_COUNTERS), &index, ret), 0);
}

/* The group's round-robin positions on each CPU (n_cpus of them). */
static void per_cpu_turns(const struct steer_group_key *k, struct steer_turns *ret) {
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        assert_int_equal(steering_get_group(steering, k, v), 0);
        assert_true(v->group < STEER_GROUPS_MAX);
        assert_int_equal(bpf_map_lookup_elem(steering_fd(steering, STEERING_TURNS), &v->group, ret), 0);
        free(v);
}

/* The flow table's count, walked to the end. */
static uint32_t flow_count(void) {
        SteeringFlowWalk w = {};
        uint32_t n = 0;
        bool done = false;

        while (!done)
                assert_int_equal(steering_flow_count_step(steering, &w, 100, &n, &done), 0);
        return n;
}

static uint64_t syns(int i) {
        struct steer_counters c;

        assert_int_equal(steering_counters(steering, indices[i], &c), 0);
        return c.syns;
}

static int setup(void **state) {
        n_cpus = libbpf_num_possible_cpus();
        assert_true(n_cpus > 0);
        assert_int_equal(steering_load(&steering, 1024, NULL), 0);
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

/* A canary: 10 % of new connections to the previous set, exactly, per CPU: of the CPU's turns in
 * [first, last), those whose (turn % 100) * 10 % 100 < 10. The active set shares the rest evenly. */
static void test_canary_share(void **state) {
        struct steer_turns turns_before[n_cpus], turns_after[n_cpus];
        struct steer_counters before[n_cpus], after[n_cpus];
        int counts[N_LISTENERS] = {}, steered = 0;
        uint64_t expected_total = 0;
        const unsigned percent = 10;

        set_canary(&indices[1], 2, &indices[0], 1, percent);
        per_cpu_turns(&key, turns_before);
        per_cpu(indices[0], before);
        connect_many(CANARY_CONNECTIONS, counts);
        per_cpu_turns(&key, turns_after);
        per_cpu(indices[0], after);

        for (int c = 0; c < n_cpus; c++) {
                uint64_t expected = 0;
                for (uint64_t t = turns_before[c].share; t < turns_after[c].share; t++)
                        expected += (t % 100) * percent % 100 < percent;
                assert_int_equal(after[c].syns - before[c].syns, expected);
                expected_total += expected;
                steered += (int) (turns_after[c].share - turns_before[c].share);
        }
        fprintf(stderr, "canary %u %%: previous %d, active %d + %d of %d\n", percent, counts[0], counts[1],
                counts[2], CANARY_CONNECTIONS);
        assert_int_equal(steered, CANARY_CONNECTIONS); /* every SYN once: none was retransmitted */
        assert_int_equal(counts[0] + counts[1] + counts[2], CANARY_CONNECTIONS);
        assert_int_equal((uint64_t) counts[0], expected_total);
        /* 10 % ± 1 %; in fact off by less than one connection per CPU. */
        assert_true(counts[0] >= CANARY_CONNECTIONS * 9 / 100 && counts[0] <= CANARY_CONNECTIONS * 11 / 100);
        assert_true(abs(counts[0] - CANARY_CONNECTIONS / 10) <= n_cpus);
        assert_true(abs(counts[1] - counts[2]) <= n_cpus);
        assert_int_equal(counts[3] + counts[4], 0);

        /* 0 %: none; 100 %: all. */
        memset(counts, 0, sizeof(counts));
        set_canary(&indices[1], 1, &indices[0], 1, 0);
        connect_many(50, counts);
        assert_int_equal(counts[1], 50);
        set_canary(&indices[1], 1, &indices[0], 1, 100);
        connect_many(50, counts);
        assert_int_equal(counts[0], 50);
        /* Nothing active or standby: the previous set takes everything rather than refusing it. */
        set_canary(NULL, 0, &indices[0], 1, 30);
        connect_many(50, counts);
        assert_int_equal(counts[0], 100);
        assert_int_equal(steering_set_group(steering, &key, indices, 1, NULL, 0, NULL, 0, 101), -EINVAL);
}

/* A set with a policy, in one update. */
static void set_policy(const uint32_t *active, size_t n_active, uint32_t policy) {
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        v->n_active = (uint32_t) n_active;
        memcpy(v->active, active, sizeof(uint32_t) * n_active);
        v->policy = policy;
        assert_int_equal(steering_write_group(steering, &key, v), 0);
        free(v);
}

/* Which listener (of all N_LISTENERS) took the one connection queued; -1 if none did. Accepts it. */
static int taken_by(void) {
        int who = -1;

        for (int i = 0; i < N_LISTENERS; i++)
                if (!shut[i] && drain(listeners[i]) == 1) {
                        assert_int_equal(who, -1);
                        who = i;
                }
        return who;
}

/* hash: a given 4-tuple reaches the same listener each time while the set stays; different ones spread
 * over the set; a policy out of range is refused. */
static void test_policy_hash_keeps_flow(void **state) {
        int first[40], seen[N_LISTENERS] = {};

        set_policy(indices, 3, STEER_POLICY_HASH);
        for (int k = 0; k < 40; k++) {
                uint16_t p;
                int fd = client(0, &p);

                assert_int_equal(connect_one(fd), 0);
                first[k] = taken_by();
                assert_true(first[k] >= 0 && first[k] < 3);
                seen[first[k]]++;
                close_reset(fd);
                for (int again = 0; again < 5; again++) {
                        uint16_t q;
                        fd = client(p, &q);
                        assert_int_equal(connect_one(fd), 0);
                        assert_int_equal(taken_by(), first[k]);
                        close_reset(fd);
                }
        }
        fprintf(stderr, "hash: 40 flows over 3 listeners: %d, %d, %d\n", seen[0], seen[1], seen[2]);
        assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);

        {
                struct steer_set *v = calloc(1, sizeof(*v));
                assert_non_null(v);
                v->n_active = 1;
                v->active[0] = indices[0];
                v->policy = _STEER_POLICY_MAX;
                assert_int_equal(steering_write_group(steering, &key, v), -EINVAL);
                free(v);
        }
        set(indices, 1, NULL, 0);
}

/* kernel: the program leaves new connections to the kernel, which picks among every socket of the group:
 * listeners outside the set and a socket from outside get some; counted as `kernel`. Back to round-robin in
 * one update: the outsider gets nothing again. */
static void test_policy_kernel_includes_outsiders(void **state) {
        struct steer_counters before, after;
        int intruder = listener(port), counts[N_LISTENERS] = {}, stolen = 0, batch[50];

        assert_int_equal(steering_counters(steering, 0, &before), 0);
        set_policy(indices, 1, STEER_POLICY_KERNEL);
        for (int round = 0; round < 8; round++) {
                assert_int_equal(connect_n(50, batch), 0);
                for (int i = 0; i < N_LISTENERS; i++)
                        if (!shut[i])
                                counts[i] += drain(listeners[i]);
                stolen += drain(intruder);
                close_all(batch, 50);
        }
        assert_int_equal(steering_counters(steering, 0, &after), 0);
        fprintf(stderr, "kernel: 400 connections: %d %d %d %d %d, outsider %d\n", counts[0], counts[1], counts[2],
                counts[3], counts[4], stolen);
        assert_int_equal(after.kernel - before.kernel, 400);
        assert_int_equal(counts[0] + counts[1] + counts[2] + counts[3] + counts[4] + stolen, 400);
        assert_true(stolen > 0);
        assert_true(counts[1] + counts[2] + counts[3] + counts[4] > 0); /* outside the set, in the group */

        set_policy(indices, 1, STEER_POLICY_ROUND_ROBIN);
        assert_int_equal(connect_n(50, batch), 0);
        assert_int_equal(drain(intruder), 0);
        assert_int_equal(drain(listeners[0]), 50);
        close_all(batch, 50);
        close(intruder);
        set(indices, 1, NULL, 0);
}

static uint64_t probes(int i) {
        struct steer_counters c;

        assert_int_equal(steering_counters(steering, indices[i], &c), 0);
        return c.probes;
}

static void set_shadow(const uint32_t *active, size_t n_active, uint32_t policy, uint32_t shadow) {
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        v->n_active = (uint32_t) n_active;
        memcpy(v->active, active, sizeof(uint32_t) * n_active);
        v->policy = policy;
        v->shadow = shadow;
        assert_int_equal(steering_write_group(steering, &key, v), 0);
        free(v);
}

#define SHADOW_FLOWS 300

/* One connection from each of the ports (0: an ephemeral one, written back), accepted at once; adds what
 * each listener took to counts[]. */
static void connect_from(uint16_t *ports, int n, int counts[N_LISTENERS]) {
        for (int k = 0; k < n; k++) {
                uint16_t p;
                int fd = client(ports[k], &p), who;

                ports[k] = p;
                assert_int_equal(connect_one(fd), 0);
                who = taken_by();
                assert_true(who >= 0);
                counts[who]++;
                close_reset(fd);
        }
}

/* shadow: the program counts where the shadow policy would have sent each new connection, and changes
 * nothing; enforcing that policy on the same 4-tuples then gives exactly the counts projected. */
static void test_shadow_projects_enforced(void **state) {
        uint16_t ports[SHADOW_FLOWS] = {};
        int actual[N_LISTENERS] = {}, enforced[N_LISTENERS] = {}, projected[N_LISTENERS] = {};
        struct steer_counters before[N_LISTENERS], after;

        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(steering_counters(steering, indices[i], &before[i]), 0);
        set_shadow(indices, N_LISTENERS, STEER_POLICY_ROUND_ROBIN, STEER_POLICY_HASH + 1);
        connect_from(ports, SHADOW_FLOWS, actual);
        for (int i = 0; i < N_LISTENERS; i++) {
                assert_int_equal(steering_counters(steering, indices[i], &after), 0);
                projected[i] = (int) (after.shadow - before[i].shadow);
                /* Round-robin went on as before: turns, whatever the shadow. */
                assert_true(abs(actual[i] - SHADOW_FLOWS / N_LISTENERS) <= n_cpus);
        }
        set_shadow(indices, N_LISTENERS, STEER_POLICY_HASH, 0);
        connect_from(ports, SHADOW_FLOWS, enforced);
        fprintf(stderr, "shadow hash: projected %d %d %d %d %d, enforced %d %d %d %d %d\n", projected[0],
                projected[1], projected[2], projected[3], projected[4], enforced[0], enforced[1], enforced[2],
                enforced[3], enforced[4]);
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(projected[i], enforced[i]);

        /* Round-robin shadowed under hash: the turns it would take. */
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(steering_counters(steering, indices[i], &before[i]), 0);
        set_shadow(indices, N_LISTENERS, STEER_POLICY_HASH, STEER_POLICY_ROUND_ROBIN + 1);
        memset(actual, 0, sizeof(actual));
        connect_from(ports, SHADOW_FLOWS, actual);
        for (int i = 0; i < N_LISTENERS; i++) {
                assert_int_equal(actual[i], enforced[i]); /* hash went on as before */
                assert_int_equal(steering_counters(steering, indices[i], &after), 0);
                assert_true(abs((int) (after.shadow - before[i].shadow) - SHADOW_FLOWS / N_LISTENERS) <= n_cpus);
        }
        set(indices, 1, NULL, 0);
}

/* Two groups on one port, family and protocol (two addresses) have no fast copy: both are steered from the
 * groups map, each to its own set; the ports map names neither. */
static void test_shared_port_uses_groups_map(void **state) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x0a090909) };
        struct steer_group_key other;
        struct steer_port entry;
        uint32_t other_index = 31, p = port;
        uint32_t one_index[1] = { 31 };
        int one = 1, lfd, cfd, afd;
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(lfd >= 0);
        assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 16), 0);
        assert_int_equal(steering_insert(steering, other_index, lfd), 0);
        assert_int_equal(steering_attach(steering, lfd), 0);
        assert_int_equal(steering_group_key(lfd, &other), 0);
        v->n_active = 1;
        memcpy(v->active, one_index, sizeof(one_index));
        assert_int_equal(steering_write_group(steering, &other, v), 0);
        set(&indices[2], 1, NULL, 0);

        assert_int_equal(bpf_map_lookup_elem(steering_fd(steering, STEERING_PORTS), &p, &entry), 0);
        assert_int_equal(entry.set[steer_port_slot(AF_INET, IPPROTO_TCP)], 0);

        cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(cfd >= 0);
        assert_int_equal(connect(cfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(afd >= 0);
        close(afd);
        close_reset(cfd);
        cfd = client(0, &(uint16_t) { 0 });
        assert_int_equal(connect_one(cfd), 0);
        assert_int_equal(taken_by(), 2);
        close_reset(cfd);

        assert_int_equal(steering_remove(steering, other_index), 0);
        close(lfd);
        free(v);
        set(indices, 1, NULL, 0);
}

#define FLOW_CLIENTS 40

/* A UDP group: which of its sockets got the one datagram sent; -1 if none within 2 s. Reads it. */
static int received_by(int *socks, int n) {
        struct pollfd p[n];
        char buf[16];
        int who = -1;

        for (int i = 0; i < n; i++)
                p[i] = (struct pollfd) { .fd = socks[i], .events = POLLIN };
        (void) poll(p, (nfds_t) n, 2000); /* loopback delivers within send() unless softirqs are deferred */

        for (int i = 0; i < n; i++)
                while (recv(socks[i], buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
                        assert_int_equal(who, -1);
                        who = i;
                }
        return who;
}

/* The flow table: a datagram of a known flow goes where the flow's first one went, while that socket is in
 * the sockarray, whatever the set says now; a new flow goes to the set; a flow whose socket left the
 * sockarray is steered afresh (and counted lost). */
static void test_flow_table_keeps_flows(void **state) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        uint32_t uidx[4] = { 41, 42, 43, 44 };
        int usock[4], clients[FLOW_CLIENTS + 1], first[FLOW_CLIENTS], one = 1;
        struct steer_group_key ukey;
        struct steer_counters c0_before, c0_after, c;
        socklen_t l = sizeof(sa);
        uint64_t hits = 0;
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        for (int i = 0; i < 4; i++) {
                usock[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(usock[i] >= 0);
                assert_int_equal(setsockopt(usock[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
                assert_int_equal(bind(usock[i], (struct sockaddr *) &sa, sizeof(sa)), 0);
                if (i == 0)
                        assert_int_equal(getsockname(usock[0], (struct sockaddr *) &sa, &l), 0);
                assert_int_equal(steering_insert(steering, uidx[i], usock[i]), 0);
                assert_int_equal(steering_counters_reset(steering, uidx[i]), 0);
        }
        assert_int_equal(steering_attach(steering, usock[0]), 0);
        assert_int_equal(steering_group_key(usock[0], &ukey), 0);
        /* The old generation: sockets 0 and 1, by hash, flows on. */
        v->n_active = 2;
        memcpy(v->active, uidx, 2 * sizeof(uint32_t));
        v->policy = STEER_POLICY_HASH;
        v->flows = 1;
        assert_int_equal(steering_write_group(steering, &ukey, v), 0);
        for (int k = 0; k <= FLOW_CLIENTS; k++) {
                clients[k] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                assert_true(clients[k] >= 0);
                assert_int_equal(connect(clients[k], (struct sockaddr *) &sa, sizeof(sa)), 0);
        }
        for (int k = 0; k < FLOW_CLIENTS; k++) {
                assert_int_equal(send(clients[k], "a", 1, 0), 1);
                first[k] = received_by(usock, 4);
                assert_true(first[k] == 0 || first[k] == 1);
        }

        /* A reload: the new generation's sockets 2 and 3 are the set; 0 and 1 stay (draining). */
        memcpy(v->active, &uidx[2], 2 * sizeof(uint32_t));
        assert_int_equal(steering_write_group(steering, &ukey, v), 0);
        for (int round = 0; round < 3; round++)
                for (int k = 0; k < FLOW_CLIENTS; k++) {
                        assert_int_equal(send(clients[k], "b", 1, 0), 1);
                        assert_int_equal(received_by(usock, 4), first[k]);
                }
        assert_int_equal(send(clients[FLOW_CLIENTS], "n", 1, 0), 1);
        {
                int who = received_by(usock, 4);
                assert_true(who == 2 || who == 3);
        }
        for (int i = 0; i < 2; i++) {
                assert_int_equal(steering_counters(steering, uidx[i], &c), 0);
                hits += c.flow_hits;
        }
        assert_int_equal(hits, 3 * FLOW_CLIENTS);

        /* Socket 0's worker is gone: its flows go to the new generation, once counted lost, then stick. */
        assert_int_equal(steering_counters(steering, 0, &c0_before), 0);
        assert_int_equal(steering_remove(steering, uidx[0]), 0);
        for (int round = 0; round < 2; round++)
                for (int k = 0; k < FLOW_CLIENTS; k++) {
                        int who;

                        assert_int_equal(send(clients[k], "c", 1, 0), 1);
                        who = received_by(usock, 4);
                        if (first[k] == 1)
                                assert_int_equal(who, 1);
                        else {
                                assert_true(who == 2 || who == 3);
                                if (round == 0)
                                        first[k] = 10 + who;
                                else
                                        assert_int_equal(who, first[k] - 10);
                        }
                }
        assert_int_equal(steering_counters(steering, 0, &c0_after), 0);
        {
                int moved = 0;
                for (int k = 0; k < FLOW_CLIENTS; k++)
                        moved += first[k] >= 10;
                assert_true(moved > 0);
                assert_int_equal(c0_after.flow_lost - c0_before.flow_lost, moved);
        }
        {
                assert_int_equal(flow_count(), FLOW_CLIENTS + 1);
                assert_int_equal(steering_flow_max(steering), 1024);
        }

        /* Socket 1's index goes to a new socket (a starting worker's, in no set): socket 1's flows do not
         * follow the index there, they go to the set. */
        {
                int fresh = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), who;

                assert_true(fresh >= 0);
                assert_int_equal(setsockopt(fresh, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
                assert_int_equal(bind(fresh, (struct sockaddr *) &sa, sizeof(sa)), 0);
                assert_int_equal(steering_remove(steering, uidx[1]), 0);
                close(usock[1]);
                usock[1] = fresh;
                assert_int_equal(steering_insert(steering, uidx[1], fresh), 0);
                for (int k = 0; k < FLOW_CLIENTS; k++)
                        if (first[k] == 1) {
                                assert_int_equal(send(clients[k], "d", 1, 0), 1);
                                who = received_by(usock, 4);
                                assert_true(who == 2 || who == 3);
                        }
        }

        for (int k = 0; k <= FLOW_CLIENTS; k++)
                close(clients[k]);
        for (int i = 1; i < 4; i++)
                assert_int_equal(steering_remove(steering, uidx[i]), 0);
        for (int i = 0; i < 4; i++)
                close(usock[i]);
        free(v);
}

/* A second group on another port, with listeners of its own at indices 51.., round-robin: connections to
 * the two groups strictly alternating still give each listener of each group its equal share (each group
 * has its own turns). */
#define OTHER_LISTENERS 2
static void test_round_robin_per_group(void **state) {
        int other[OTHER_LISTENERS], counts[N_LISTENERS] = {}, other_counts[OTHER_LISTENERS] = {};
        uint32_t other_indices[OTHER_LISTENERS] = { 51, 52 };
        struct steer_group_key other_key;
        uint16_t other_port;
        struct sockaddr_in sa;
        socklen_t l = sizeof(sa);
        struct steer_set *v = calloc(1, sizeof(*v));

        assert_non_null(v);
        other[0] = listener(0);
        assert_int_equal(getsockname(other[0], (struct sockaddr *) &sa, &l), 0);
        other_port = ntohs(sa.sin_port);
        other[1] = listener(other_port);
        for (int i = 0; i < OTHER_LISTENERS; i++)
                assert_int_equal(steering_insert(steering, other_indices[i], other[i]), 0);
        assert_int_equal(steering_attach(steering, other[0]), 0);
        assert_int_equal(steering_group_key(other[0], &other_key), 0);
        v->n_active = OTHER_LISTENERS;
        memcpy(v->active, other_indices, sizeof(other_indices));
        assert_int_equal(steering_write_group(steering, &other_key, v), 0);
        set(indices, 4, NULL, 0);

        /* Pinned to one CPU: one CPU's turns, strictly alternating groups. */
        {
                cpu_set_t one, saved;
                assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
                CPU_ZERO(&one);
                CPU_SET(sched_getcpu(), &one);
                assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
                for (int k = 0; k < 200; k++) {
                        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(other_port),
                                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                        uint16_t p;
                        int fd = client(0, &p), who = -1;

                        assert_int_equal(connect_one(fd), 0);
                        counts[taken_by()]++;
                        close_reset(fd);
                        fd = client(0, &p);
                        assert_int_equal(connect(fd, (struct sockaddr *) &to, sizeof(to)), 0);
                        for (int i = 0; i < OTHER_LISTENERS; i++) {
                                int a = accept4(other[i], NULL, NULL, SOCK_CLOEXEC);
                                if (a >= 0) {
                                        close_reset(a);
                                        who = i;
                                }
                        }
                        assert_true(who >= 0);
                        other_counts[who]++;
                        close_reset(fd);
                }
                assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
        }
        fprintf(stderr, "round-robin, two groups alternating: %d %d %d %d and %d %d\n", counts[0], counts[1],
                counts[2], counts[3], other_counts[0], other_counts[1]);
        for (int i = 0; i < 4; i++)
                assert_int_equal(counts[i], 50);
        assert_int_equal(other_counts[0], 100);
        assert_int_equal(other_counts[1], 100);

        for (int i = 0; i < OTHER_LISTENERS; i++) {
                assert_int_equal(steering_remove(steering, other_indices[i]), 0);
                close(other[i]);
        }
        free(v);
        set(indices, 1, NULL, 0);
}

/* Round-robin as a shadow during a canary keeps a position per set, as the enforced round-robin does: under
 * hash (whose canary split the shadow keeps), the projection spreads each set's connections evenly over its
 * listeners, as round-robin enforced then does (with one position for both sets, the turns the previous set
 * takes would skew the active set's). */
static void test_shadow_round_robin_canary(void **state) {
        struct steer_counters before[N_LISTENERS], after;
        int projected[N_LISTENERS] = {}, enforced[N_LISTENERS] = {};
        struct steer_set *v = calloc(1, sizeof(*v));
        cpu_set_t one, saved;

        assert_non_null(v);
        assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);

        v->n_active = 4;
        memcpy(v->active, &indices[1], 4 * sizeof(uint32_t));
        v->n_previous = 1;
        v->previous[0] = indices[0];
        v->previous_percent = 20;
        v->policy = STEER_POLICY_HASH;
        v->shadow = STEER_POLICY_ROUND_ROBIN + 1;
        assert_int_equal(steering_write_group(steering, &key, v), 0);
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(steering_counters(steering, indices[i], &before[i]), 0);
        connect_many(500, (int[N_LISTENERS]) {});
        for (int i = 0; i < N_LISTENERS; i++) {
                assert_int_equal(steering_counters(steering, indices[i], &after), 0);
                projected[i] = (int) (after.shadow - before[i].shadow);
        }
        /* The previous set's share is the hash's here (the canary split is the policy's): round-robin
         * within each set gives equal counts within each set. */
        for (int i = 2; i < N_LISTENERS; i++)
                assert_true(abs(projected[i] - projected[1]) <= 1);

        v->policy = STEER_POLICY_ROUND_ROBIN;
        v->shadow = 0;
        assert_int_equal(steering_write_group(steering, &key, v), 0);
        connect_many(500, enforced);
        fprintf(stderr, "round-robin shadow in a canary: projected %d | %d %d %d %d, enforced %d | %d %d %d %d\n",
                projected[0], projected[1], projected[2], projected[3], projected[4], enforced[0], enforced[1],
                enforced[2], enforced[3], enforced[4]);
        assert_int_equal(enforced[0], 100);
        for (int i = 1; i < N_LISTENERS; i++)
                assert_int_equal(enforced[i], 100);
        assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
        free(v);
        set(indices, 1, NULL, 0);
}

/* After a restore, a set written through the restored Steering takes effect at once (its fast copy is
 * written, never the live one in place), and the group keeps its number. */
static void test_restore_then_update(void **state) {
        int fds[_STEERING_FD_MAX], c[20];
        Steering *copy = NULL;
        struct steer_set *v = calloc(1, sizeof(*v)), *w = calloc(1, sizeof(*w));
        uint32_t group;

        assert_non_null(v);
        assert_non_null(w);
        set(&indices[1], 1, NULL, 0);
        assert_int_equal(steering_get_group(steering, &key, v), 0);
        group = v->group;
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                fds[i] = fcntl(steering_fd(steering, i), F_DUPFD_CLOEXEC, 3);
        assert_int_equal(steering_restore(fds, &copy, NULL), 0);
        assert_int_equal(steering_get_group(copy, &key, w), 0);
        assert_int_equal(w->group, group);
        for (int round = 0; round < 3; round++) {
                uint32_t to = indices[2 + round % 2];
                memset(w, 0, sizeof(*w));
                w->n_active = 1;
                w->active[0] = to;
                assert_int_equal(steering_write_group(copy, &key, w), 0);
                assert_int_equal(connect_n(20, c), 0);
                assert_int_equal(drain(listeners[2 + round % 2]), 20);
                close_all(c, 20);
        }
        steering_free(copy);
        free(v);
        free(w);
        set(indices, 1, NULL, 0);
}

/* A probe aimed by its source port reaches the listener named, though it is in no set, every time, and
 * counts as a probe, not as a connection; other ports are steered as usual. */
static void test_probe_aimed_by_source_port(void **state) {
        uint64_t syns_before[N_LISTENERS], probes_before = probes(3);
        int counts[N_LISTENERS] = {};
        uint16_t p;
        int fd;

        set_canary(&indices[1], 2, &indices[0], 1, 50);
        for (int i = 0; i < N_LISTENERS; i++)
                syns_before[i] = syns(i);
        for (int k = 0; k < 100; k++) {
                fd = client(0, &p);
                assert_int_equal(steering_probe_aim(steering, p, indices[3]), 0);
                assert_int_equal(connect_one(fd), 0);
                assert_int_equal(drain(listeners[3]), 1);
                assert_int_equal(steering_probe_clear(steering, p), 0);
                close_reset(fd);
        }
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(drain(listeners[i]), 0);
        assert_int_equal(probes(3) - probes_before, 100);
        for (int i = 0; i < N_LISTENERS; i++)
                assert_int_equal(syns(i), syns_before[i]);

        /* An aim on another port changes nothing for these. */
        fd = client(0, &p);
        assert_int_equal(steering_probe_aim(steering, (uint16_t) (p + 1), indices[3]), 0);
        close_reset(fd);
        connect_many(40, counts);
        assert_int_equal(counts[0] + counts[1] + counts[2], 40);
        assert_int_equal(counts[3], 0);

        /* A cleared aim's port is steered as usual again. */
        assert_int_equal(steering_probe_clear(steering, (uint16_t) (p + 1)), 0);
        assert_int_equal(steering_probe_clear(steering, (uint16_t) (p + 1)), 0); /* not there: fine */
        fd = client(0, &p);
        assert_int_equal(steering_probe_aim(steering, p, indices[3]), 0);
        assert_int_equal(steering_probe_clear(steering, p), 0);
        assert_int_equal(connect_one(fd), 0);
        assert_int_equal(drain(listeners[3]), 0);
        assert_int_equal(drain(listeners[0]) + drain(listeners[1]) + drain(listeners[2]), 1);
        close_reset(fd);

        /* Aimed at an index that holds no listener: steered as usual, not refused. */
        fd = client(0, &p);
        assert_int_equal(steering_probe_aim(steering, p, 99), 0);
        assert_int_equal(connect_one(fd), 0);
        assert_int_equal(drain(listeners[0]) + drain(listeners[1]) + drain(listeners[2]), 1);
        assert_int_equal(steering_probe_clear(steering, p), 0);
        close_reset(fd);
        assert_int_equal(probes(3) - probes_before, 100);
        assert_int_equal(steering_probe_aim(steering, p, 0), -EINVAL);
}

/* A probe connects from a loopback address: the same source port from another address (a remote client's,
 * here an address of the namespace's own) is steered as usual. IPv6 probes come from ::1. */
static void test_probe_only_from_loopback(void **state) {
        struct sockaddr_in other = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a090909) };
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        socklen_t l = sizeof(other);
        uint32_t indices6[2] = { 31, 32 };
        struct steer_group_key key6;
        int fd, lfd6[2], one = 1;
        uint64_t before = probes(3);
        uint16_t p;

        set(&indices[0], 1, NULL, 0);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &other, sizeof(other)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &other, &l), 0);
        p = ntohs(other.sin_port);
        assert_int_equal(steering_probe_aim(steering, p, indices[3]), 0);
        assert_int_equal(connect_one(fd), 0);
        assert_int_equal(drain(listeners[3]), 0);
        assert_int_equal(drain(listeners[0]), 1);
        assert_int_equal(steering_probe_clear(steering, p), 0);
        assert_int_equal(probes(3), before);
        close_reset(fd);

        /* IPv6: a group of its own. */
        for (int i = 0; i < 2; i++) {
                lfd6[i] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(lfd6[i] >= 0);
                assert_int_equal(setsockopt(lfd6[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
                assert_int_equal(bind(lfd6[i], (struct sockaddr *) &sa6, sizeof(sa6)), 0);
                l = sizeof(sa6);
                assert_int_equal(getsockname(lfd6[i], (struct sockaddr *) &sa6, &l), 0);
                assert_int_equal(listen(lfd6[i], 16), 0);
                assert_int_equal(steering_insert(steering, indices6[i], lfd6[i]), 0);
        }
        assert_int_equal(steering_group_key(lfd6[0], &key6), 0);
        assert_int_equal(steering_set_group(steering, &key6, indices6, 1, NULL, 0, NULL, 0, 0), 0);
        assert_int_equal(steering_attach(steering, lfd6[0]), 0);
        for (int k = 0; k < 10; k++) {
                struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
                fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(fd >= 0);
                assert_int_equal(bind(fd, (struct sockaddr *) &local, sizeof(local)), 0);
                l = sizeof(local);
                assert_int_equal(getsockname(fd, (struct sockaddr *) &local, &l), 0);
                p = ntohs(local.sin6_port);
                /* Every other one aimed. */
                if (k % 2 == 0)
                        assert_int_equal(steering_probe_aim(steering, p, indices6[1]), 0);
                assert_int_equal(connect(fd, (struct sockaddr *) &sa6, sizeof(sa6)), 0);
                assert_int_equal(drain(lfd6[1]), k % 2 == 0);
                assert_int_equal(drain(lfd6[0]), k % 2 != 0);
                assert_int_equal(steering_probe_clear(steering, p), 0);
                close_reset(fd);
        }
        for (int i = 0; i < 2; i++) {
                assert_int_equal(steering_remove(steering, indices6[i]), 0);
                close(lfd6[i]);
        }
}

/* During a canary, a closing listener's queue goes to the active set, whatever share the previous one has. */
static void test_migration_ignores_previous(void **state) {
        struct steer_counters before, after;
        int c[15], counts[N_LISTENERS] = {}, fd, n = 0;

        set(&indices[3], 1, NULL, 0);
        assert_int_equal(connect_n(15, c), 0); /* queued on listener 3, not accepted */
        assert_int_equal(steering_counters(steering, indices[4], &before), 0);
        set_canary(&indices[4], 1, &indices[0], 1, 100);
        assert_int_equal(shutdown(listeners[3], SHUT_RD), 0);
        shut[3] = true;
        while ((fd = accept4(listeners[4], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                close_reset(fd);
                n++;
        }
        assert_int_equal(n, 15);
        assert_int_equal(drain(listeners[0]), 0);
        assert_int_equal(steering_counters(steering, indices[4], &after), 0);
        assert_int_equal(after.migrated_queue - before.migrated_queue, 15);
        for (int i = 0; i < 15; i++)
                close_reset(c[i]);
        /* New connections meanwhile: all to the previous set (100 %). */
        connect_many(20, counts);
        assert_int_equal(counts[0], 20);
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
        shut[1] = true;
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

        /* An aim of a probe that ran when the older rpsupd went away is gone after the restore. */
        assert_int_equal(steering_probe_aim(steering, 4242, indices[0]), 0);
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                fds[i] = fcntl(steering_fd(steering, i), F_DUPFD_CLOEXEC, 3);
        assert_int_equal(steering_restore(fds, &copy, &error), 0);
        assert_null(error);
        steer_probe_port aimed_port = 4242;
        steer_probe_index aimed_index;
        assert_true(bpf_map_lookup_elem(steering_fd(steering, STEERING_PROBES), &aimed_port, &aimed_index) < 0);
        assert_int_equal(errno, ENOENT);
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
        error = mfree(error);

        /* An older rpsupd stored no probe map: refused, so that the program is loaded afresh. */
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                fds[i] = i == STEERING_PROBES ? -EBADF : fcntl(steering_fd(steering, i), F_DUPFD_CLOEXEC, 3);
        assert_true(steering_restore(fds, &copy, &error) < 0);
        assert_non_null(error);
        assert_non_null(strstr(error, "bpf.probes"));
}

/* Loaded afresh after a refused restore: the older sockarray still holds the listeners, and a socket is in
 * one sockarray only. Taking it over moves each listener as it is inserted. */
static void test_take_over_from_older_sockarray(void **state) {
        _cleanup_(steering_freep) Steering *fresh = NULL;
        int counts[N_LISTENERS] = {};
        uint32_t index;

        assert_int_equal(steering_load(&fresh, 1024, NULL), 0);
        assert_int_equal(steering_insert(fresh, 21, listeners[0]), -EBUSY);
        assert_int_equal(steering_take_over_from(fresh, fcntl(steering_fd(steering, STEERING_LISTENERS), F_DUPFD_CLOEXEC, 3)), 0);
        assert_int_equal(steering_insert(fresh, 21, listeners[0]), 0);
        assert_int_equal(steering_find(steering, listeners[0], &index), -ENOENT);
        assert_int_equal(steering_find(fresh, listeners[0], &index), 0);
        assert_int_equal(index, 21);
        /* The newer program steers the group from now on. */
        assert_int_equal(steering_set_group(fresh, &key, (uint32_t[]) { 21 }, 1, NULL, 0, NULL, 0, 0), 0);
        assert_int_equal(steering_attach(fresh, listeners[0]), 0);
        connect_many(20, counts);
        assert_int_equal(counts[0], 20);
        /* Not a sockarray: refused. */
        assert_true(steering_take_over_from(fresh, fcntl(steering_fd(steering, STEERING_GROUPS), F_DUPFD_CLOEXEC, 3)) < 0);
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
        /* An address that is not loopback, for a client that is not rpsupd's probe. */
        struct sockaddr_in *a = (struct sockaddr_in *) &ifr.ifr_addr;
        strcpy(ifr.ifr_name, "lo:1");
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(0x0a090909); /* 10.9.9.9 */
        if (ioctl(fd, SIOCSIFADDR, &ifr) < 0) {
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
                cmocka_unit_test(test_policy_hash_keeps_flow),
                cmocka_unit_test(test_policy_kernel_includes_outsiders),
                cmocka_unit_test(test_canary_share),
                cmocka_unit_test(test_shadow_projects_enforced),
                cmocka_unit_test(test_shared_port_uses_groups_map),
                cmocka_unit_test(test_flow_table_keeps_flows),
                cmocka_unit_test(test_round_robin_per_group),
                cmocka_unit_test(test_shadow_round_robin_canary),
                cmocka_unit_test(test_restore_then_update),
                cmocka_unit_test(test_probe_aimed_by_source_port),
                cmocka_unit_test(test_probe_only_from_loopback),
                cmocka_unit_test(test_migration_ignores_previous),
                cmocka_unit_test(test_closing_listener_migrates),
                cmocka_unit_test(test_restore_checks_layout),
                cmocka_unit_test(test_take_over_from_older_sockarray), /* last: the group leaves `steering` */
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
