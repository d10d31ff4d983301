/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config-exec.h"
#include "fd-util.h"
#include "readiness-probe-exec.h"
#include "worker-environment.h"
#include "worker-privileges.h"
#include "string-util.h"
#include "strv.h"

int probe_exec_environment(Worker *w, const char *service_name, const char *address, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        int r;

        r = worker_environment(w, service_name, &env);
        if (r < 0)
                return r;
        if ((r = env_set_consume(&env, strdup_printf("MAINPID=%d", (int) w->pid))) < 0)
                return r;
        if (address && (r = env_set_consume(&env, strdup_printf("RPSUP_PROBE_ADDRESS=%s", address))) < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

_noreturn_ static void child_fail(int error_fd, int error) {
        (void) !write(error_fd, &error, sizeof(error));
        _exit(127);
}

/* After fork(): only async-signal-safe calls (and initgroups(), as for workers). It runs as the worker does. */
_noreturn_ static void child(const Config *c, char **argv, char **env, int null_fd, int error_fd, pid_t parent) {
        WorkerPrivileges privileges = worker_privileges_from_config(c);
        sigset_t all;
        int r;

        /* Undo what rpsupd set up for itself: blocked signals, handlers. A process group of its own (the
         * parent sets it too, so that it is there before either goes on): a timeout kills all of it. */
        if (setpgid(0, 0) < 0)
                child_fail(error_fd, errno);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);

        if (dup2(null_fd, STDIN_FILENO) < 0)
                child_fail(error_fd, errno);
        /* Nothing else crosses exec: not even fds rpsupd inherited without O_CLOEXEC. */
        (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

        /* The worker's user and privileges (worker-privileges.h). */
        r = worker_privileges_apply(&privileges);
        if (r < 0)
                child_fail(error_fd, -r);
        /* A probe does not outlive rpsupd, which bounds its time (set after the ids change, which clear it). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(error_fd, errno);
        if (getppid() != parent)
                child_fail(error_fd, ESRCH);
        if (c->working_directory && chdir(c->working_directory) < 0 &&
            (!c->working_directory_missing_ok || errno != ENOENT))
                child_fail(error_fd, errno);

        execve(c->probe_exec_path, argv, env);
        child_fail(error_fd, errno);
}

int probe_exec_spawn(const Config *c, char **env, pid_t *ret_pid, int *ret_pidfd, int *ret_error_fd) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int null_fd = -EBADF, error_read = -EBADF, error_write = -EBADF, pidfd = -EBADF;
        int pipefd[2];
        pid_t pid, parent = getpid();
        int r;

        /* Everything the child needs, before fork(). */
        r = exec_argv_expand(c->probe_argv, env, &argv);
        if (r < 0)
                return r;
        if (strv_length(argv) == 0)
                return -EINVAL; /* validated: the first word is the executable, never a $VAR */
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (null_fd < 0)
                return -errno;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        error_read = pipefd[0];
        error_write = pipefd[1];

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                error_read = safe_close(error_read);
                child(c, argv, env, null_fd, error_write, parent);
        }
        /* Fails only if the child did it and exec'd already (EACCES). */
        (void) setpgid(pid, pid);
        /* Our child: its pid is not reused before we reap it, so the pidfd names it. */
        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                r = -errno;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        (void) fd_set_nonblock(error_read, true);
        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_error_fd = TAKE_FD(error_read);
        return 0;
}
