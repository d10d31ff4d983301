/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "clone3.h"
#include "fd-util.h"
#include "proc-parse.h"
#include "worker-spawn.h"
#include "strv.h"
#include "worker-privileges.h"

_noreturn_ static void child_fail(int exec_fd, int error) {
        (void) !write(exec_fd, &error, sizeof(error));
        _exit(127);
}

/* Waits for rpsupd's go-ahead: one byte once rpsupd recorded this process. End of file means rpsupd gave
 * it up or is gone (then nobody knows of this process): it does not become a worker. */
static void child_wait_go(int go_fd, int exec_fd) {
        char c;

        for (;;) {
                ssize_t n = read(go_fd, &c, 1);
                if (n == 1)
                        return;
                if (n < 0 && errno == EINTR)
                        continue;
                child_fail(exec_fd, n < 0 ? errno : ECANCELED);
        }
}

/* What the child needs; in the clone3 child it lives in rpsupd's memory, which the child only reads (and
 * writes listen_pid, rpsupd's own buffer for it). */
typedef struct ChildArgs {
        const SpawnParams *p;
        char **env;
        char *listen_pid;       /* the environment's "LISTEN_PID=" entry, room for any pid */
        int exec_fd;
        int go_fd;              /* -EBADF: nothing to wait for (the cgroup records the worker) */
        bool join_cgroup;       /* after fork(): the child moves itself into p->cgroup_fd */
} ChildArgs;

#define LISTEN_PID_SIZE 32

/* Only system calls from here to execve(): this runs after fork() or in a clone3 child that shares
 * rpsupd's memory. */
_noreturn_ static void child(const ChildArgs *a) {
        const SpawnParams *p = a->p;
        int exec_fd = a->exec_fd, go_fd = a->go_fd;
        sigset_t none;
        int base, r;

        /* Undo what rpsupd set up for itself: handlers, blocked signals (all of them, around a clone3), a
         * session shared with it. Handlers first: then no handler of rpsupd's runs here. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) setsid();

        /* Its cgroup: cgroup2's is set already after clone3(), not after fork(). And the name=systemd
         * cgroup (hybrid mode), where "systemctl status" looks. */
        if (a->join_cgroup && p->cgroup_fd >= 0) {
                int procs = openat(p->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (procs < 0 || write(procs, "0", 1) != 1)
                        child_fail(exec_fd, errno);
                (void) close(procs);
        }
        if (p->cgroup_v1_procs_fd >= 0 && write(p->cgroup_v1_procs_fd, "0", 1) != 1)
                child_fail(exec_fd, errno);

        /* Move the listeners to 3..3+n-1. First out of the way (above every target), then into place. */
        base = 3 + (int) p->n_fds;
        int moved[p->n_fds ?: 1];
        for (size_t i = 0; i < p->n_fds; i++) {
                moved[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, base);
                if (moved[i] < 0)
                        child_fail(exec_fd, errno);
        }
        if (exec_fd < base) {
                int e = fcntl(exec_fd, F_DUPFD_CLOEXEC, base);
                if (e < 0)
                        child_fail(exec_fd, errno);
                exec_fd = e;
        }
        if (go_fd >= 0 && go_fd < base) {
                int g = fcntl(go_fd, F_DUPFD_CLOEXEC, base);
                if (g < 0)
                        child_fail(exec_fd, errno);
                go_fd = g;
        }
        for (size_t i = 0; i < p->n_fds; i++)
                if (dup2(moved[i], 3 + (int) i) < 0) /* dup2() clears O_CLOEXEC: inherited across exec */
                        child_fail(exec_fd, errno);
        /* Nothing else crosses exec: not even fds rpsupd inherited without O_CLOEXEC from whoever started it. */
        (void) close_range(3 + (unsigned) p->n_fds, ~0U, CLOSE_RANGE_CLOEXEC);

        /* Its user, and none of rpsupd's capabilities but those its config grants. */
        r = worker_privileges_apply(&p->privileges);
        if (r < 0)
                child_fail(exec_fd, -r);
        if (p->working_directory && chdir(p->working_directory) < 0) {
                if (!p->working_directory_missing_ok || errno != ENOENT)
                        child_fail(exec_fd, errno);
        }

        if (go_fd >= 0)
                child_wait_go(go_fd, exec_fd);

        /* LISTEN_PID is the pid of this process; only known here. */
        snprintf(a->listen_pid, LISTEN_PID_SIZE, "LISTEN_PID=%d", (int) getpid());

        execve(p->path, p->argv, a->env);
        child_fail(exec_fd, errno);
}

static int child_clone3(void *arg) {
        child(arg);
}

int spawn_worker(const SpawnParams *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd, int *ret_go_fd) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_close_ int pidfd = -EBADF, go_read = -EBADF, go_write = -EBADF, exec_read = -EBADF,
                exec_write = -EBADF;
        SpawnParams params = *p;
        char *listen_pid;
        int pipefd[2], gofd[2];
        pid_t pid = -ENOSYS;
        int r;

        /* Everything the child needs is built before it exists: after, only system calls. */
        env = strv_copy(p->env);
        if (!env)
                return -ENOMEM;
        listen_pid = calloc(1, LISTEN_PID_SIZE);
        if (!listen_pid)
                return -ENOMEM;
        strcpy(listen_pid, "LISTEN_PID=0");
        r = strv_consume(&env, listen_pid);
        if (r < 0)
                return r;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        exec_read = pipefd[0];
        exec_write = pipefd[1];

        ChildArgs a = { .p = &params, .env = env, .listen_pid = listen_pid, .exec_fd = exec_write, .go_fd = -EBADF };

        /* In its cgroup, a new worker needs no go-ahead: a worker the state file does not name yet is found
         * there by the next rpsupd. A worker that keeps rpsupd's user shares rpsupd's memory until it
         * exec'd (rpsupd waits meanwhile: only that user, rpsupd's own, could stop it on the way). One that
         * changes its user gets a copy: once it has, any process of that user could stop it, and rpsupd
         * with it. */
        if (p->cgroup_fd >= 0) {
                int fd = -EBADF;

                if (!params.privileges.set_ids ||
                    (params.privileges.uid == geteuid() && params.privileges.gid == getegid()))
                        pid = clone3_vfork(p->cgroup_fd, &fd, child_clone3, &a);
                if (pid == -ENOSYS) {
                        pid = clone3_fork(p->cgroup_fd, &fd);
                        if (pid == 0) {
                                safe_close(exec_read);
                                child(&a);
                        }
                }
                if (pid > 0)
                        pidfd = fd;
                else if (pid != -ENOSYS)
                        return pid;
        }
        if (pid == -ENOSYS) {
                /* fork(), and the child waits before execve() until the state file names it. */
                if (pipe2(gofd, O_CLOEXEC) < 0)
                        return -errno;
                go_read = gofd[0];
                go_write = gofd[1];
                a.go_fd = go_read;
                a.join_cgroup = true;
                pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        safe_close(exec_read);
                        safe_close(go_write);
                        child(&a);
                }
                go_read = safe_close(go_read);
                pidfd = pidfd_open(pid, 0);
                if (pidfd < 0) {
                        r = -errno;
                        (void) kill(pid, SIGKILL);
                        return r;
                }
        }

        exec_write = safe_close(exec_write);
        (void) fd_set_nonblock(exec_read, true);
        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_exec_fd = TAKE_FD(exec_read);
        *ret_go_fd = TAKE_FD(go_write);
        return 0;
}

int spawn_release(int go_fd) {
        int r = 0;

        /* Fails (EPIPE) only if the child is gone already; its exit is reported as usual. */
        if (write(go_fd, "", 1) != 1)
                r = -errno;
        safe_close(go_fd);
        return r;
}

int process_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return parse_proc_stat_start_time(buf, ret) < 0 ? -EIO : 0;
}
