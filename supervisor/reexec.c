/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "parse-util.h"
#include "reexec.h"
#include "string-util.h"
#include "strv.h"
#include "systemd-fdstore.h"

extern char **environ;

#define ENV_FDS "RPSUP_REEXEC_FDS"
#define ENV_NAMES "RPSUP_REEXEC_NAMES"
#define ENV_FALLBACK "RPSUP_REEXEC_FALLBACK"
#define ENV_BINARY "RPSUP_REEXEC_BINARY"
#define ENV_STEER_ABI "RPSUP_REEXEC_STEER_ABI"
#define ENV_SEQ "RPSUP_REEXEC_SEQ"
#define ENV_REFUSED "RPSUP_REEXEC_REFUSED"

static struct {
        char **argv;              /* main()'s, for the next image */
        char *binary;             /* the path rpsupd was started from */
        int exe_fd;               /* the running image's binary (O_RDONLY, O_CLOEXEC) */
        const char *unavailable;  /* why a reexec cannot be attempted */
        /* Set when this image was exec'd by a reexec: */
        bool received;
        size_t n_fds;             /* passed: now at 3, 4, ... */
        char *names;              /* their names, ':'-separated */
        int fallback_fd;          /* the sending image's binary: -EBADF when executed back into */
        int sender_abi;
        char *refused;            /* back in the old image: why the new one refused */
        usec_t since;             /* CLOCK_MONOTONIC: when the attempt began */
        ReexecRecord record;
} rx = { .exe_fd = -EBADF, .fallback_fd = -EBADF, .sender_abi = -1 };

static const char *const passed_env[] = {
        ENV_FDS, ENV_NAMES, ENV_FALLBACK, ENV_BINARY, ENV_STEER_ABI, ENV_SEQ, ENV_REFUSED,
};

static char *take_env(const char *name) {
        const char *e = getenv(name);
        char *v = e ? strdup(e) : NULL;

        unsetenv(name);
        return v;
}

/* Moves fds[i] to 3 + i (not O_CLOEXEC, as LISTEN_FDS wants them), and `*fallback` above them: first all
 * above the target range, then down, so that no fd is overwritten before it was moved. */
static int place_fds(int *fds, size_t n, int *fallback) {
        int above = 3 + (int) n;

        for (size_t i = 0; i < n; i++) {
                int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, above);
                if (fd < 0)
                        return -errno;
                (void) close(fds[i]);
                fds[i] = fd;
        }
        if (*fallback >= 0 && *fallback < above) {
                int fd = fcntl(*fallback, F_DUPFD_CLOEXEC, above);
                if (fd < 0)
                        return -errno;
                (void) close(*fallback);
                *fallback = fd;
        } else if (*fallback >= 0)
                (void) fd_set_cloexec(*fallback, true);
        for (size_t i = 0; i < n; i++) {
                if (dup2(fds[i], 3 + (int) i) < 0)
                        return -errno;
                (void) close(fds[i]);
                fds[i] = 3 + (int) i;
        }
        return 0;
}

int reexec_receive(int argc, char *argv[]) {
        _cleanup_free_ char *fds_s = NULL, *fallback_s = NULL, *abi_s = NULL, *seq_s = NULL;
        _cleanup_free_ int *fds = NULL;
        char buf[32], *p, *save = NULL;
        size_t n = 0;
        int r;

        rx.argv = argv;
        fds_s = take_env(ENV_FDS);
        rx.names = take_env(ENV_NAMES);
        fallback_s = take_env(ENV_FALLBACK);
        rx.binary = take_env(ENV_BINARY);
        abi_s = take_env(ENV_STEER_ABI);
        seq_s = take_env(ENV_SEQ);
        rx.refused = take_env(ENV_REFUSED);
        if (!fds_s)
                return 0;

        fds = calloc(strlen(fds_s) / 2 + 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (p = strtok_r(fds_s, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
                unsigned u;
                if (parse_uint(p, &u) < 0 || u < 3 || u > INT_MAX)
                        return -EBADMSG;
                fds[n++] = (int) u;
        }
        if (fallback_s) {
                unsigned u;
                if (parse_uint(fallback_s, &u) < 0 || u < 3 || u > INT_MAX)
                        return -EBADMSG;
                rx.fallback_fd = (int) u;
        }
        if (abi_s && parse_int(abi_s, &rx.sender_abi) < 0)
                rx.sender_abi = -1;
        if (seq_s && sscanf(seq_s, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &rx.record.seq, &rx.record.done,
                            &rx.record.failed, &rx.since) != 4)
                rx.record = (ReexecRecord) {};

        r = place_fds(fds, n, &rx.fallback_fd);
        if (r < 0)
                return r;
        rx.n_fds = n;
        rx.received = true;
        snprintf(buf, sizeof(buf), "%zu", n);
        if (setenv("LISTEN_FDS", buf, 1) < 0 || setenv("LISTEN_FDNAMES", rx.names ?: "", 1) < 0)
                return -errno;
        snprintf(buf, sizeof(buf), "%d", (int) getpid());
        if (setenv("LISTEN_PID", buf, 1) < 0)
                return -errno;
        return 1;
}

int reexec_setup(void) {
        char path[PATH_MAX];
        ssize_t k;

        rx.exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (rx.exe_fd < 0) {
                rx.unavailable = "rpsupd could not open its own binary (/proc/self/exe) at start-up";
                return log_warning_errno(-errno, "Cannot open /proc/self/exe: %m. rpsupctl reexec will be refused.");
        }
        if (rx.binary)
                return 0; /* the path the first image was started from */
        k = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (k < 0) {
                rx.unavailable = "rpsupd could not resolve the path of its binary at start-up";
                return log_warning_errno(-errno, "Cannot resolve /proc/self/exe: %m. rpsupctl reexec will be "
                                         "refused.");
        }
        path[k] = 0;
        rx.binary = strdup(path);
        if (!rx.binary) {
                rx.unavailable = "out of memory";
                return log_oom();
        }
        return 0;
}

bool reexec_taking_over(void) {
        return rx.received;
}

bool reexec_may_refuse(void) {
        return rx.received && !rx.refused && rx.fallback_fd >= 0;
}

int reexec_sender_abi(void) {
        return rx.received ? rx.sender_abi : -1;
}

const char *reexec_unavailable(void) {
        if (rx.unavailable)
                return rx.unavailable;
        if (!fdstore_kept_complete())
                return "rpsupd could not keep a copy of every fd it stored (see its log): a new image would lose it";
        return NULL;
}

const ReexecRecord *reexec_record(void) {
        return &rx.record;
}

static void record_outcome(uint64_t seq, const char *error) {
        rx.record.seq = seq;
        rx.record.last_failed = error != NULL;
        if (error)
                rx.record.failed++;
        else
                rx.record.done++;
        free(rx.record.last_error);
        rx.record.last_error = error ? strdup(error) : NULL;
        rx.record.last_usec = rx.since > 0 ? now_usec(CLOCK_MONOTONIC) - rx.since : 0;
        rx.record.last_at = now_usec(CLOCK_REALTIME);
}

void reexec_abandon(const char *error) {
        record_outcome(rx.record.seq + 1, error);
        log_error("Reexec %" PRIu64 " not done: %s", rx.record.seq, error);
}

void reexec_finish_takeover(void) {
        char span[FORMAT_TIMESPAN_MAX];

        if (!rx.received)
                return;
        record_outcome(rx.record.seq, rx.refused);
        format_timespan(span, sizeof(span), rx.record.last_usec, USEC_PER_MSEC);
        if (rx.refused)
                log_error("Reexec %" PRIu64 " failed, this image (%s) took over again after %s: the new image "
                          "refused: %s", rx.record.seq, rx.binary ?: "rpsupd", span, rx.refused);
        else
                log_info("Reexec %" PRIu64 " done: this image (%s) took over in %s.", rx.record.seq,
                         rx.binary ?: "rpsupd", span);
        rx.received = false;
        rx.fallback_fd = safe_close(rx.fallback_fd);
}

/* Everything of this environment but what describes fds and the runtime directory (the next image is told
 * afresh), with `extra` appended. */
static bool is_var(const char *assignment, const char *name) {
        size_t n = strlen(name);

        return strncmp(assignment, name, n) == 0 && assignment[n] == '=';
}

static char **exec_environment(char **extra) {
        char **env = NULL;

        STRV_FOREACH(e, environ) {
                bool skip = is_var(*e, "LISTEN_FDS") || is_var(*e, "LISTEN_FDNAMES") || is_var(*e, "LISTEN_PID") ||
                            is_var(*e, "RUNTIME_DIRECTORY");
                for (size_t i = 0; !skip && i < ELEMENTSOF(passed_env); i++)
                        skip = is_var(*e, passed_env[i]);
                if (!skip && strv_extend(&env, *e) < 0)
                        return strv_free(env);
        }
        STRV_FOREACH(e, extra)
                if (strv_extend(&env, *e) < 0)
                        return strv_free(env);
        return env;
}

static int set_cloexec_all(const StoredFd *fds, size_t n, bool cloexec) {
        for (size_t i = 0; i < n; i++)
                if (fd_set_cloexec(fds[i].fd, cloexec) < 0)
                        return -errno;
        return 0;
}

int reexec_exec(const char *runtime_dir, int steer_abi) {
        _cleanup_strv_free_ char **extra = NULL, **env = NULL;
        _cleanup_free_ char *fds_s = NULL, *names_s = NULL, *error = NULL;
        const StoredFd *kept;
        uint64_t seq = rx.record.seq + 1;
        size_t n, fl = 0, nl = 0;
        int r;

        if (reexec_unavailable()) {
                reexec_abandon(reexec_unavailable());
                return -EOPNOTSUPP;
        }
        rx.since = now_usec(CLOCK_MONOTONIC);
        n = fdstore_kept(&kept);
        for (size_t i = 0; i < n; i++) {
                fl += 12;
                nl += strlen(kept[i].name) + 1;
        }
        fds_s = calloc(fl + 1, 1);
        names_s = calloc(nl + 1, 1);
        if (!fds_s || !names_s)
                return log_oom();
        /* With running offsets: strcat() from the start each time is quadratic in the thousands of fds. */
        for (size_t i = 0, fo = 0, no = 0; i < n; i++) {
                size_t l = strlen(kept[i].name);

                fo += (size_t) snprintf(fds_s + fo, fl + 1 - fo, "%s%d", i > 0 ? ":" : "", kept[i].fd);
                if (i > 0)
                        names_s[no++] = ':';
                memcpy(names_s + no, kept[i].name, l);
                no += l;
        }
        if ((r = strv_consume(&extra, strdup_printf(ENV_FDS "=%s", fds_s))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_NAMES "=%s", names_s))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_FALLBACK "=%d", rx.exe_fd))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_BINARY "=%s", rx.binary))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_STEER_ABI "=%d", steer_abi))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_SEQ "=%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, seq,
                                                    rx.record.done, rx.record.failed, rx.since))) < 0 ||
            (r = strv_consume(&extra, strdup_printf("RUNTIME_DIRECTORY=%s", runtime_dir))) < 0)
                return log_oom();
        env = exec_environment(extra);
        if (!env)
                return log_oom();

        r = set_cloexec_all(kept, n, false);
        if (r >= 0)
                r = fd_set_cloexec(rx.exe_fd, false);
        if (r >= 0) {
                log_info("Reexec %" PRIu64 ": executing %s with %zu stored fd%s.", seq, rx.binary, n,
                         n == 1 ? "" : "s");
                (void) execve(rx.binary, rx.argv, env);
                r = -errno;
        }
        /* Nothing changed: the fds are this image's again. */
        (void) set_cloexec_all(kept, n, true);
        (void) fd_set_cloexec(rx.exe_fd, true);
        error = strdup_printf("cannot execute %s: %s", rx.binary, strerror(-r));
        record_outcome(seq, error ?: "cannot execute the binary");
        log_error("Reexec %" PRIu64 " failed, nothing changed: %s", seq, error ?: strerror(-r));
        return r;
}

int reexec_refuse(const char *reason, const char *runtime_dir) {
        _cleanup_strv_free_ char **extra = NULL, **env = NULL;
        _cleanup_free_ char *fds_s = NULL;
        int r;

        log_error("This image cannot take over from the running one (%s); executing it again.", reason);
        if (rx.fallback_fd < 0)
                return log_error_errno(-EBADF, "The running image's binary was not passed: cannot go back.");
        fds_s = calloc(rx.n_fds * 12 + 1, 1);
        if (!fds_s)
                return log_oom();
        for (size_t i = 0; i < rx.n_fds; i++) {
                char b[16];
                snprintf(b, sizeof(b), "%s%d", i > 0 ? ":" : "", 3 + (int) i);
                strcat(fds_s, b);
                if (fd_set_cloexec(3 + (int) i, false) < 0)
                        return log_error_errno(-errno, "Cannot pass fd %d back: %m", 3 + (int) i);
        }
        if ((r = strv_consume(&extra, strdup_printf(ENV_FDS "=%s", fds_s))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_NAMES "=%s", rx.names ?: ""))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_BINARY "=%s", rx.binary ?: ""))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_STEER_ABI "=%d", rx.sender_abi))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_SEQ "=%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                                                    rx.record.seq, rx.record.done, rx.record.failed, rx.since))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_REFUSED "=%s", reason))) < 0 ||
            (r = strv_consume(&extra, strdup_printf("RUNTIME_DIRECTORY=%s", runtime_dir ?: getenv("RUNTIME_DIRECTORY") ?: ""))) < 0)
                return log_oom();
        env = exec_environment(extra);
        if (!env)
                return log_oom();
        (void) execveat(rx.fallback_fd, "", rx.argv, env, AT_EMPTY_PATH);
        return log_error_errno(-errno, "Cannot execute the running image again: %m");
}

void reexec_done(void) {
        rx.exe_fd = safe_close(rx.exe_fd);
        rx.fallback_fd = safe_close(rx.fallback_fd);
        rx.binary = mfree(rx.binary);
        rx.names = mfree(rx.names);
        rx.refused = mfree(rx.refused);
        rx.record.last_error = mfree(rx.record.last_error);
}
