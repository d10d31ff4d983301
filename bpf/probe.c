/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "fd-util.h"
#include "parse-util.h"
#include "probe.h"
#include "steer.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

static int read_sysctl_int(const char *path, int *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char buf[32];

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(buf, sizeof(buf), f))
                return ferror(f) ? -EIO : -ENODATA;
        buf[strcspn(buf, "\n")] = 0;
        return parse_int(buf, ret);
}

/* A listening TCP socket in a reuseport group of its own, on an ephemeral port. */
static int reuseport_listener(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int probe_reuseport(void) {
        struct sockaddr_in sa;
        socklen_t l = sizeof(sa);
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        int one = 1;

        a = reuseport_listener();
        if (a < 0)
                return a;
        if (getsockname(a, (struct sockaddr *) &sa, &l) < 0)
                return -errno;
        b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (b < 0)
                return -errno;
        if (setsockopt(b, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(b, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(b, 1) < 0)
                return -errno;
        return 0;
}

/* r0 = SK_PASS; with `migrate`, first read ctx->migrating_sk, which only 5.14+ verifiers know. */
static int load_prog(bool migrate, char *log, size_t log_size) {
        struct bpf_insn insns[] = {
                { .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
                  .off = (short) offsetof(struct sk_reuseport_md, migrating_sk) },
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = SK_PASS },
                { .code = BPF_JMP | BPF_EXIT },
        };
        LIBBPF_OPTS(bpf_prog_load_opts, opts,
                    .expected_attach_type = migrate ? BPF_SK_REUSEPORT_SELECT_OR_MIGRATE : BPF_SK_REUSEPORT_SELECT,
                    .log_buf = log, .log_size = (unsigned) log_size, .log_level = log ? 1 : 0);
        int fd;

        fd = bpf_prog_load(BPF_PROG_TYPE_SK_REUSEPORT, "rpsup_probe", "GPL", migrate ? insns : insns + 1,
                           migrate ? 3 : 2, &opts);
        return fd < 0 ? -errno : fd;
}

static int try_attach(int prog_fd, int map_fd) {
        _cleanup_close_ int fd = reuseport_listener();
        uint32_t key = 0;
        uint64_t value;

        if (fd < 0)
                return fd;
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd, sizeof(prog_fd)) < 0)
                return -errno;
        value = (uint64_t) fd;
        if (map_fd >= 0 && bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) < 0)
                return -errno;
        return 0;
}

static void set(ProbeResult *p, StrategyKind k, bool ok, const char *fmt, ...) _printf_(4, 5);
static void set(ProbeResult *p, StrategyKind k, bool ok, const char *fmt, ...) {
        va_list ap;

        p->available[k] = ok;
        va_start(ap, fmt);
        (void) vsnprintf(p->reason[k], PROBE_REASON_MAX, fmt, ap);
        va_end(ap);
}

void probe_run(ProbeResult *p) {
        struct utsname u;
        _cleanup_close_ int map = -EBADF, select_fd = -EBADF, migrate_fd = -EBADF;
        bool deny = getenv("RPSUP_PROBE_DENY_BPF") && !streq(getenv("RPSUP_PROBE_DENY_BPF"), "0");
        char why[PROBE_REASON_MAX] = "";
        int r;

        *p = (ProbeResult) {};
        if (uname(&u) == 0)
                snprintf(p->kernel, sizeof(p->kernel), "%.32s %.120s", u.sysname, u.release);
        if (read_sysctl_int("/proc/sys/net/ipv4/tcp_migrate_req", &p->migrate_sysctl) < 0)
                p->migrate_sysctl = -1;

        r = probe_reuseport();
        p->reuseport = r >= 0;
        if (r < 0)
                snprintf(why, sizeof(why), "SO_REUSEPORT groups do not work here: %s", strerror(-r));

        if (deny)
                snprintf(p->bpf_reason, sizeof(p->bpf_reason), "BPF refused on purpose (RPSUP_PROBE_DENY_BPF is set)");
        else {
                map = bpf_map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "rpsup_probe", sizeof(uint32_t),
                                     sizeof(uint64_t), 1, NULL);
                if (map < 0) {
                        r = -errno;
                        snprintf(p->bpf_reason, sizeof(p->bpf_reason), "cannot create a REUSEPORT_SOCKARRAY map: %s%s",
                                 strerror(-r), r == -EPERM ? " (needs CAP_BPF, or root)" : "");
                } else {
                        p->bpf_maps = true;
                        select_fd = load_prog(false, NULL, 0);
                        if (select_fd < 0)
                                snprintf(p->bpf_reason, sizeof(p->bpf_reason),
                                         "cannot load an sk_reuseport program: %s", strerror(-select_fd));
                        else if ((r = try_attach(select_fd, map)) < 0)
                                snprintf(p->bpf_reason, sizeof(p->bpf_reason),
                                         "cannot attach an sk_reuseport program to a socket: %s", strerror(-r));
                        else
                                p->select_prog = true;

                        migrate_fd = load_prog(true, NULL, 0);
                        if (migrate_fd >= 0 && try_attach(migrate_fd, -EBADF) >= 0)
                                p->migrate_prog = true;

                        /* And rpsup's own steering program, which both drain and migrate run (it reads
                         * md->sk and md->migrating_sk: Linux >= 5.14). */
                        if (p->select_prog) {
                                _cleanup_(steering_freep) Steering *s = NULL;
                                _cleanup_free_ char *error = NULL;
                                steering_log_quietly(true);
                                r = steering_load(&s, 1, &error);
                                steering_log_quietly(false);
                                if (r < 0) {
                                        snprintf(p->bpf_reason, sizeof(p->bpf_reason), "rpsup's steering program: %s",
                                                 error ?: strerror(-r));
                                        p->select_prog = p->migrate_prog = false;
                                }
                        }
                }
        }

        set(p, STRATEGY_HANDOFF, true, "works on every kernel, for every socket type");
        if (!p->reuseport)
                set(p, STRATEGY_DRAIN, false, "%.250s", why);
        else if (!p->select_prog)
                set(p, STRATEGY_DRAIN, false, "%.250s", p->bpf_reason);
        else
                set(p, STRATEGY_DRAIN, true, "BPF steering over SO_REUSEPORT listeners works");

        if (!p->reuseport)
                set(p, STRATEGY_MIGRATE, false, "%.250s", why);
        else if (p->migrate_prog)
                set(p, STRATEGY_MIGRATE, true, "sk_reuseport/migrate programs load and attach (TCP only)");
        else if (p->migrate_sysctl == 1)
                set(p, STRATEGY_MIGRATE, true,
                    "without BPF (%.120s), through net.ipv4.tcp_migrate_req=1: no steering, random migration targets",
                    p->bpf_reason[0] ? p->bpf_reason : "the migrate program does not load");
        else if (p->migrate_sysctl < 0)
                set(p, STRATEGY_MIGRATE, false, "this kernel cannot migrate sockets (Linux >= 5.14 needed)");
        else if (!p->select_prog)
                set(p, STRATEGY_MIGRATE, false, "%.200s, and net.ipv4.tcp_migrate_req is 0", p->bpf_reason);
        else
                set(p, STRATEGY_MIGRATE, false, "the sk_reuseport/migrate program does not load here");

        set(p, STRATEGY_AUTO, true, "%s", p->available[STRATEGY_MIGRATE] && p->migrate_prog ? "migrate" :
                                           p->available[STRATEGY_DRAIN] ? "drain" : "handoff");
}
