/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clone3.h"
#include "macro.h"

pid_t clone3_fork(int cgroup_fd, int *ret_pidfd) {
        int pidfd = -1;
        struct clone_args args = {
                .flags = CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };
        long pid;

        /* Without CLONE_VM and without a stack: the child returns from the system call on its copy of
         * rpsupd's stack, as from fork(). */
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return errno == ENOSYS || errno == E2BIG ? -ENOSYS : -errno;
        if (pid > 0)
                *ret_pidfd = pidfd;
        return (pid_t) pid;
}

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define ADDRESS_SANITIZER 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define ADDRESS_SANITIZER 1
#endif

/* Not under AddressSanitizer: its bookkeeping of the stack (shared with the child here) cannot follow a
 * child that runs on another stack and never returns; such builds start workers with fork(). */
#if defined(__x86_64__) && defined(SYS_clone3) && !defined(ADDRESS_SANITIZER)

/* The child's stack: one child at a time runs on it (rpsupd is suspended until it execs or exits). Static,
 * so that nothing maps and unmaps it per worker. */
#define CHILD_STACK_SIZE (256u * 1024u)
static uint8_t child_stack[CHILD_STACK_SIZE] __attribute__((aligned(64)));

/* long raw_clone3(struct clone_args *args, size_t size, int (*fn)(void *), void *arg)
 * The system call returns twice: in rpsupd with the child's pid (or -errno), in the child with 0 on the
 * new stack, where no frame of rpsupd's exists: it calls fn(arg) and exits with its value. rdx and r8 keep
 * fn and arg across the system call (it clobbers only rax, rcx and r11). */
__asm__(".text\n"
        ".p2align 4\n"
        ".type raw_clone3, @function\n"
        "raw_clone3:\n"
        "        mov %rcx, %r8\n"
        "        mov $" STRINGIFY(SYS_clone3) ", %eax\n"
        "        syscall\n"
        "        test %rax, %rax\n"
        "        jz 1f\n"
        "        ret\n"
        "1:      xor %ebp, %ebp\n"
        "        mov %r8, %rdi\n"
        "        call *%rdx\n"
        "        mov %eax, %edi\n"
        "        mov $" STRINGIFY(SYS_exit) ", %eax\n"
        "        syscall\n"
        "        hlt\n"
        ".size raw_clone3, .-raw_clone3\n");

long raw_clone3(struct clone_args *args, size_t size, int (*fn)(void *), void *arg);

pid_t clone3_vfork(int cgroup_fd, int *ret_pidfd, int (*fn)(void *arg), void *arg) {
        sigset_t all, saved;
        int pidfd = -1;
        long pid;

        struct clone_args args = {
                .flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .stack = (uintptr_t) child_stack,
                .stack_size = sizeof(child_stack),
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };

        /* No handler of rpsupd's may run in the child, on rpsupd's memory: the child unblocks signals once
         * it has reset every handler. */
        sigfillset(&all);
        if (sigprocmask(SIG_SETMASK, &all, &saved) < 0)
                return -errno;
        pid = raw_clone3(&args, sizeof(args), fn, arg);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0)
                return pid == -E2BIG ? -ENOSYS : (pid_t) pid; /* E2BIG: a kernel older than these arguments */
        *ret_pidfd = pidfd;
        return (pid_t) pid;
}

#else

pid_t clone3_vfork(int cgroup_fd, int *ret_pidfd, int (*fn)(void *arg), void *arg) {
        return -ENOSYS;
}

#endif
