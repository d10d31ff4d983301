/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"
#include "log.h"
#include "parse-util.h"
#include "reexec.h"
#include "rpsup-limits.h"
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
#define ENV_PROTOCOL "RPSUP_REEXEC_PROTOCOL"
#define ENV_CONFIG "RPSUP_REEXEC_CONFIG"

/* The reexec protocol this image speaks: what it passes and takes (the variables above). A binary is only
 * executed if it carries the marker with a version at least this one (protocol_of()): a binary older
 * than the protocol would take none of the fds, end the workers as orphans and leak the listeners. A newer
 * protocol must take over from every older one. */
#define REEXEC_PROTOCOL 1
#define REEXEC_MARKER_PREFIX "rpsupd-reexec-protocol="
__attribute__((used)) static const char reexec_marker[] = REEXEC_MARKER_PREFIX STRINGIFY(REEXEC_PROTOCOL);
/* How large a binary the marker is looked for in. */
#define REEXEC_BINARY_SIZE_MAX (512U * 1024U * 1024U)

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
        int sender_protocol;      /* the sending image's REEXEC_PROTOCOL; 0: it did not say */
        int config_fd;            /* the sending image's running config (a sealed memfd): -EBADF if none */
        dev_t *devs;              /* what the passed fds were (st_dev, st_ino), to pass back only those */
        ino_t *inos;
        usec_t since;             /* CLOCK_MONOTONIC: when the attempt began */
        ReexecRecord record;
} rx = { .exe_fd = -EBADF, .fallback_fd = -EBADF, .sender_abi = -1, .config_fd = -EBADF };

static const char *const passed_env[] = {
        ENV_FDS, ENV_NAMES, ENV_FALLBACK, ENV_BINARY, ENV_STEER_ABI, ENV_SEQ, ENV_REFUSED, ENV_PROTOCOL, ENV_CONFIG,
};

static char *take_env(const char *name) {
        const char *e = getenv(name);
        char *v = e ? strdup(e) : NULL;

        unsetenv(name);
        return v;
}

/* An fd of the other image above the range the passed fds move to, O_CLOEXEC. */
static int place_above(int *fd, int above) {
        if (*fd >= 0 && *fd < above) {
                int k = fcntl(*fd, F_DUPFD_CLOEXEC, above);
                if (k < 0)
                        return -errno;
                (void) close(*fd);
                *fd = k;
        } else if (*fd >= 0)
                (void) fd_set_cloexec(*fd, true);
        return 0;
}

/* Moves fds[i] to 3 + i (not O_CLOEXEC, as LISTEN_FDS wants them), and `*fallback` and `*config` above them:
 * first all above the target range, then down, so that no fd is overwritten before it was moved. */
static int place_fds(int *fds, size_t n, int *fallback, int *config) {
        int above = 3 + (int) n;
        int r;

        for (size_t i = 0; i < n; i++) {
                int fd = fcntl(fds[i], F_DUPFD_CLOEXEC, above);
                if (fd < 0)
                        return -errno;
                (void) close(fds[i]);
                fds[i] = fd;
        }
        if ((r = place_above(fallback, above)) < 0 || (r = place_above(config, above)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (dup2(fds[i], 3 + (int) i) < 0)
                        return -errno;
                (void) close(fds[i]);
                fds[i] = 3 + (int) i;
        }
        return 0;
}

/* Parses an fd number the other image passed. */
static int parse_passed_fd(const char *s, int *ret) {
        unsigned u;

        if (parse_uint(s, &u) < 0 || u < 3 || u > INT_MAX)
                return -EBADMSG;
        *ret = (int) u;
        return 0;
}

int reexec_receive(int argc, char *argv[]) {
        _cleanup_free_ char *fds_s = NULL, *fallback_s = NULL, *abi_s = NULL, *seq_s = NULL, *protocol_s = NULL,
                            *config_s = NULL;
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
        protocol_s = take_env(ENV_PROTOCOL);
        config_s = take_env(ENV_CONFIG);
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
        if (fallback_s && parse_passed_fd(fallback_s, &rx.fallback_fd) < 0)
                return -EBADMSG;
        if (config_s && parse_passed_fd(config_s, &rx.config_fd) < 0)
                return -EBADMSG;
        if (abi_s && parse_int(abi_s, &rx.sender_abi) < 0)
                rx.sender_abi = -1;
        if (protocol_s && (parse_int(protocol_s, &rx.sender_protocol) < 0 || rx.sender_protocol < 1))
                rx.sender_protocol = INT_MAX; /* not one this image knows */
        if (seq_s && sscanf(seq_s, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &rx.record.seq, &rx.record.done,
                            &rx.record.failed, &rx.since) != 4)
                rx.record = (ReexecRecord) {};

        /* One name per fd, as systemd's LISTEN_FDNAMES: an image that passed others is not one to trust. */
        size_t names = rx.names && rx.names[0] ? 1 : 0;
        for (const char *c = rx.names; c && *c; c++)
                names += *c == ':';
        if (names != n)
                return -EBADMSG;

        r = place_fds(fds, n, &rx.fallback_fd, &rx.config_fd);
        if (r < 0)
                return r;
        /* What each fd is: only those still the same go back if this image refuses (a failed set-up may have
         * closed one, and its number been taken by another fd since). */
        rx.devs = calloc(n ?: 1, sizeof(dev_t));
        rx.inos = calloc(n ?: 1, sizeof(ino_t));
        if (!rx.devs || !rx.inos)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (fstat(3 + (int) i, &st) < 0)
                        return -errno;
                rx.devs[i] = st.st_dev;
                rx.inos[i] = st.st_ino;
        }
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

char *reexec_protocol_refusal(void) {
        if (!rx.received || rx.sender_protocol <= REEXEC_PROTOCOL)
                return NULL;
        if (rx.sender_protocol == INT_MAX)
                return strdup_printf("the running image passed a reexec protocol version this image cannot read "
                                     "(it speaks %d)", REEXEC_PROTOCOL);
        return strdup_printf("the running image speaks reexec protocol %d, this image %d only", rx.sender_protocol,
                             REEXEC_PROTOCOL);
}

int reexec_load_config(const char *path, const char *service, Config **ret, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        struct stat st;
        void *p;
        int r;

        /* Back after a refusal: the config the running image ran with, which worked with all it had. The one
         * on disk may be what made the new image refuse. */
        if (!rx.refused || rx.config_fd < 0)
                return config_load(path, service, ret, ret_error);
        if (fstat(rx.config_fd, &st) < 0 || st.st_size <= 0 || st.st_size > CONFIG_SIZE_MAX)
                r = -EBADF;
        else {
                p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, rx.config_fd, 0);
                if (p == MAP_FAILED)
                        r = -errno;
                else {
                        r = config_parse_buffer(p, (size_t) st.st_size, path, service, ret, &error);
                        (void) munmap(p, (size_t) st.st_size);
                }
        }
        if (r >= 0) {
                log_info("Taking over again with the config this image ran with before the reexec (%s as it was "
                         "then).", path);
                return 0;
        }
        log_error("The config this image ran with before the reexec cannot be read back (%s); reading %s.",
                  error ?: strerror(-r), path);
        return config_load(path, service, ret, ret_error);
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
        rx.config_fd = safe_close(rx.config_fd);
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

/* The highest reexec protocol whose marker the binary open at `fd` carries; 0: none (older than reexec, or
 * not rpsupd). */
static int protocol_of(int fd) {
        const size_t k = sizeof(REEXEC_MARKER_PREFIX) - 1;
        struct stat st;
        const char *p, *end, *at;
        void *map;
        int best = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size < (off_t) k || (uint64_t) st.st_size > REEXEC_BINARY_SIZE_MAX)
                return 0;
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        p = map;
        end = p + st.st_size;
        /* The needle is the marker's own prefix, so this image's code adds no other copy of it. */
        while ((at = memmem(p, (size_t) (end - p), reexec_marker, k))) {
                int v = 0;
                const char *d = at + k;
                while (d < end && *d >= '0' && *d <= '9' && v < 100000)
                        v = v * 10 + (*d++ - '0');
                if (d > at + k && d < end && *d == 0 && v > best)
                        best = v;
                p = at + 1;
        }
        (void) munmap(map, (size_t) st.st_size);
        return best;
}

/* A sealed memfd with the running config's text: the old image takes over with it if the new one refuses
 * (the config on disk may be what made it refuse). */
static int config_memfd(const Config *c) {
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;

        fd = memfd_create("rpsupd-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        while (done < c->source_size) {
                ssize_t k = write(fd, c->source + done, c->source_size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Recorded as a failed attempt before anything changed. */
static int exec_failed(uint64_t seq, int r, char *error) {
        record_outcome(seq, error ?: "out of memory");
        log_error("Reexec %" PRIu64 " failed, nothing changed: %s", seq, error ?: strerror(-r));
        free(error);
        return r;
}

int reexec_exec(const char *runtime_dir, int steer_abi, const Config *running) {
        _cleanup_strv_free_ char **extra = NULL, **env = NULL;
        _cleanup_free_ char *fds_s = NULL, *names_s = NULL, *error = NULL;
        _cleanup_close_ int bin_fd = -EBADF, config_fd = -EBADF;
        const StoredFd *kept;
        uint64_t seq = rx.record.seq + 1;
        size_t n, fl = 0, nl = 0;
        int r, protocol;

        if (reexec_unavailable()) {
                reexec_abandon(reexec_unavailable());
                return -EOPNOTSUPP;
        }
        rx.since = now_usec(CLOCK_MONOTONIC);
        /* The binary is opened once: what is checked is what is executed, even if an upgrade renames another
         * file over the path meanwhile. */
        bin_fd = open(rx.binary, O_RDONLY | O_CLOEXEC);
        if (bin_fd < 0)
                return exec_failed(seq, -errno, strdup_printf("cannot execute %s: %s", rx.binary, strerror(errno)));
        protocol = protocol_of(bin_fd);
        if (protocol < 0)
                return exec_failed(seq, protocol, strdup_printf("cannot execute %s: %s", rx.binary,
                                                                 strerror(-protocol)));
        if (protocol < REEXEC_PROTOCOL)
                return exec_failed(seq, -EPROTONOSUPPORT,
                                   strdup_printf("%s does not speak rpsupd's reexec protocol %d (it is not rpsupd, or "
                                                 "one older than this): it would not take the workers over; "
                                                 "restart the service to run it", rx.binary, REEXEC_PROTOCOL));
        config_fd = config_memfd(running);
        if (config_fd < 0)
                return exec_failed(seq, config_fd, strdup_printf("cannot keep the running config for a fallback: "
                                                                 "%s", strerror(-config_fd)));
        n = fdstore_kept(&kept);
        for (size_t i = 0; i < n; i++) {
                fl += 12;
                nl += strlen(kept[i].name) + 1;
        }
        fds_s = calloc(fl + 1, 1);
        names_s = calloc(nl + 1, 1);
        if (!fds_s || !names_s)
                return log_oom(); /* recorded by the caller */
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
            (r = strv_consume(&extra, strdup_printf(ENV_PROTOCOL "=%d", REEXEC_PROTOCOL))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_CONFIG "=%d", config_fd))) < 0 ||
            (r = strv_consume(&extra, strdup_printf("RUNTIME_DIRECTORY=%s", runtime_dir))) < 0)
                return exec_failed(seq, log_oom(), NULL);
        env = exec_environment(extra);
        if (!env)
                return exec_failed(seq, log_oom(), NULL);

        r = set_cloexec_all(kept, n, false);
        if (r >= 0)
                r = fd_set_cloexec(rx.exe_fd, false);
        if (r >= 0)
                r = fd_set_cloexec(config_fd, false);
        if (r >= 0) {
                log_info("Reexec %" PRIu64 ": executing %s (reexec protocol %d) with %zu stored fd%s.", seq,
                         rx.binary, protocol, n, n == 1 ? "" : "s");
                (void) execveat(bin_fd, "", rx.argv, env, AT_EMPTY_PATH);
                r = -errno;
        }
        /* Nothing changed: the fds are this image's again. */
        (void) set_cloexec_all(kept, n, true);
        (void) fd_set_cloexec(rx.exe_fd, true);
        return exec_failed(seq, r, strdup_printf("cannot execute %s: %s", rx.binary, strerror(-r)));
}

/* Whether fd 3 + i is still the one passed as such. */
static bool passed_fd_intact(size_t i) {
        struct stat st;

        return fstat(3 + (int) i, &st) >= 0 && st.st_dev == rx.devs[i] && st.st_ino == rx.inos[i];
}

int reexec_refuse(const char *reason, const char *runtime_dir) {
        _cleanup_strv_free_ char **extra = NULL, **env = NULL;
        _cleanup_free_ char *fds_s = NULL, *names_s = NULL, *names = NULL;
        char *name, *save = NULL;
        size_t lost = 0, i = 0;
        int r;

        log_error("This image cannot take over from the running one (%s); executing it again.", reason);
        if (rx.fallback_fd < 0)
                return log_error_errno(-EBADF, "The running image's binary was not passed: cannot go back.");
        fds_s = calloc(rx.n_fds * 12 + 1, 1);
        names = strdup(rx.names ?: "");
        names_s = calloc(strlen(rx.names ?: "") + rx.n_fds + 1, 1);
        if (!fds_s || !names || !names_s)
                return log_oom();
        /* Every fd passed goes back under its name, but one that a failed set-up closed (its number may name
         * another fd of this image now): the old image does without it, as a restarted rpsupd does. */
        /* With running offsets: strcat() from the start each time is quadratic in the thousands of fds. */
        size_t fo = 0, no = 0;
        for (name = strtok_r(names, ":", &save); i < rx.n_fds; i++, name = name ? strtok_r(NULL, ":", &save) : NULL) {
                if (!passed_fd_intact(i)) {
                        log_error("The passed fd %d (\"%s\") was closed while this image set up: it does not go "
                                  "back.", 3 + (int) i, name ?: "");
                        lost++;
                        continue;
                }
                fo += (size_t) sprintf(fds_s + fo, "%s%d", i - lost > 0 ? ":" : "", 3 + (int) i);
                no += (size_t) sprintf(names_s + no, "%s%s", i - lost > 0 ? ":" : "", name ?: "");
                if (fd_set_cloexec(3 + (int) i, false) < 0)
                        return log_error_errno(-errno, "Cannot pass fd %d back: %m", 3 + (int) i);
        }
        if (rx.config_fd >= 0 && fd_set_cloexec(rx.config_fd, false) < 0)
                return log_error_errno(-errno, "Cannot pass the running config back: %m");
        if ((r = strv_consume(&extra, strdup_printf(ENV_FDS "=%s", fds_s))) < 0 ||
            (r = strv_consume(&extra, strdup_printf(ENV_NAMES "=%s", names_s))) < 0 ||
            (rx.config_fd >= 0 && (r = strv_consume(&extra, strdup_printf(ENV_CONFIG "=%d", rx.config_fd))) < 0) ||
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
        rx.config_fd = safe_close(rx.config_fd);
        rx.devs = mfree(rx.devs);
        rx.inos = mfree(rx.inos);
        rx.record.last_error = mfree(rx.record.last_error);
}
