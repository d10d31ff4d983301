/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "fd-util.h"
#include "proc-parse.h"
#include "worker-spawn.h"
#include "strv.h"

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

_noreturn_ static void child(const SpawnParams *p, char **env, size_t listen_pid_index, int exec_fd, int go_fd) {
        sigset_t all;
        int base, r;

        /* Undo what rpsupd set up for itself: blocked signals, handlers, a session shared with it. */
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        (void) setsid();

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
        if (go_fd < base) {
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

        child_wait_go(go_fd, exec_fd);

        /* LISTEN_PID is the pid of this process; only known here. */
        char listen_pid[32];
        snprintf(listen_pid, sizeof(listen_pid), "LISTEN_PID=%d", (int) getpid());
        env[listen_pid_index] = listen_pid;

        execve(p->path, p->argv, env);
        child_fail(exec_fd, errno);
}

int spawn_worker(const SpawnParams *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd, int *ret_go_fd) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_close_ int pidfd = -EBADF, go_read = -EBADF, go_write = -EBADF;
        int pipefd[2], gofd[2];
        size_t listen_pid_index;
        pid_t pid;
        int r;

        /* Build everything the child needs before fork(): after it, only async-signal-safe calls. */
        env = strv_copy(p->env);
        if (!env)
                return -ENOMEM;
        r = strv_extend(&env, "LISTEN_PID=0");
        if (r < 0)
                return r;
        listen_pid_index = strv_length(env) - 1;

        if (pipe2(gofd, O_CLOEXEC) < 0)
                return -errno;
        go_read = gofd[0];
        go_write = gofd[1];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                safe_close(pipefd[0]);
                safe_close(go_write);
                child(p, env, listen_pid_index, pipefd[1], go_read);
        }

        safe_close(pipefd[1]);
        go_read = safe_close(go_read);
        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                r = -errno;
                (void) kill(pid, SIGKILL);
                safe_close(pipefd[0]);
                return r;
        }
        (void) fd_set_nonblock(pipefd[0], true);
        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_exec_fd = pipefd[0];
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
