/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starting a worker process: clone3 into its cgroup sharing rpsupd's memory (or fork where there is no
 * cgroup), move the listeners to fds 3.., drop privileges, exec. */

#include <sys/types.h>

#include "macro.h"
#include "worker-privileges.h"

typedef struct SpawnParams {
        char **argv;
        char **env;             /* complete; LISTEN_PID is added in the child */
        const char *path;       /* the executable */
        const int *fds;         /* become fds 3, 4, ... in the child */
        size_t n_fds;
        WorkerPrivileges privileges;
        const char *working_directory;
        bool working_directory_missing_ok;
        int cgroup_fd;          /* the worker's cgroup (cgroup2, O_PATH), or -EBADF: see below */
        int cgroup_v1_procs_fd; /* its name=systemd mirror's cgroup.procs (hybrid mode), or -EBADF */
} SpawnParams;

/* On success returns the child's pid, a pidfd for it, the read end of a pipe that reaches EOF once
 * execve() succeeded, or carries the errno (int) of the step that failed, and the go-ahead fd.
 *
 * With a cgroup, the child is started by clone3() with CLONE_PIDFD|CLONE_INTO_CGROUP, and the go-ahead fd
 * is -EBADF: the worker's cgroup is its record until the state file names it. A worker that keeps rpsupd's
 * user shares rpsupd's memory (CLONE_VM|CLONE_VFORK: nothing is copied, rpsupd waits until it exec'd); one
 * that changes its user gets a copy, as from fork(), so that no process of that user can hold rpsupd up by
 * stopping it before it exec'd.
 * Without one (or where clone3 cannot), fork(): the go-ahead fd is the write end of a pipe the child waits
 * on before execve() until one byte is written to it. Closing it without writing (or rpsupd's death) makes
 * the child exit instead (ECANCELED), so that no worker runs that rpsupd has not recorded. */
int spawn_worker(const SpawnParams *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd, int *ret_go_fd);
/* Lets a child started by spawn_worker() go on to execve(); closes go_fd. */
int spawn_release(int go_fd);

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat): with the pid, a
 * process's identity. */
int process_start_time(pid_t pid, uint64_t *ret);
