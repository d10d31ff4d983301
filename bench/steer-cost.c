/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What rpsup's steering program costs per run, by the kernel's own statistics (BPF_ENABLE_STATS): the
 * program (bpf/steer.c's API, as rpsupd loads it) on N SO_REUSEPORT listeners of 127.0.0.1, in a network
 * namespace of its own, under a loop of real connections (TCP: connect, then reset; the listeners' queues
 * drained as it goes) or datagrams (UDP: from a number of client sockets, each a flow). Prints one JSON
 * object. Needs root (BPF, namespaces).
 *
 *   steer-cost [--workers N] [--policy round-robin|hash|kernel] [--shadow none|round-robin|hash]
 *              [--flows SIZE] [--udp] [--clients N] [--runs N] */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "macro.h"

#include "steer.h"
#include "steering-policy.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

#define PORT 4242
#define DRAIN_EVERY 64

static int fail(const char *what, int r) {
        fprintf(stderr, "steer-cost: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return EXIT_FAILURE;
}

static int loopback_up(void) {
        struct ifreq ifr = {};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

        if (fd < 0)
                return -errno;
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        else {
                ifr.ifr_flags |= IFF_UP;
                if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                        r = -errno;
        }
        close(fd);
        return r;
}

static int listener(int type) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || (type == SOCK_STREAM && listen(fd, 4096) < 0)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static void drain(const int *fds, int n, int type) {
        char buf[64];

        for (int i = 0; i < n; i++)
                for (;;) {
                        if (type == SOCK_STREAM) {
                                int c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
                                if (c < 0)
                                        break;
                                close(c);
                        } else if (recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) < 0)
                                break;
                }
}

/* A program of a few instructions, loaded as rpsupd's is: `select` selects sockarray index 1 and passes,
 * `empty` passes. */
static int floor_program(bool select, int sockarray_fd) {
        struct bpf_insn empty[] = {
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = SK_PASS },
                { .code = BPF_JMP | BPF_EXIT },
        };
        struct bpf_insn sel[] = {
                /* *(u32 *)(r10 - 4) = 1 */
                { .code = BPF_ST | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .off = -4, .imm = 1 },
                /* r2 = the sockarray (two instructions) */
                { .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_2, .src_reg = BPF_PSEUDO_MAP_FD,
                  .imm = sockarray_fd },
                { .imm = 0 },
                /* r3 = r10 - 4; r4 = 0; r0 = bpf_sk_select_reuseport(r1, r2, r3, r4) */
                { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_3, .src_reg = BPF_REG_10 },
                { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_3, .imm = -4 },
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_4, .imm = 0 },
                { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_sk_select_reuseport },
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = SK_PASS },
                { .code = BPF_JMP | BPF_EXIT },
        };
        LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);
        int fd;

        fd = bpf_prog_load(BPF_PROG_TYPE_SK_REUSEPORT, "steer_floor", "GPL", select ? sel : empty,
                           select ? ELEMENTSOF(sel) : ELEMENTSOF(empty), &opts);
        return fd < 0 ? -errno : fd;
}

static int prog_stats(int fd, uint64_t *ret_ns, uint64_t *ret_cnt) {
        struct bpf_prog_info info = {};
        uint32_t len = sizeof(info);

        if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
                return -errno;
        *ret_ns = info.run_time_ns;
        *ret_cnt = info.run_cnt;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "workers", required_argument, NULL, 'w' }, { "policy", required_argument, NULL, 'p' },
                { "shadow", required_argument, NULL, 's' },  { "flows", required_argument, NULL, 'f' },
                { "udp", no_argument, NULL, 'u' },           { "clients", required_argument, NULL, 'c' },
                { "runs", required_argument, NULL, 'n' },    { "program", required_argument, NULL, 'P' },
                {}
        };
        const char *policy_name = "round-robin", *shadow_name = "none", *program = "steer";
        int workers = 8, type = SOCK_STREAM, clients = 1000, runs = 200000, c, r, stats_fd;
        uint32_t flows = 0;
        SteeringPolicy policy, shadow_policy = STEERING_ROUND_ROBIN;
        _cleanup_(steering_freep) Steering *s = NULL;
        struct steer_group_key key;
        _cleanup_free_ struct steer_set *set = NULL;
        uint64_t ns0, cnt0, ns1, cnt1;
        struct timespec t0, t1;
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ int *fds = NULL, *client_fds = NULL;
        int prog_fd;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'w': workers = atoi(optarg); break;
                case 'p': policy_name = optarg; break;
                case 's': shadow_name = optarg; break;
                case 'f': flows = (uint32_t) strtoul(optarg, NULL, 10); break;
                case 'u': type = SOCK_DGRAM; break;
                case 'c': clients = atoi(optarg); break;
                case 'n': runs = atoi(optarg); break;
                case 'P': program = optarg; break;
                default: return EXIT_FAILURE;
                }
        if (workers < 1 || workers > STEER_SET_MAX || clients < 1 || clients > 60000 || runs < 1 ||
            flows > STEER_FLOWS_MAX ||
            (strcmp(program, "steer") != 0 && strcmp(program, "empty") != 0 && strcmp(program, "select") != 0)) {
                fprintf(stderr, "steer-cost: an argument is out of range\n");
                return EXIT_FAILURE;
        }
        policy = steering_policy_from_string(policy_name);
        if (policy < 0)
                return fail("--policy", policy);
        if (strcmp(shadow_name, "none") != 0) {
                shadow_policy = steering_policy_from_string(shadow_name);
                if (shadow_policy < 0 || shadow_policy == STEERING_KERNEL)
                        return fail("--shadow", -EINVAL);
        }

        if (unshare(CLONE_NEWNET) < 0)
                return fail("a network namespace of its own", -errno);
        if ((r = loopback_up()) < 0)
                return fail("lo up", r);
        stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (stats_fd < 0)
                return fail("BPF_ENABLE_STATS", -errno);
        r = steering_load(&s, flows ? flows : 1, &error);
        if (r < 0) {
                fprintf(stderr, "steer-cost: %s\n", error ? error : strerror(-r));
                return EXIT_FAILURE;
        }

        fds = calloc((size_t) workers, sizeof(int));
        set = calloc(1, sizeof(*set));
        if (!fds || !set)
                return fail("memory", -ENOMEM);
        for (int i = 0; i < workers; i++) {
                fds[i] = listener(type);
                if (fds[i] < 0)
                        return fail("a listener", fds[i]);
                if ((r = steering_insert(s, (uint32_t) i + 1, fds[i])) < 0)
                        return fail("the sockarray", r);
                set->active[i] = (uint32_t) i + 1;
        }
        set->n_active = (uint32_t) workers;
        set->policy = (uint32_t) policy;
        set->shadow = strcmp(shadow_name, "none") != 0 ? (uint32_t) shadow_policy + 1 : 0;
        set->flows = flows > 0;
        if ((r = steering_group_key(fds[0], &key)) < 0 || (r = steering_write_group(s, &key, set)) < 0)
                return fail("the group's set", r);
        prog_fd = steering_fd(s, STEERING_PROG);
        if (strcmp(program, "steer") != 0) {
                prog_fd = floor_program(strcmp(program, "select") == 0, steering_fd(s, STEERING_LISTENERS));
                if (prog_fd < 0)
                        return fail("loading the floor program", prog_fd);
        }
        if (setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd, sizeof(prog_fd)) < 0)
                return fail("attaching the program", -errno);

        if (type == SOCK_DGRAM) {
                client_fds = calloc((size_t) clients, sizeof(int));
                if (!client_fds)
                        return fail("memory", -ENOMEM);
                for (int i = 0; i < clients; i++) {
                        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT),
                                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                        client_fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                        if (client_fds[i] < 0 || connect(client_fds[i], (struct sockaddr *) &sa, sizeof(sa)) < 0)
                                return fail("a client socket", -errno);
                }
        }

        if ((r = prog_stats(prog_fd, &ns0, &cnt0)) < 0)
                return fail("the program's statistics", r);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < runs; i++) {
                if (type == SOCK_STREAM) {
                        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT),
                                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

                        if (fd < 0)
                                return fail("a client socket", -errno);
                        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                                return fail("connect", -errno);
                        close(fd);
                } else if (send(client_fds[i % clients], "x", 1, 0) < 0)
                        return fail("send", -errno);
                if (i % DRAIN_EVERY == DRAIN_EVERY - 1)
                        drain(fds, workers, type);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((r = prog_stats(prog_fd, &ns1, &cnt1)) < 0)
                return fail("the program's statistics", r);

        printf("{\"program\": \"%s\", \"workers\": %d, \"protocol\": \"%s\", \"policy\": \"%s\", \"shadow\": \"%s\", \"flows\": %" PRIu32
               ", \"clients\": %d, \"runs\": %" PRIu64 ", \"run_time_ns\": %" PRIu64 ", \"ns_per_run\": %.1f, "
               "\"seconds\": %.3f}\n",
               program, workers, type == SOCK_STREAM ? "tcp" : "udp", policy_name, shadow_name, flows,
               type == SOCK_STREAM ? 0 : clients, cnt1 - cnt0, ns1 - ns0,
               cnt1 > cnt0 ? (double) (ns1 - ns0) / (double) (cnt1 - cnt0) : 0.0,
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        return EXIT_SUCCESS;
}
