/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
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
        [STEERING_FLOWS] = "bpf.flows",
        [STEERING_STATE] = "bpf.state",
        [STEERING_PORTS] = "bpf.ports",
        [STEERING_SETS] = "bpf.sets",
        [STEERING_EPOCHS] = "bpf.epochs",
        [STEERING_TURNS] = "bpf.turns",
};

/* A group's number (steer_set.group): its pair of fast copies in `sets` (2 × number and the next), and
 * its round-robin positions in `turns`. Which copy is live is the ports map's to say, never remembered here:
 * a write goes to the other one. */
typedef struct FastGroup {
        bool used;
        bool shared; /* another group has its port, family and protocol: no fast copy, for either */
        struct steer_group_key key;
} FastGroup;

struct Steering {
        struct steer_bpf *skel; /* NULL when restored */
        int fds[_STEERING_FD_MAX];
        int old_listeners; /* an older rpsupd's sockarray (steering_take_over_from), or -EBADF */
        uint32_t aims;     /* entries in the probe map, as the state map says to the program */
        FastGroup fast[STEER_GROUPS_MAX];
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

int steering_load(Steering **ret, uint32_t flow_max, char **ret_error) {
        _cleanup_(steering_freep) Steering *s = NULL;
        int r;

        libbpf_set_print(libbpf_log);
        if (getenv("RPSUP_PROBE_DENY_BPF") && !streq(getenv("RPSUP_PROBE_DENY_BPF"), "0")) {
                set_error(ret_error, "BPF refused on purpose (RPSUP_PROBE_DENY_BPF is set)");
                return -EPERM;
        }

        if (flow_max == 0 || flow_max > STEER_FLOWS_MAX) {
                set_error(ret_error, "a flow table of %" PRIu32 " entries (1..%u)", flow_max, STEER_FLOWS_MAX);
                return -ERANGE;
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
        r = bpf_map__set_max_entries(s->skel->maps.flows, flow_max);
        if (r < 0) {
                set_error(ret_error, "cannot size the flow table: %s", strerror(-r));
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
        s->fds[STEERING_FLOWS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.flows));
        s->fds[STEERING_STATE] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.state));
        s->fds[STEERING_PORTS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.ports));
        s->fds[STEERING_SETS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.sets));
        s->fds[STEERING_EPOCHS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.epochs));
        s->fds[STEERING_TURNS] = fd_dup_cloexec(bpf_map__fd(s->skel->maps.turns));
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
            (max_entries ? info.max_entries != max_entries : info.max_entries > STEER_FLOWS_MAX)) {
                set_error(ret_error, "the stored \"%s\" has another layout (type %u, key %u, value %u, %u entries) "
                          "than this rpsupd's (type %u, key %u, value %u, %u entries)", name, info.type,
                          info.key_size, info.value_size, info.max_entries, type, key_size, value_size, max_entries);
                return -EBADFD;
        }
        return 0;
}

static bool same_key(const struct steer_group_key *a, const struct steer_group_key *b) {
        return memcmp(a, b, sizeof(*a)) == 0;
}

static bool same_port_slot(const struct steer_group_key *a, const struct steer_group_key *b) {
        return a->port == b->port && steer_port_slot(a->family, a->protocol) == steer_port_slot(b->family, b->protocol);
}

/* The port's entry for the key's family and protocol: 1 + the live copy, or 0. */
static int port_entry(Steering *s, const struct steer_group_key *key, struct steer_port *ret) {
        uint32_t port = key->port;

        if (port >= STEER_PORTS)
                return -EINVAL;
        if (bpf_map_lookup_elem(s->fds[STEERING_PORTS], &port, ret) < 0)
                return -errno;
        return 0;
}

/* Points the port's entry for the key's family and protocol at `copy` (0: none). */
static int port_point(Steering *s, const struct steer_group_key *key, uint32_t copy) {
        struct steer_port p;
        uint32_t port = key->port;
        int r;

        r = port_entry(s, key, &p);
        if (r < 0)
                return r;
        p.set[steer_port_slot(key->family, key->protocol)] = (uint16_t) copy;
        if (bpf_map_update_elem(s->fds[STEERING_PORTS], &port, &p, BPF_ANY) < 0)
                return -errno;
        return 0;
}

/* The group's number: known, or a new one. A new group that has the port, family and protocol of another
 * makes both shared (no fast copy): the other's port entry is cleared at its next write, and now. */
static FastGroup *fast_group(Steering *s, const struct steer_group_key *key, int *ret_error) {
        FastGroup *free_g = NULL;
        bool shared = false;

        *ret_error = 0;
        for (size_t i = 0; i < STEER_GROUPS_MAX; i++) {
                FastGroup *o = &s->fast[i];

                if (o->used && same_key(&o->key, key))
                        return o;
                if (!o->used && !free_g)
                        free_g = o;
        }
        if (!free_g)
                return NULL; /* cannot be: the groups map holds as many */
        for (size_t i = 0; i < STEER_GROUPS_MAX; i++) {
                FastGroup *o = &s->fast[i];
                int r;

                if (!o->used || !same_port_slot(&o->key, key))
                        continue;
                shared = true;
                o->shared = true;
                r = port_point(s, &o->key, 0);
                if (r < 0 && *ret_error == 0)
                        *ret_error = r;
        }
        *free_g = (FastGroup) { .used = true, .shared = shared, .key = *key };
        return free_g;
}

/* The group's fast copy, once its set is in the groups map: written into the copy the ports map does not
 * name, then named there. A shared group has none, and its port entry is cleared at each write (so that a
 * failed clear is tried again). When naming the new copy fails, the entry is cleared (the program then reads
 * the groups map); when that fails too, the old copy stays named until the next write, which the caller is
 * told of. */
static int fast_write(Steering *s, FastGroup *g, const struct steer_set *set) {
        _cleanup_free_ struct steer_fast_set *f = NULL;
        uint32_t number = (uint32_t) (g - s->fast), copy, live;
        struct steer_port p;
        int r;

        if (g->shared)
                return port_point(s, &g->key, 0);
        r = port_entry(s, &g->key, &p);
        if (r < 0)
                return r;
        live = p.set[steer_port_slot(g->key.family, g->key.protocol)];
        copy = 2 * number + (live == 2 * number + 1 ? 1 : 0); /* not the live one (1 + copy in the entry) */
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->key = g->key;
        f->set = *set;
        if (bpf_map_update_elem(s->fds[STEERING_SETS], &copy, f, BPF_ANY) < 0) {
                r = -errno;
                (void) port_point(s, &g->key, 0);
                return r;
        }
        r = port_point(s, &g->key, copy + 1);
        if (r < 0)
                (void) port_point(s, &g->key, 0);
        return r;
}

/* The set, numbered, into the groups map (the truth), then its fast copy. */
static int write_group(Steering *s, const struct steer_group_key *key, const struct steer_set *set) {
        _cleanup_free_ struct steer_set *numbered = NULL;
        FastGroup *g;
        int r, shared_error;

        g = fast_group(s, key, &shared_error);
        if (!g)
                return -E2BIG;
        numbered = malloc(sizeof(*numbered));
        if (!numbered)
                return -ENOMEM;
        *numbered = *set;
        numbered->group = (uint32_t) (g - s->fast);
        if (bpf_map_update_elem(s->fds[STEERING_GROUPS], key, numbered, BPF_ANY) < 0)
                return -errno;
        r = fast_write(s, g, numbered);
        return r < 0 ? r : shared_error;
}

/* After a restore: each group keeps its number (steer_set.group, in the groups map), and every fast copy is
 * written afresh from the groups map, the truth (an rpsupd that died between the two writes left a stale
 * copy named). */
static int fast_restore(Steering *s) {
        _cleanup_free_ struct steer_set *set = NULL;
        struct steer_group_key keys[STEER_GROUPS_MAX], key;
        size_t n = 0;
        int r;

        set = calloc(1, sizeof(*set));
        if (!set)
                return -ENOMEM;
        for (bool first = true; n < STEER_GROUPS_MAX &&
                                bpf_map_get_next_key(s->fds[STEERING_GROUPS], first ? NULL : &key, &key) == 0;
             first = false)
                keys[n++] = key;
        for (size_t i = 0; i < n; i++) {
                if (bpf_map_lookup_elem(s->fds[STEERING_GROUPS], &keys[i], set) < 0)
                        return -errno;
                if (set->group < STEER_GROUPS_MAX && !s->fast[set->group].used)
                        s->fast[set->group] = (FastGroup) { .used = true, .key = keys[i] };
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                        if (i != j && same_port_slot(&keys[i], &keys[j]))
                                for (size_t k = 0; k < STEER_GROUPS_MAX; k++)
                                        if (s->fast[k].used && same_key(&s->fast[k].key, &keys[i]))
                                                s->fast[k].shared = true;
        for (size_t i = 0; i < n; i++) {
                if (bpf_map_lookup_elem(s->fds[STEERING_GROUPS], &keys[i], set) < 0)
                        return -errno;
                r = write_group(s, &keys[i], set);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int state_write(Steering *s, uint32_t aims) {
        struct steer_state st = { .aims = aims };
        uint32_t zero = 0;

        if (bpf_map_update_elem(s->fds[STEERING_STATE], &zero, &st, BPF_ANY) < 0)
                return -errno;
        s->aims = aims;
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
                           sizeof(steer_probe_index), STEER_PROBES_MAX, "bpf.probes", ret_error)) < 0 ||
            /* Any size: the flow table keeps the one it was created with. */
            (r = check_map(s->fds[STEERING_FLOWS], BPF_MAP_TYPE_LRU_HASH, sizeof(struct steer_flow_key),
                           sizeof(struct steer_flow_value), 0, "bpf.flows", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_STATE], BPF_MAP_TYPE_ARRAY, sizeof(uint32_t),
                           sizeof(struct steer_state), 1, "bpf.state", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_PORTS], BPF_MAP_TYPE_ARRAY, sizeof(uint32_t),
                           sizeof(struct steer_port), STEER_PORTS, "bpf.ports", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_SETS], BPF_MAP_TYPE_ARRAY, sizeof(uint32_t),
                           sizeof(struct steer_fast_set), STEER_FAST_SETS, "bpf.sets", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_EPOCHS], BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(steer_epoch),
                           STEER_LISTENERS_MAX, "bpf.epochs", ret_error)) < 0 ||
            (r = check_map(s->fds[STEERING_TURNS], BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t),
                           sizeof(struct steer_turns), STEER_GROUPS_MAX, "bpf.turns", ret_error)) < 0)
                return r;
        r = fast_restore(s);
        if (r < 0) {
                set_error(ret_error, "cannot rebuild the groups' fast copies: %s", strerror(-r));
                return r;
        }
        /* Aims of probes that ran when the older rpsupd went away: none runs now. What cannot be deleted stays
         * counted, so that the count is the map's. */
        for (steer_probe_port port; bpf_map_get_next_key(s->fds[STEERING_PROBES], NULL, &port) == 0;)
                if (bpf_map_delete_elem(s->fds[STEERING_PROBES], &port) < 0)
                        break;
        {
                uint32_t left = 0;
                steer_probe_port port;

                for (bool first = true; left < STEER_PROBES_MAX &&
                                        bpf_map_get_next_key(s->fds[STEERING_PROBES], first ? NULL : &port, &port) == 0;
                     first = false)
                        left++;
                r = state_write(s, left);
        }
        if (r < 0) {
                set_error(ret_error, "cannot write the stored \"bpf.state\": %s", strerror(-r));
                return r;
        }
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

/* A listener takes an index: the same listener again (an rpsupd restart) keeps its epoch; an index that is
 * empty moves its epoch on (another listener may have had it), so that the flows entered with that one miss
 * (steer-shared.h); one that holds another listener is not taken (-EEXIST): that listener is live. */
static int epoch_renew(Steering *s, uint32_t index, uint64_t cookie) {
        uint64_t held;
        steer_epoch epoch = 0;

        if (bpf_map_lookup_elem(s->fds[STEERING_LISTENERS], &index, &held) == 0)
                return held == cookie ? 0 : -EEXIST;
        if (bpf_map_lookup_elem(s->fds[STEERING_EPOCHS], &index, &epoch) < 0)
                return -errno;
        epoch++;
        if (bpf_map_update_elem(s->fds[STEERING_EPOCHS], &index, &epoch, BPF_ANY) < 0)
                return -errno;
        return 0;
}

bool steering_index_vacant(Steering *s, uint32_t index) {
        uint64_t held;

        return bpf_map_lookup_elem(s->fds[STEERING_LISTENERS], &index, &held) < 0;
}

int steering_insert(Steering *s, uint32_t index, int listener_fd) {
        uint64_t value = (uint64_t) listener_fd, cookie;
        socklen_t l = sizeof(cookie);
        uint32_t old;
        int r;

        if (index >= STEER_LISTENERS_MAX)
                return -EINVAL;
        if (getsockopt(listener_fd, SOL_SOCKET, SO_COOKIE, &cookie, &l) < 0)
                return -errno;
        r = epoch_renew(s, index, cookie);
        if (r < 0)
                return r;
        if (bpf_map_update_elem(s->fds[STEERING_LISTENERS], &index, &value, BPF_ANY) == 0)
                return 0;
        /* EBUSY: in another sockarray; the older rpsupd's lets it go. */
        if (errno != EBUSY || s->old_listeners < 0)
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
        return write_group(s, key, set);
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

/* The program looks at the probe map only while the state map counts an aim: an aim is counted once it is
 * in the map, and uncounted once it is out of it. */
int steering_probe_aim(Steering *s, uint16_t port, uint32_t index) {
        steer_probe_port key = port;
        steer_probe_index value = index;
        bool new = bpf_map_lookup_elem(s->fds[STEERING_PROBES], &key, &value) < 0;
        int r;

        if (index == 0 || index >= STEER_LISTENERS_MAX)
                return -EINVAL;
        value = index;
        if (bpf_map_update_elem(s->fds[STEERING_PROBES], &key, &value, BPF_ANY) < 0)
                return -errno;
        if (!new)
                return 0;
        r = state_write(s, s->aims + 1);
        if (r < 0)
                /* Uncounted, the aim would be ignored, and a later aim of the port taken as known. */
                (void) bpf_map_delete_elem(s->fds[STEERING_PROBES], &key);
        return r;
}

int steering_probe_clear(Steering *s, uint16_t port) {
        steer_probe_port key = port;

        if (bpf_map_delete_elem(s->fds[STEERING_PROBES], &key) < 0)
                return errno == ENOENT ? 0 : -errno;
        return state_write(s, s->aims > 0 ? s->aims - 1 : 0);
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
                sum.shadow += per_cpu[i].shadow;
                sum.flow_hits += per_cpu[i].flow_hits;
                sum.flow_new += per_cpu[i].flow_new;
                sum.flow_lost += per_cpu[i].flow_lost;
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

uint32_t steering_flow_max(Steering *s) {
        struct bpf_map_info info = {};
        uint32_t len = sizeof(info);

        if (bpf_obj_get_info_by_fd(s->fds[STEERING_FLOWS], &info, &len) < 0)
                return 0;
        return info.max_entries;
}

int steering_flow_count_step(Steering *s, SteeringFlowWalk *w, uint32_t budget, uint32_t *ret_count,
                             bool *ret_done) {
        enum { BATCH = 4096 };
        _cleanup_free_ struct steer_flow_key *keys = NULL;
        _cleanup_free_ struct steer_flow_value *values = NULL;
        uint32_t max = steering_flow_max(s), walked = 0;

        *ret_done = false;
        keys = calloc(BATCH, sizeof(*keys));
        values = calloc(BATCH, sizeof(*values));
        if (!keys || !values)
                return -ENOMEM;
        while (walked < budget) {
                /* Whole batches: a batch ends at a bucket's end, and a bucket with more entries than asked for
                 * fails (ENOSPC), so never ask for fewer. A step may walk up to a batch past its budget. */
                uint32_t count = BATCH;
                int r = bpf_map_lookup_batch(s->fds[STEERING_FLOWS], w->started ? &w->token : NULL, &w->token, keys,
                                             values, &count, NULL);

                if (r < 0 && errno != ENOENT) {
                        r = -errno;
                        *w = (SteeringFlowWalk) {};
                        return r;
                }
                w->started = true;
                w->counted += count;
                walked += count;
                if (r < 0) { /* ENOENT: the end of the table */
                        *ret_count = MIN(w->counted, max);
                        *ret_done = true;
                        *w = (SteeringFlowWalk) {};
                        return 0;
                }
        }
        return 0;
}
