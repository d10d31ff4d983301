/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a worker (and a command run as it, an exec probe) keeps of rpsupd's privileges: its user and groups,
 * the capabilities its config grants (none by default) and no_new_privs. */

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "macro.h"

typedef struct WorkerPrivileges {
        bool set_ids;
        uid_t uid;
        gid_t gid;
        const char *user;            /* for supplementary groups; NULL: none */
        const gid_t *groups;         /* the user's supplementary groups, resolved with the config; NULL: none */
        size_t n_groups;
        uint64_t bounding_set;       /* CapabilityBoundingSet=, with AmbientCapabilities= */
        uint64_t ambient_set;        /* AmbientCapabilities= */
        bool no_new_privileges;      /* NoNewPrivileges= */
} WorkerPrivileges;

/* What c asks for. Points into c, which must outlive the result. */
WorkerPrivileges worker_privileges_from_config(const Config *c);

/* In the child, after fork() and before execve(): drops the bounding set while rpsupd's capabilities are
 * still effective, changes the ids (keeping the ambient capabilities' permitted bits across a change from
 * root, as systemd does), sets the inheritable and ambient sets and no_new_privs. Async-signal-safe, and
 * changes the ids of the calling process alone (raw system calls), so that it also runs in a child sharing
 * rpsupd's memory. Returns 0 or a negative errno. */
int worker_privileges_apply(const WorkerPrivileges *p);
