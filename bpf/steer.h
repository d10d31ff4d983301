/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The steering API rpsupd uses: it hides the BPF skeleton. A Steering is the program and its maps, loaded
 * fresh, or taken back from the fd store after an rpsupd restart (nothing is re-created then: the groups
 * keep their program, and the maps keep every listener and set). Failures are returned (negative errno, and
 * where a reason helps, *ret_error, which may be NULL), not logged; what libbpf itself says (a verifier
 * rejection, with the verifier's log) goes to the log, as libbpf only tells it to a print callback. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "steer-shared.h"

typedef struct Steering Steering;

/* The fds a Steering consists of, and their names in the fd store. */
enum {
        STEERING_PROG,
        STEERING_LISTENERS,
        STEERING_GROUPS,
        STEERING_COUNTERS,
        STEERING_PROBES,
        STEERING_FLOWS,
        STEERING_STATE,
        STEERING_PORTS,
        STEERING_SETS,
        STEERING_EPOCHS,
        STEERING_TURNS,
        _STEERING_FD_MAX,
};
extern const char *const steering_fd_names[_STEERING_FD_MAX];

/* flow_max: the flow table's size (1..STEER_FLOWS_MAX; fixed for the life of the maps: a restored Steering
 * keeps the size it was created with, see steering_flow_max()). */
int steering_load(Steering **ret, uint32_t flow_max, char **ret_error);
/* While a probe tries what the kernel allows, libbpf's warnings (a verifier log on an old kernel) are
 * expected: they go to the debug log, and the probe's answer says why. */
void steering_log_quietly(bool quiet);
/* Takes ownership of the fds (on success and failure); checks that they are what this rpsupd expects: a
 * reuseport program, and maps of the types, key and value sizes and sizes of steer-shared.h. */
int steering_restore(int fds[_STEERING_FD_MAX], Steering **ret, char **ret_error);
/* When a restore was refused (an older rpsupd's layout), its sockarray still holds the listeners, and a
 * socket can be in one sockarray only: with the older sockarray given here (taken over), steering_insert()
 * takes a listener out of it first, one at a time, while the older program keeps steering the others. */
int steering_take_over_from(Steering *s, int old_listeners_fd);
Steering *steering_free(Steering *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Steering *, steering_free);
int steering_fd(Steering *s, int which);

/* Attaches the program to the reuseport group of a listening socket (it then steers the whole group). */
int steering_attach(Steering *s, int listener_fd);
/* -EEXIST when another listener has the index (a restored sockarray keeps the previous rpsupd's). */
int steering_insert(Steering *s, uint32_t index, int listener_fd);
/* No listener has the index in the sockarray. */
bool steering_index_vacant(Steering *s, uint32_t index);
int steering_remove(Steering *s, uint32_t index);
/* The sockarray index of a listener (by its socket cookie), or -ENOENT. */
int steering_find(Steering *s, int listener_fd, uint32_t *ret_index);
/* Replaces a group's set in one map update, with the round-robin policy. previous_percent (0..100) of the
 * new connections go to the previous set when it is not empty. */
int steering_set_group(Steering *s, const struct steer_group_key *key, const uint32_t *active, size_t n_active,
                       const uint32_t *standby, size_t n_standby, const uint32_t *previous, size_t n_previous,
                       unsigned previous_percent);
/* Writes a whole set (its policy too) in one map update: what rpsupd does; -EINVAL for a policy or share out
 * of range. */
int steering_write_group(Steering *s, const struct steer_group_key *key, const struct steer_set *set);
int steering_get_group(Steering *s, const struct steer_group_key *key, struct steer_set *ret);
/* The group of a listening socket (from what it is bound to). */
int steering_group_key(int listener_fd, struct steer_group_key *ret);
/* A SYN from a loopback address (127.0.0.0/8, ::1) and local port `port` (host byte order) goes to the
 * listener at `index` (if it is in the SYN's group; else it is steered as usual), counted as a probe, until
 * cleared. -E2BIG: STEER_PROBES_MAX aims are set already. */
int steering_probe_aim(Steering *s, uint16_t port, uint32_t index);
int steering_probe_clear(Steering *s, uint16_t port);
/* The flow table: its size (the LRU map's max_entries), and how many flows it holds, counted by a walk of
 * the table a step at a time (the kernel's batch lookup: about 300 ns per entry here, so a million take
 * 0.3 s: never in one go on rpsupd's event loop). A step walks `budget` entries (rounded up to whole batches of
 * 4096) from where the last one stopped; when the walk reaches the end, *ret_done is true and *ret_count is the count of that walk
 * (capped at the table's size; the table changes meanwhile, so it is approximate), and the next step starts
 * a new walk. */
typedef struct SteeringFlowWalk {
        uint64_t token;   /* the kernel's batch position */
        uint32_t counted; /* so far in this walk */
        bool started;
} SteeringFlowWalk;
uint32_t steering_flow_max(Steering *s);
int steering_flow_count_step(Steering *s, SteeringFlowWalk *w, uint32_t budget, uint32_t *ret_count,
                             bool *ret_done);
/* Counters of one listener, summed over CPUs; reset when the index is reused. */
int steering_counters(Steering *s, uint32_t index, struct steer_counters *ret);
int steering_counters_reset(Steering *s, uint32_t index);
