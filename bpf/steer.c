/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fd-util.h"
#include "log.h"
#include "string-util.h"
#include "steer.h"
#include "steer.skel.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

const char *const steering_fd_names[_STEERING_FD_MAX] = {
        [STEERING_PROG] = "bpf.prog",
        [STEERING_LISTENERS] = "bpf.listeners",
        [STEERING_GROUPS] = "bpf.groups",
        [STEERING_COUNTERS] = "bpf.counters",
        [STEERING_PROBES] = "bpf.probes",
};

struct Steering {
        struct steer_bpf *skel; /* NULL when restored */
        int fds[_STEERING_FD_MAX];
        int old_listeners; /* an older rpsupd's sockarray (steering_take_over_from), or -EBADF */
        int n_cpus;
};

/* libbpf's own messages (a verifier rejection comes with the verifier's log) go to our log, one entry per
 * line, at our level for theirs: debug ones only when we log debug. */
static bool libbpf_quiet;

void steering_log_quietly(bool quiet) {
        libbpf_quiet = quiet;
}

_printf_(2, 0) static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap) {
        int our = libbpf_quiet ? LOG_DEBUG :
                  level == LIBBPF_WARN ? LOG_WARNING : level == LIBBPF_INFO ? LOG_INFO : LOG_DEBUG;
        _cleanup_free_ char *text = NULL;
        char *line, *saveptr = NULL;

        if (log_get_max_level() < our)
                return 0;
        text = strdup_vprintf(fmt, ap);
        if (!text)
                return 0;
        for (line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr))
                log_full(our, "%s", line);
        return 0;
}

/* *ret_error = the formatted message, when the caller wants it. */
static void set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static void set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return;
        va_start(ap, fmt);
        *ret_error = strdup_vprintf(fmt, ap);
        va_end(ap);
}

static Steering *steering_new(void) {
        Steering *s = calloc(1, sizeof(Steering));

        if (!s)
                return NULL;
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                s->fds[i] = -EBADF;
        s->old_listeners = -EBADF;
        s->n_cpus = libbpf_num_possible_cpus();
        if (s->n_cpus <= 0)
                s->n_cpus = 1;
        return s;
}

int steering_load(Steering **ret, char **ret_error) {
        _cleanup_(steering_freep) Steering *s = NULL;
        int r;

        libbpf_set_print(libbpf_log);
        if (getenv("RPSUP_PROBE_DENY_BPF") && !streq(getenv("RPSUP_PROBE_DENY_BPF"), "0")) {
                set_error(ret_error, "BPF refused on purpose (RPSUP_PROBE_DENY_BPF is set)");
                return -EPERM;
        }

        s = steering_new();
        if (!s)
                return -ENOMEM;
        s->skel = steer_bpf__open();
        if (!s->skel) {
                r = -errno;
                set_error(ret_error, "cannot open the steering program: %s", strerror(-r));
                return r;
        }
        r = steer_bpf__load(s->skel);
        if (r < 0) {
                set_error(ret_error, "cannot load the steering program: %s%s", strerror(-r),
                          r == -EPERM ? " (needs CAP_BPF, or root)" :
                          r == -EINVAL ? " (the kernel does not know sk_reuseport/migrate programs: Linux >= 5.14 "
                                         "is needed)" : "");
                return r;
        }
        /* Own copies, so that the skeleton and a restored Steering look the same. */
        s->fds[STEERING_PROG] = fd_dup_cloexec(bpf_program__fd(s->skel->progs.steer));
        s->fds[STEERING_LISTENERS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.listeners));
        s->fds[STEERING_GROUPS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.groups));
        s->fds[STEERING_COUNTERS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.counters));
        s->fds[STEERING_PROBES] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.probes));
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                if (s->fds[i] < 0)
                        return s->fds[i];
        steer_bpf__destroy(s->skel);
        s->skel = NULL;
        *ret = TAKE_PTR(s);
        return 0;
}

static int check_map(int fd, enum bpf_map_type type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                     const char *name, char **ret_error) {
        struct bpf_map_info info = {};
        uint32_t len = sizeof(info);

        if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
                set_error(ret_error, "the stored \"%s\" is not a BPF map: %s", name, strerror(errno));
                return -EBADFD;
        }
        if (info.type != type || info.key_size != key_size || info.value_size != value_size ||
            info.max_entries != max_entries) {
                set_error(ret_error, "the stored \"%s\" has another layout (type %u, key %u, value %u, %u entries) "
                          "than this rpsupd's (type %u, key %u, value %u, %u entries)", name, info.type,
                          info.key_size, info.value_size, info.max_entries, type, key_size, value_size, max_entries);
                return -EBADFD;
        }
        return 0;
}

int steering_restore(int fds[_STEERING_FD_MAX], Steering **ret, char **ret_error) {
        _cleanup_(steering_freep) Steering *s = NULL;
        struct bpf_prog_info info = {};
        uint32_t len = sizeof(info);
        int r;

        libbpf_set_print(libbpf_log);
        s = steering_new();
        if (!s) {
                for (int i = 0; i < _STEERING_FD_MAX; i++)
                        safe_close(fds[i]);
                return -ENOMEM;
        }
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                s->fds[i] = fds[i];
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                if (s->fds[i] < 0) {
                        set_error(ret_error, "the fd store holds no \"%s\"", steering_fd_names[i]);
                        return -ENOENT;
                }

        if (bpf_obj_get_info_by_fd(s->fds[STEERING_PROG], &info, &len) < 0 ||
            info.type != BPF_PROG_TYPE_SK_REUSEPORT) {
                set_error(ret_error, "the stored \"bpf.prog\" is not an sk_reuseport program");
                return -EBADFD;
        }
        if ((r = check_map(s->fds[STEERING_LISTENERS], BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint32_t),
                           sizeof(uint64_t), STEER_LISTENERS_MAX, "bpf.listeners", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_GROUPS], BPF_MAP_TYPE_HASH, sizeof(struct steer_group_key),
                           sizeof(struct steer_set), STEER_GROUPS_MAX, "bpf.groups", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_COUNTERS], BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t),
                           sizeof(struct steer_counters), STEER_LISTENERS_MAX, "bpf.counters", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_PROBES], BPF_MAP_TYPE_HASH, sizeof(steer_probe_port),
                           sizeof(steer_probe_index), STEER_PROBES_MAX, "bpf.probes", ret_error)) < 0)
                return r;
        /* Aims of probes that ran when the older rpsupd went away: none runs now. */
        for (steer_probe_port port; bpf_map_get_next_key(s->fds[STEERING_PROBES], NULL, &port) == 0;)
                if (bpf_map_delete_elem(s->fds[STEERING_PROBES], &port) < 0)
                        break;
        *ret = TAKE_PTR(s);
        return 0;
}

Steering *steering_free(Steering *s) {
        if (!s)
                return NULL;
        if (s->skel)
                steer_bpf__destroy(s->skel);
        for (int i = 0; i < _STEERING_FD_MAX; i++)
                safe_close(s->fds[i]);
        safe_close(s->old_listeners);
        free(s);
        return NULL;
}

int steering_fd(Steering *s, int which) {
        return s->fds[which];
}

int steering_attach(Steering *s, int listener_fd) {
        int fd = s->fds[STEERING_PROG];

        if (setsockopt(listener_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &fd, sizeof(fd)) < 0)
                return -errno;
        return 0;
}

int steering_take_over_from(Steering *s, int old_listeners_fd) {
        int r;

        r = check_map(old_listeners_fd, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint32_t), sizeof(uint64_t),
                      STEER_LISTENERS_MAX, "bpf.listeners", NULL);
        if (r < 0) {
                safe_close(old_listeners_fd);
                return r;
        }
        safe_close(s->old_listeners);
        s->old_listeners = old_listeners_fd;
        return 0;
}

/* The index of a socket (by its cookie) in a sockarray. */
static int find_in(int map_fd, uint64_t cookie, uint32_t *ret_index) {
        uint64_t value;

        for (uint32_t i = 0; i < STEER_LISTENERS_MAX; i++)
                if (bpf_map_lookup_elem(map_fd, &i, &value) == 0 && value == cookie) {
                        *ret_index = i;
                        return 0;
                }
        return -ENOENT;
}

int steering_insert(Steering *s, uint32_t index, int listener_fd) {
        uint64_t value = (uint64_t) listener_fd, cookie;
        socklen_t l = sizeof(cookie);
        uint32_t old;

        if (bpf_map_update_elem(s->fds[STEERING_LISTENERS], &index, &value, BPF_ANY) == 0)
                return 0;
        /* EBUSY: in another sockarray; the older rpsupd's lets it go. */
        if (errno != EBUSY || s->old_listeners < 0)
                return -errno;
        if (getsockopt(listener_fd, SOL_SOCKET, SO_COOKIE, &cookie, &l) < 0)
                return -errno;
        if (find_in(s->old_listeners, cookie, &old) < 0 || bpf_map_delete_elem(s->old_listeners, &old) < 0)
                return -EBUSY;
        if (bpf_map_update_elem(s->fds[STEERING_LISTENERS], &index, &value, BPF_ANY) < 0)
                return -errno;
        return 0;
}

int steering_remove(Steering *s, uint32_t index) {
        if (bpf_map_delete_elem(s->fds[STEERING_LISTENERS], &index) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int steering_find(Steering *s, int listener_fd, uint32_t *ret_index) {
        uint64_t cookie;
        socklen_t l = sizeof(cookie);

        if (getsockopt(listener_fd, SOL_SOCKET, SO_COOKIE, &cookie, &l) < 0)
                return -errno;
        return find_in(s->fds[STEERING_LISTENERS], cookie, ret_index);
}

int steering_write_group(Steering *s, const struct steer_group_key *key, const struct steer_set *set) {
        if (set->n_active > STEER_SET_MAX || set->n_standby > STEER_SET_MAX || set->n_previous > STEER_SET_MAX)
                return -E2BIG;
        if (set->previous_percent > 100 || set->policy >= _STEER_POLICY_MAX || set->shadow > _STEER_POLICY_MAX)
                return -EINVAL;
        if (bpf_map_update_elem(s->fds[STEERING_GROUPS], key, set, BPF_ANY) < 0)
                return -errno;
        return 0;
}

int steering_set_group(Steering *s, const struct steer_group_key *key, const uint32_t *active, size_t n_active,
                       const uint32_t *standby, size_t n_standby, const uint32_t *previous, size_t n_previous,
                       unsigned previous_percent) {
        _cleanup_free_ struct steer_set *set = NULL;

        if (n_active > STEER_SET_MAX || n_standby > STEER_SET_MAX || n_previous > STEER_SET_MAX)
                return -E2BIG;
        if (previous_percent > 100)
                return -EINVAL;
        set = calloc(1, sizeof(*set));
        if (!set)
                return -ENOMEM;
        set->n_active = (uint32_t) n_active;
        set->n_standby = (uint32_t) n_standby;
        if (n_active > 0)
                memcpy(set->active, active, sizeof(uint32_t) * n_active);
        if (n_standby > 0)
                memcpy(set->standby, standby, sizeof(uint32_t) * n_standby);
        if (n_previous > 0) {
                set->n_previous = (uint32_t) n_previous;
                set->previous_percent = previous_percent;
                memcpy(set->previous, previous, sizeof(uint32_t) * n_previous);
        }
        return steering_write_group(s, key, set);
}

int steering_get_group(Steering *s, const struct steer_group_key *key, struct steer_set *ret) {
        if (bpf_map_lookup_elem(s->fds[STEERING_GROUPS], key, ret) < 0)
                return -errno;
        return 0;
}

int steering_group_key(int listener_fd, struct steer_group_key *ret) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof(ss), pl;
        struct steer_group_key k = {};
        int protocol;

        if (getsockname(listener_fd, (struct sockaddr *) &ss, &l) < 0)
                return -errno;
        pl = sizeof(protocol);
        if (getsockopt(listener_fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &pl) < 0)
                return -errno;
        k.family = ss.ss_family;
        k.protocol = (uint32_t) protocol;
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                k.port = ntohs(in->sin_port);
                memcpy(&k.addr[0], &in->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                k.port = ntohs(in6->sin6_port);
                memcpy(k.addr, &in6->sin6_addr, 16);
        } else
                return -EAFNOSUPPORT;
        *ret = k;
        return 0;
}

int steering_probe_aim(Steering *s, uint16_t port, uint32_t index) {
        steer_probe_port key = port;
        steer_probe_index value = index;

        if (index == 0 || index >= STEER_LISTENERS_MAX)
                return -EINVAL;
        if (bpf_map_update_elem(s->fds[STEERING_PROBES], &key, &value, BPF_ANY) < 0)
                return -errno;
        return 0;
}

int steering_probe_clear(Steering *s, uint16_t port) {
        steer_probe_port key = port;

        if (bpf_map_delete_elem(s->fds[STEERING_PROBES], &key) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int steering_counters(Steering *s, uint32_t index, struct steer_counters *ret) {
        struct steer_counters per_cpu[s->n_cpus];
        struct steer_counters sum = {};

        if (bpf_map_lookup_elem(s->fds[STEERING_COUNTERS], &index, per_cpu) < 0)
                return -errno;
        for (int i = 0; i < s->n_cpus; i++) {
                sum.syns += per_cpu[i].syns;
                sum.probes += per_cpu[i].probes;
                sum.migrated_queue += per_cpu[i].migrated_queue;
                sum.migrated_ack += per_cpu[i].migrated_ack;
                sum.migrated_timer += per_cpu[i].migrated_timer;
                sum.refused += per_cpu[i].refused;
                sum.kernel += per_cpu[i].kernel;
        }
        *ret = sum;
        return 0;
}

int steering_counters_reset(Steering *s, uint32_t index) {
        struct steer_counters zero[s->n_cpus];

        memset(zero, 0, sizeof(zero));
        if (bpf_map_update_elem(s->fds[STEERING_COUNTERS], &index, zero, BPF_ANY) < 0)
                return -errno;
        return 0;
}
