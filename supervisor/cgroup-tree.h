/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The service's control-group subtree: rpsupd in a "supervisor" leaf, each generation in "gen-G", each
 * worker process in "gen-G/worker-I.N" (slot index I; N counts the worker processes the subtree has seen,
 * so that a restarted worker never reuses the cgroup of the one before: a cgroup that was killed keeps
 * killing what is cloned into it on some kernels). What a worker leaves behind ends with it, what a
 * generation leaves ends with the generation, and nothing of the service outlives its stop.
 *
 * Where: under systemd, the service's own cgroup (Delegate=yes); outside systemd, a subtree created in
 * rpsupd's cgroup when it may (root, a writable cgroup2 hierarchy), named in the runtime directory so that
 * a restarted rpsupd finds it. With cgroup v1's name=systemd hierarchy beside cgroup2 (hybrid mode), the
 * tree is mirrored there under systemd, which shows that hierarchy in "systemctl status". */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef struct CgroupTree CgroupTree;

/* Where a new worker goes: the cgroup2 directory (for clone3's CLONE_INTO_CGROUP) and, in hybrid mode,
 * the name=systemd cgroup.procs file the child writes itself into before execve(). */
typedef struct CgroupPlace {
        int dir_fd;       /* O_PATH|O_DIRECTORY */
        int v1_procs_fd;  /* -EBADF if there is no mirror */
        char name[64];    /* relative to the subtree: "gen-3/worker-0.12" */
} CgroupPlace;

#define CGROUP_PLACE_NULL ((CgroupPlace) { .dir_fd = -EBADF, .v1_procs_fd = -EBADF })

void cgroup_place_done(CgroupPlace *p);

/* Sets the subtree up and moves rpsupd into its "supervisor" leaf. *ret is NULL (and 0 returned) where
 * control groups cannot be used (no cgroup2, not delegated, not root, RPSUP_CGROUP=no): the reason is
 * logged once, and workers are then ended by process group. */
int cgroup_tree_open(sd_event *e, const char *service_name, const char *runtime_dir, CgroupTree **ret);
CgroupTree *cgroup_tree_free(CgroupTree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(CgroupTree *, cgroup_tree_free);

/* The subtree's path in the cgroup2 hierarchy (as in /proc/PID/cgroup). */
const char *cgroup_tree_path(const CgroupTree *t);

/* Whether systemd delegated rpsupd's own cgroup to it (Delegate=yes): only then is what else runs there the
 * service's, to end. */
bool cgroup_own_is_delegated(void);

/* Creates and opens a new cgroup for a worker process of slot `index` in the generation. */
int cgroup_tree_place_worker(CgroupTree *t, uint64_t generation, unsigned index, CgroupPlace *ret);
/* The worker cgroup that pid runs in (a worker taken over), as a name relative to the subtree. */
int cgroup_tree_find(CgroupTree *t, pid_t pid, char *buf, size_t size);
/* The worker's process is gone: whatever it left in its cgroup is killed, and the cgroup removed once
 * empty. */
void cgroup_tree_worker_gone(CgroupTree *t, const char *name);
/* The generation is gone: whatever is left in its cgroup is killed, and the cgroup removed once empty. */
void cgroup_tree_generation_gone(CgroupTree *t, uint64_t generation);

/* After a take-over: what runs in the subtree and was not taken over is ended. Every generation cgroup of a
 * generation `known` does not name and every worker cgroup no adopted worker runs in get kill_signal, and
 * SIGKILL if they are not empty after stop_timeout (rpsupd waits: this runs before its loop does). Every
 * process in the subtree's root but rpsupd, adopted workers and their sessions (workers of an rpsupd without
 * cgroups run there) is killed. Returns how many cgroups and processes were ended. */
typedef bool (*CgroupKnownGeneration)(void *userdata, uint64_t generation);
unsigned cgroup_tree_end_unknown(CgroupTree *t, CgroupKnownGeneration known, void *userdata, const pid_t *adopted,
                                 size_t n_adopted, int kill_signal, usec_t stop_timeout);
/* The service stopped: everything left in the subtree but rpsupd is killed, and (waiting at most a
 * second) the cgroups removed. */
void cgroup_tree_end_all(CgroupTree *t);

/* A generation's resource use: CPU time of all its processes, gone ones included (cpu.stat), and its
 * memory (memory.current, UINT64_MAX where the memory controller is not enabled for it). */
int cgroup_tree_usage(CgroupTree *t, uint64_t generation, uint64_t *ret_cpu_usec, uint64_t *ret_memory);
