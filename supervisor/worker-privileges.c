/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capability-util.h"
#include "worker-privileges.h"

WorkerPrivileges worker_privileges_from_config(const Config *c) {
        return (WorkerPrivileges) {
                .set_ids = c->user || c->group,
                .uid = c->uid,
                .gid = c->gid,
                .user = c->user_name ?: c->user,
                .groups = c->groups,
                .n_groups = c->n_groups,
                .bounding_set = c->capability_bounding_set,
                .ambient_set = c->ambient_capabilities,
                .no_new_privileges = c->no_new_privileges,
        };
}

static int drop_bounding_set(uint64_t keep, bool privileged) {
        for (int cap = 0; cap < 64; cap++) {
                int r = prctl(PR_CAPBSET_READ, (unsigned long) cap, 0, 0, 0);
                if (r < 0)
                        break; /* past the running kernel's last capability */
                if (r == 0 || (keep & CAPABILITY_MASK(cap)))
                        continue;
                if (prctl(PR_CAPBSET_DROP, (unsigned long) cap, 0, 0, 0) < 0) {
                        /* Without CAP_SETPCAP. An unprivileged rpsupd has nothing to hand on: what a worker
                         * could gain through the bounding set (a set-user-ID or file-capability program)
                         * no_new_privs denies, as it would to whoever started rpsupd. */
                        if (privileged)
                                return -errno;
                        break;
                }
        }
        return 0;
}

/* Raw system calls: glibc's wrappers change the ids of every thread of the process, which in a child that
 * shares rpsupd's memory would be rpsupd's threads. */
static int set_ids(const WorkerPrivileges *p) {
        /* The user's groups were resolved with the config (none for a user the database does not know). */
        if (getuid() == 0 && syscall(SYS_setgroups, p->groups ? p->n_groups : 0, p->groups) < 0)
                return -errno;
        if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
                return -errno;
        if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
                return -errno;
        return 0;
}

int worker_privileges_apply(const WorkerPrivileges *p) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
        bool keep_caps = p->ambient_set != 0 && p->set_ids && p->uid != 0;
        int r;

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        /* The bounding set matters for a worker that runs as root, or one that may gain privileges through
         * a set-user-ID or file-capability program (NoNewPrivileges=no) from an rpsupd that has any. */
        r = drop_bounding_set(p->bounding_set,
                              geteuid() == 0 || (!p->no_new_privileges && (d[0].permitted != 0 || d[1].permitted != 0)));
        if (r < 0)
                return r;

        /* A change from root to another user clears the permitted set, unless keep-caps is set (execve()
         * clears the flag again), and always the ambient set: ambient capabilities are raised after it. */
        if (keep_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return -errno;
        if (p->set_ids) {
                r = set_ids(p);
                if (r < 0)
                        return r;
        }

        /* Inheritable: the ambient set (a capability is raised in the ambient set only if it is permitted
         * and inheritable), else nothing. A worker of another user keeps no other permitted capability. */
        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(d); i++) {
                uint32_t ambient = (uint32_t) (p->ambient_set >> (32 * i));
                d[i].inheritable = ambient;
                if (keep_caps) {
                        d[i].permitted &= ambient;
                        d[i].effective &= ambient;
                }
        }
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && (errno != EINVAL || p->ambient_set))
                return -errno;
        for (int cap = 0; cap < 64; cap++)
                if ((p->ambient_set & CAPABILITY_MASK(cap)) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long) cap, 0, 0) < 0)
                        return -errno;

        if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}
