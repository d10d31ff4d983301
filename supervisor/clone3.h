/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starting a worker with clone3(), in two forms.
 *
 * clone3_vfork(): CLONE_VM|CLONE_VFORK: a child that shares rpsupd's memory (nothing is copied: no page
 * tables, no copy-on-write faults) and runs fn on a stack of its own while rpsupd waits, until it calls
 * execve() or exits. With CLONE_PIDFD (the pidfd exists as the child does: no pid reuse race) and, if
 * cgroup_fd >= 0, CLONE_INTO_CGROUP (the child starts in that cgroup).
 *
 * fn runs in rpsupd's memory: it may not allocate, change anything rpsupd keeps, or return into
 * rpsupd's stack; it ends with execve() or _exit(). rpsupd's signals are blocked around the call, so no
 * handler of rpsupd's runs in the child.
 *
 * Returns the child's pid, or -ENOSYS where this architecture, this kernel or this build (x86-64 only;
 * not under AddressSanitizer) cannot (the caller falls back to fork()), or another negative errno. */

#include <sys/types.h>

pid_t clone3_vfork(int cgroup_fd, int *ret_pidfd, int (*fn)(void *arg), void *arg);

/* clone3_fork(): like fork() (the child gets a copy of rpsupd's memory, and returns 0 here), with CLONE_PIDFD
 * and CLONE_INTO_CGROUP. For a child that changes its user: once it has, any process of that user may stop
 * it (SIGSTOP), and rpsupd must not then wait on it as clone3_vfork() does. Returns the child's pid (and
 * *ret_pidfd) in rpsupd, 0 in the child, -ENOSYS where the kernel has no clone3 (or no CLONE_INTO_CGROUP),
 * or another negative errno. */
pid_t clone3_fork(int cgroup_fd, int *ret_pidfd);
