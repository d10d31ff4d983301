/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* config_load() (supervisor/config.c) on real files: every key, the defaults, the INI syntax, and every
 * error, which must name the file, the line and the key. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "capability-util.h"
#include "config.h"
#include "steer-shared.h"
#include "strv.h"
#include "utf8.h"

#define WORKERS_LIMIT 512u
#define LINE_LIMIT (64u * 1024u)
#define PROBE_LINE_LEN 1100
#define PATH_LEN 256

static char tmpdir[] = "/tmp/rpsup-test-config-XXXXXX";
static char worker[PATH_LEN];
static char conf[PATH_LEN];

/* ---- fixtures ---- */

static void write_file(const char *path, const char *text, size_t n, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, n), (ssize_t) n);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static int setup(void **state) {
        char path[PATH_LEN];

        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(worker, sizeof(worker), "%s/worker", tmpdir);
        snprintf(conf, sizeof(conf), "%s/web.conf", tmpdir);
        write_file(worker, "#!/bin/sh\nexit 0\n", 17, 0755);
        snprintf(path, sizeof(path), "%s/noexec", tmpdir);
        write_file(path, "#!/bin/sh\nexit 0\n", 17, 0644);
        snprintf(path, sizeof(path), "%s/subdir", tmpdir);
        if (mkdir(path, 0755) < 0)
                return -1;
        return 0;
}

static int teardown(void **state) {
        DIR *d = opendir(tmpdir);
        struct dirent *de;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, streq(de->d_name, "subdir") ? AT_REMOVEDIR : 0);
        closedir(d);
        return rmdir(tmpdir) < 0 ? -1 : 0;
}

/* The text with every "@W@" replaced by the worker's path and "@D@" by the temporary directory. */
static char *expand(const char *text) {
        size_t n = strlen(text) + 1;
        char *s, *o;

        for (const char *p = text; (p = strchr(p, '@')); p++)
                n += MAX(strlen(worker), strlen(tmpdir));
        s = o = malloc(n);

        assert_non_null(s);
        for (const char *p = text; *p;) {
                if (strncmp(p, "@W@", 3) == 0) {
                        o = stpcpy(o, worker);
                        p += 3;
                } else if (strncmp(p, "@D@", 3) == 0) {
                        o = stpcpy(o, tmpdir);
                        p += 3;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        return s;
}

static Config *load_as(const char *text, const char *service) {
        char *t = expand(text), *error = NULL;
        Config *c = NULL;
        int r;

        write_file(conf, t, strlen(t), 0644);
        r = config_load(conf, service, &c, &error);
        if (r < 0)
                print_error("config_load() = %d: %s\n--- config:\n%s---\n", r, error ?: "(no message)", t);
        free(t);
        assert_int_equal(r, 0);
        assert_null(error);
        assert_non_null(c);
        return c;
}

static Config *load(const char *text) {
        return load_as(text, "web");
}

/* Loading fails with want_r (or any negative value if want_r is 0) and the message starts with
 * "CONF:LINE: Key=: " ("CONF:LINE: " without key, "CONF: " for line 0), and contains `needle`. */
static void check_error_text(const char *t, size_t n, int want_r, unsigned line, const char *key, const char *needle) {
        char prefix[PATH_LEN + 128], *error = NULL;
        Config *c = NULL;
        int r;

        write_file(conf, t, n, 0644);
        r = config_load(conf, "web", &c, &error);
        if (line == 0)
                snprintf(prefix, sizeof(prefix), "%s: ", conf);
        else if (key)
                snprintf(prefix, sizeof(prefix), "%s:%u: %s=: ", conf, line, key);
        else
                snprintf(prefix, sizeof(prefix), "%s:%u: ", conf, line);

        if (r >= 0 || (want_r != 0 && r != want_r) || !error || strncmp(error, prefix, strlen(prefix)) != 0 ||
            !strstr(error, needle)) {
                print_error("config_load() = %d (expected %d): \"%s\"\nexpected a message starting with \"%s\" "
                            "and containing \"%s\"\n", r, want_r, error ?: "(none)", prefix, needle);
                if (n < 4096)
                        print_error("--- config:\n%s---\n", t);
        }
        assert_true(r < 0);
        if (want_r != 0)
                assert_int_equal(r, want_r);
        assert_null(c);
        assert_non_null(error);
        assert_true(strncmp(error, prefix, strlen(prefix)) == 0);
        assert_non_null(strstr(error, needle));
        free(error);
}

static void check_error(const char *text, int want_r, unsigned line, const char *key, const char *needle) {
        char *t = expand(text);

        check_error_text(t, strlen(t), want_r, line, key, needle);
        free(t);
}

/* A valid config with `service_line` as line 3 (in [Service]), to test one key's value. */
static Config *load_service_key(const char *service_line) {
        char *text = NULL;
        Config *c;

        assert_true(asprintf(&text, "[Service]\nExecStart=@W@\n%s\n[Socket]\nListenStream=8080\n", service_line) > 0);
        c = load(text);
        free(text);
        return c;
}

static void check_service_key_error(const char *service_line, int want_r, const char *key, const char *needle) {
        char *text = NULL;

        assert_true(asprintf(&text, "[Service]\nExecStart=@W@\n%s\n[Socket]\nListenStream=8080\n", service_line) > 0);
        check_error(text, want_r, 3, key, needle);
        free(text);
}

/* A valid config with `socket_line` as line 4 (in [Socket], after ListenStream=8080 on line 3). */
static Config *load_socket_key(const char *socket_line) {
        char *text = NULL;
        Config *c;

        assert_true(asprintf(&text, "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n%s\n", socket_line) > 0);
        c = load(text);
        free(text);
        return c;
}

static void check_socket_key_error(const char *socket_line, int want_r, const char *key, const char *needle) {
        char *text = NULL;

        assert_true(asprintf(&text, "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n%s\n", socket_line) > 0);
        check_error(text, want_r, 5, key, needle);
        free(text);
}

static void assert_env(const Config *c, const char *const *want) {
        size_t n = 0;

        while (want[n])
                n++;
        assert_int_equal(strv_length(c->environment), n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(c->environment[i], want[i]);
}

/* ---- valid configs ---- */

static void test_defaults(void **state) {
        Config *c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n");
        long n_cpus = sysconf(_SC_NPROCESSORS_ONLN);

        assert_int_equal(c->n_ref, 1);
        assert_string_equal(c->path, conf);
        assert_string_equal(c->service, "web");
        assert_string_equal(c->exec_start, worker);
        assert_int_equal(strv_length(c->exec_words), 1);
        assert_string_equal(c->exec_words[0], worker);
        assert_string_equal(c->exec_path, worker);
        assert_int_equal(c->workers, n_cpus > 0 ? (unsigned) MIN(n_cpus, (long) WORKERS_LIMIT) : 1);
        assert_int_equal(c->strategy, STRATEGY_AUTO);
        assert_int_equal(c->ready, READY_NOTIFY);
        assert_true(c->ready_timeout == 30 * USEC_PER_SEC);
        assert_int_equal(c->kill_signal, SIGTERM);
        assert_true(c->stop_timeout == 30 * USEC_PER_SEC);
        assert_true(c->watchdog == 0);
        assert_true(c->stall == USEC_INFINITY);
        assert_true(c->drain == USEC_INFINITY);
        assert_int_equal(c->restart, RESTART_ON_FAILURE);
        assert_int_equal(strv_length(c->environment), 0);
        assert_null(c->user);
        assert_null(c->group);
        assert_int_equal(c->uid, getuid());
        assert_int_equal(c->gid, getgid());
        assert_null(c->working_directory);
        assert_false(c->working_directory_missing_ok);
        assert_int_equal(c->n_listen, 1);
        assert_int_equal(c->backlog, 4096);
        assert_string_equal(c->fdname, "web");
        /* Health gates: no probe, a 5 s soak, no canary. */
        assert_int_equal(c->probe, PROBE_NONE);
        assert_null(c->probe_text);
        assert_null(c->probe_path);
        assert_null(c->probe_argv);
        assert_null(c->probe_exec_path);
        assert_true(c->probe_timeout == 2 * USEC_PER_SEC);
        assert_true(c->probe_interval == USEC_PER_SEC);
        assert_int_equal(c->probe_passes, 1);
        assert_int_equal(c->probe_failures, 3);
        assert_true(c->soak == 5 * USEC_PER_SEC);
        assert_int_equal(c->canary, 0);
        config_unref(c);
}

static void test_exec_start(void **state) {
        Config *c = load("[Service]\nExecStart=@W@ -D --name=%i \"a b\" 'c  d' \\$HOME $PORT 100%%\n"
                         "[Socket]\nListenStream=8080\n");
        char *want = NULL;

        assert_true(asprintf(&want, "%s -D --name=%%i \"a b\" 'c  d' \\$HOME $PORT 100%%%%", worker) > 0);
        /* As written. */
        assert_string_equal(c->exec_start, want);
        /* Split and unquoted, specifiers resolved, '$' left for spawn time. */
        assert_int_equal(strv_length(c->exec_words), 8);
        assert_string_equal(c->exec_words[0], worker);
        assert_string_equal(c->exec_words[1], "-D");
        assert_string_equal(c->exec_words[2], "--name=web");
        assert_string_equal(c->exec_words[3], "a b");
        assert_string_equal(c->exec_words[4], "c  d");
        assert_string_equal(c->exec_words[5], "$$HOME");
        assert_string_equal(c->exec_words[6], "$PORT");
        assert_string_equal(c->exec_words[7], "100%");
        assert_string_equal(c->exec_path, worker);
        free(want);
        config_unref(c);

        /* A later ExecStart= replaces the earlier one. */
        c = load("[Service]\nExecStart=/nonexistent/old\nExecStart=@W@ new\n[Socket]\nListenStream=8080\n");
        assert_int_equal(strv_length(c->exec_words), 2);
        assert_string_equal(c->exec_words[1], "new");
        config_unref(c);
}

static void test_exec_start_path_lookup(void **state) {
        char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL, *path = NULL;
        Config *c;

        /* A name without '/' is looked up in $PATH; directories and missing entries are skipped. */
        assert_true(asprintf(&path, "/nonexistent-rpsup-dir::%s/subdir:%s", tmpdir, tmpdir) > 0);
        assert_int_equal(setenv("PATH", path, 1), 0);
        c = load("[Service]\nExecStart=worker --flag\n[Socket]\nListenStream=8080\n");
        assert_string_equal(c->exec_words[0], "worker");
        assert_string_equal(c->exec_words[1], "--flag");
        assert_string_equal(c->exec_path, worker);
        config_unref(c);

        check_error("[Service]\nExecStart=no-such-rpsup-worker\n[Socket]\nListenStream=8080\n", -ENOENT, 2,
                    "ExecStart", "cannot execute \"no-such-rpsup-worker\"");

        if (old)
                assert_int_equal(setenv("PATH", old, 1), 0);
        else
                assert_int_equal(unsetenv("PATH"), 0);
        free(old);
        free(path);
}

static void test_workers(void **state) {
        static const struct {
                const char *line;
                unsigned want;
        } cases[] = {
                { "Workers=1", 1 },
                { "Workers=4", 4 },
                { "Workers=512", 512 },
                { "Workers=2\nWorkers=3", 3 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = load_service_key(cases[i].line);
                assert_int_equal(c->workers, cases[i].want);
                config_unref(c);
        }
}

static void test_strategy(void **state) {
        static const struct {
                const char *line;
                StrategyKind want;
        } cases[] = {
                { "Strategy=auto", STRATEGY_AUTO },
                { "Strategy=handoff", STRATEGY_HANDOFF },
                { "Strategy=drain", STRATEGY_DRAIN },
                { "Strategy=migrate", STRATEGY_MIGRATE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = load_service_key(cases[i].line);
                assert_int_equal(c->strategy, cases[i].want);
                config_unref(c);
        }
}

static void test_ready(void **state) {
        Config *c = load_service_key("Ready=exec");

        assert_int_equal(c->ready, READY_EXEC);
        config_unref(c);

        c = load_service_key("Ready=exec\nReady=notify");
        assert_int_equal(c->ready, READY_NOTIFY);
        config_unref(c);
}

static void test_time_keys(void **state) {
        Config *c = load_service_key("ReadyTimeoutSec=500ms\nStopTimeoutSec=2min\nWatchdogSec=1min 30s\n"
                                     "StallSec=3s\nDrainSec=1.5s");

        assert_true(c->ready_timeout == 500 * USEC_PER_MSEC);
        assert_true(c->stop_timeout == 2 * USEC_PER_MINUTE);
        assert_true(c->watchdog == 90 * USEC_PER_SEC);
        assert_true(c->stall == 3 * USEC_PER_SEC);
        assert_true(c->drain == 1500 * USEC_PER_MSEC);
        config_unref(c);

        /* A bare number is seconds; 0 is allowed where it means "off" or "at once"; 7 days is the maximum. */
        c = load_service_key("ReadyTimeoutSec=45\nStopTimeoutSec=0\nWatchdogSec=0\nStallSec=0\nDrainSec=0");
        assert_true(c->ready_timeout == 45 * USEC_PER_SEC);
        assert_true(c->stop_timeout == 0);
        assert_true(c->watchdog == 0);
        assert_true(c->stall == 0);
        assert_true(c->drain == 0);
        config_unref(c);

        c = load_service_key("ReadyTimeoutSec=7d\nStopTimeoutSec=1h\nWatchdogSec=20s\nStallSec=10\nDrainSec=5min");
        assert_true(c->ready_timeout == 7 * USEC_PER_DAY);
        assert_true(c->stop_timeout == USEC_PER_HOUR);
        assert_true(c->watchdog == 20 * USEC_PER_SEC);
        assert_true(c->stall == 10 * USEC_PER_SEC);
        assert_true(c->drain == 5 * USEC_PER_MINUTE);
        config_unref(c);

        /* "auto" for StallSec= and DrainSec=, also after an explicit value. */
        c = load_service_key("StallSec=3s\nStallSec=auto\nDrainSec=4s\nDrainSec=auto");
        assert_true(c->stall == USEC_INFINITY);
        assert_true(c->drain == USEC_INFINITY);
        config_unref(c);
}

static void test_kill_signal(void **state) {
        static const struct {
                const char *line;
                int want;
        } cases[] = {
                { "KillSignal=SIGINT", SIGINT },
                { "KillSignal=INT", SIGINT },
                { "KillSignal=2", SIGINT },
                { "KillSignal=SIGQUIT", SIGQUIT },
                { "KillSignal=SIGHUP", SIGHUP },
                { "KillSignal=SIGUSR1", SIGUSR1 },
                { "KillSignal=SIGTERM", SIGTERM },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = load_service_key(cases[i].line);
                assert_int_equal(c->kill_signal, cases[i].want);
                config_unref(c);
        }
}

static void test_kill_signal_realtime(void **state) {
        char line[64];

        /* The real-time signals as glibc defines them at run time. */
        for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
                snprintf(line, sizeof(line), "KillSignal=%d", sig);
                Config *c = load_service_key(line);
                assert_int_equal(c->kill_signal, sig);
                config_unref(c);
        }
        Config *c = load_service_key("KillSignal=SIGRTMIN+2");
        assert_int_equal(c->kill_signal, SIGRTMIN + 2);
        config_unref(c);
        c = load_service_key("KillSignal=31");
        assert_int_equal(c->kill_signal, 31);
        config_unref(c);
}

static void test_restart(void **state) {
        static const struct {
                const char *line;
                RestartMode want;
                const char *name;
        } cases[] = {
                { "Restart=on-failure", RESTART_ON_FAILURE, "on-failure" },
                { "Restart=always", RESTART_ALWAYS, "always" },
                { "Restart=no", RESTART_NO, "no" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = load_service_key(cases[i].line);
                assert_int_equal(c->restart, cases[i].want);
                assert_string_equal(restart_mode_to_string(c->restart), cases[i].name);
                config_unref(c);
        }
        assert_null(restart_mode_to_string(_RESTART_MAX));
}

static void test_environment(void **state) {
        Config *c;

        /* Several assignments on a line, quoting, escapes, %i; a later assignment of a name replaces it. */
        c = load_service_key("Environment=A=1 \"B=two words\" C='x  y' D=%i\n"
                             "Environment=A=override E=tab\\there F= G=\\$5");
        assert_env(c, (const char *const[]) { "A=override", "B=two words", "C=x  y", "D=web", "E=tab\there", "F=",
                                              "G=$5", NULL });
        config_unref(c);

        /* An empty Environment= resets the list. */
        c = load_service_key("Environment=A=1 B=2\nEnvironment=\nEnvironment=C=3");
        assert_env(c, (const char *const[]) { "C=3", NULL });
        config_unref(c);

        c = load_service_key("Environment=A=1\nEnvironment=");
        assert_int_equal(strv_length(c->environment), 0);
        config_unref(c);
}

static void test_user_group(void **state) {
        Config *c;

        if (geteuid() == 0) {
                static const char *const lines[] = {
                        "User=root", "User=0", "Group=root", "Group=0", "User=root\nGroup=0", "User=0\nGroup=root",
                };
                for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                        c = load_service_key(lines[i]);
                        assert_int_equal(c->uid, 0);
                        assert_int_equal(c->gid, 0);
                        config_unref(c);
                }
                c = load_service_key("User=root");
                assert_string_equal(c->user, "root");
                assert_null(c->group);
                config_unref(c);

                /* A numeric ID without a passwd entry is used as it is, for the group too. */
                if (!getpwuid(4242) && !getgrgid(4242)) {
                        c = load_service_key("User=4242");
                        assert_int_equal(c->uid, 4242);
                        assert_int_equal(c->gid, 4242);
                        config_unref(c);
                        c = load_service_key("User=4242\nGroup=0");
                        assert_int_equal(c->uid, 4242);
                        assert_int_equal(c->gid, 0);
                        config_unref(c);
                }
        } else {
                /* Not root: only the current user (and that user's group) can be asked for. */
                char *line = NULL;
                assert_true(asprintf(&line, "User=%u\nGroup=%u", (unsigned) getuid(), (unsigned) getgid()) > 0);
                c = load_service_key(line);
                assert_int_equal(c->uid, getuid());
                assert_int_equal(c->gid, getgid());
                config_unref(c);
                free(line);

                struct passwd *pw = getpwuid(getuid());
                if (pw && pw->pw_gid == getgid()) {
                        assert_true(asprintf(&line, "User=%s", pw->pw_name) > 0);
                        c = load_service_key(line);
                        assert_int_equal(c->uid, getuid());
                        assert_int_equal(c->gid, getgid());
                        config_unref(c);
                        free(line);
                }
        }

        /* An empty assignment resets. */
        c = load_service_key("User=no-such-user-rpsup\nUser=\nGroup=no-such-group-rpsup\nGroup=");
        assert_null(c->user);
        assert_null(c->group);
        assert_int_equal(c->uid, getuid());
        assert_int_equal(c->gid, getgid());
        config_unref(c);
}

static void test_capabilities(void **state) {
        const uint64_t nbs = CAPABILITY_MASK(CAP_NET_BIND_SERVICE), kill = CAPABILITY_MASK(CAP_KILL),
                       chown = CAPABILITY_MASK(CAP_CHOWN), all = capability_set_all();
        uint64_t permitted;
        Config *c;

        /* By default a worker keeps no capability and cannot gain any. */
        c = load_service_key("");
        assert_true(c->capability_bounding_set == 0);
        assert_true(c->ambient_capabilities == 0);
        assert_true(c->no_new_privileges);
        config_unref(c);

        /* Names in any case, as systemd; lists merge; "~" takes away from what is there, or starts from all;
         * an empty assignment resets to none. */
        static const struct {
                const char *lines;
                uint64_t want;
        } cases[] = {
                { "CapabilityBoundingSet=CAP_NET_BIND_SERVICE cap_kill", 0 },
                { "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_KILL", 0 },
                { "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_KILL CAP_CHOWN\nCapabilityBoundingSet=~CAP_CHOWN", 0 },
                { "CapabilityBoundingSet=  CAP_KILL\tCAP_NET_BIND_SERVICE  ", 0 },
                { "CapabilityBoundingSet=~CAP_CHOWN", 1 },
                { "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=~", 2 },
                { "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=", 3 },
                { "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=\nCapabilityBoundingSet=~CAP_CHOWN", 1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t want = cases[i].want == 0 ? nbs | kill : cases[i].want == 1 ? all & ~chown :
                                cases[i].want == 2 ? all : 0;
                c = load_service_key(cases[i].lines);
                if (c->capability_bounding_set != want)
                        print_error("%s: 0x%llx, expected 0x%llx\n", cases[i].lines,
                                    (unsigned long long) c->capability_bounding_set, (unsigned long long) want);
                assert_true(c->capability_bounding_set == want);
                assert_true(c->ambient_capabilities == 0);
                config_unref(c);
        }

        static const char *const no[] = { "no", "0", "false", "off", "NO" }, *const yes[] = { "yes", "1", "true", "on" };
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                char line[64];
                snprintf(line, sizeof(line), "NoNewPrivileges=%s", no[i]);
                c = load_service_key(line);
                assert_false(c->no_new_privileges);
                config_unref(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                char line[64];
                snprintf(line, sizeof(line), "NoNewPrivileges=no\nNoNewPrivileges=%s", yes[i]);
                c = load_service_key(line);
                assert_true(c->no_new_privileges);
                config_unref(c);
        }

        /* An ambient capability is in the bounding set too. Only one rpsupd holds can be handed on. */
        assert_int_equal(capability_get_own(NULL, &permitted, NULL), 0);
        if (permitted & nbs) {
                c = load_service_key("AmbientCapabilities=CAP_NET_BIND_SERVICE");
                assert_true(c->ambient_capabilities == nbs);
                assert_true(c->capability_bounding_set == nbs);
                config_unref(c);
                c = load_service_key("CapabilityBoundingSet=CAP_KILL CAP_NET_BIND_SERVICE\n"
                                     "AmbientCapabilities=CAP_NET_BIND_SERVICE");
                assert_true(c->ambient_capabilities == nbs);
                assert_true(c->capability_bounding_set == (nbs | kill));
                config_unref(c);
                c = load_service_key("AmbientCapabilities=CAP_NET_BIND_SERVICE\nAmbientCapabilities=");
                assert_true(c->ambient_capabilities == 0);
                assert_true(c->capability_bounding_set == 0);
                config_unref(c);
        }
}

static void test_working_directory(void **state) {
        Config *c = load_service_key("WorkingDirectory=/srv/web");

        assert_string_equal(c->working_directory, "/srv/web");
        assert_false(c->working_directory_missing_ok);
        config_unref(c);

        c = load_service_key("WorkingDirectory=-/srv/missing");
        assert_string_equal(c->working_directory, "/srv/missing");
        assert_true(c->working_directory_missing_ok);
        config_unref(c);

        c = load_service_key("WorkingDirectory=-/srv/missing\nWorkingDirectory=/srv/web");
        assert_string_equal(c->working_directory, "/srv/web");
        assert_false(c->working_directory_missing_ok);
        config_unref(c);

        c = load_service_key("WorkingDirectory=/srv/web\nWorkingDirectory=");
        assert_null(c->working_directory);
        config_unref(c);
}

static void test_listen(void **state) {
        Config *c = load("[Service]\nExecStart=@W@\n[Socket]\n"
                         "ListenStream=8080\n"
                         "ListenStream=127.0.0.1:8081\n"
                         "ListenStream=[::1]:8082\n"
                         "ListenStream=@D@/web.sock\n"
                         "ListenStream=@rpsup-test-web\n"
                         "ListenDatagram=127.0.0.1:5353\n"
                         "ListenDatagram=8080\n");
        char path[PATH_LEN];
        struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

        assert_int_equal(c->n_listen, 7);

        assert_string_equal(c->listen[0].text, "8080");
        assert_int_equal(c->listen[0].address.type, SOCK_STREAM);
        assert_int_equal(c->listen[0].address.sa.sa_family, AF_INET6);
        assert_memory_equal(&c->listen[0].address.in6.sin6_addr, &in6addr_any, sizeof(struct in6_addr));
        assert_int_equal(ntohs(c->listen[0].address.in6.sin6_port), 8080);

        assert_string_equal(c->listen[1].text, "127.0.0.1:8081");
        assert_int_equal(c->listen[1].address.type, SOCK_STREAM);
        assert_int_equal(c->listen[1].address.sa.sa_family, AF_INET);
        assert_int_equal(ntohl(c->listen[1].address.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(ntohs(c->listen[1].address.in.sin_port), 8081);

        assert_string_equal(c->listen[2].text, "[::1]:8082");
        assert_int_equal(c->listen[2].address.sa.sa_family, AF_INET6);
        assert_memory_equal(&c->listen[2].address.in6.sin6_addr, &lo6, sizeof(lo6));
        assert_int_equal(ntohs(c->listen[2].address.in6.sin6_port), 8082);

        snprintf(path, sizeof(path), "%s/web.sock", tmpdir);
        assert_string_equal(c->listen[3].text, path);
        assert_int_equal(c->listen[3].address.sa.sa_family, AF_UNIX);
        assert_string_equal(c->listen[3].address.un.sun_path, path);

        assert_string_equal(c->listen[4].text, "@rpsup-test-web");
        assert_int_equal(c->listen[4].address.sa.sa_family, AF_UNIX);
        assert_int_equal(c->listen[4].address.un.sun_path[0], 0);
        assert_memory_equal(c->listen[4].address.un.sun_path + 1, "rpsup-test-web", 14);

        assert_string_equal(c->listen[5].text, "127.0.0.1:5353");
        assert_int_equal(c->listen[5].address.type, SOCK_DGRAM);
        assert_int_equal(c->listen[5].address.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(c->listen[5].address.in.sin_port), 5353);

        /* The same port as a stream and as a datagram socket is not a duplicate. */
        assert_string_equal(c->listen[6].text, "8080");
        assert_int_equal(c->listen[6].address.type, SOCK_DGRAM);
        assert_int_equal(c->listen[6].address.sa.sa_family, AF_INET6);
        config_unref(c);
}

static void test_listen_reset(void **state) {
        /* An empty ListenStream= drops the streams so far, and only those. */
        Config *c = load("[Service]\nExecStart=@W@\n[Socket]\n"
                         "ListenStream=80\nListenDatagram=53\nListenStream=127.0.0.1:81\n"
                         "ListenStream=\nListenStream=82\n");

        assert_int_equal(c->n_listen, 2);
        assert_string_equal(c->listen[0].text, "53");
        assert_int_equal(c->listen[0].address.type, SOCK_DGRAM);
        assert_string_equal(c->listen[1].text, "82");
        assert_int_equal(c->listen[1].address.type, SOCK_STREAM);
        config_unref(c);

        c = load("[Service]\nExecStart=@W@\n[Socket]\n"
                 "ListenDatagram=53\nListenStream=80\nListenDatagram=54\nListenDatagram=\n");
        assert_int_equal(c->n_listen, 1);
        assert_string_equal(c->listen[0].text, "80");
        assert_int_equal(c->listen[0].address.type, SOCK_STREAM);
        config_unref(c);

        /* After a reset, the same address can be listed again. */
        c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=80\nListenStream=\nListenStream=80\n");
        assert_int_equal(c->n_listen, 1);
        config_unref(c);
}

static void test_backlog(void **state) {
        static const struct {
                const char *line;
                unsigned want;
        } cases[] = {
                { "Backlog=1", 1 },
                { "Backlog=128", 128 },
                { "Backlog=65535", 65535 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = load_socket_key(cases[i].line);
                assert_int_equal(c->backlog, cases[i].want);
                config_unref(c);
        }
}

static void test_fdname(void **state) {
        Config *c = load_socket_key("FileDescriptorName=http");
        char line[300];

        assert_string_equal(c->fdname, "http");
        config_unref(c);

        /* Printable ASCII, up to 255 characters. */
        c = load_socket_key("FileDescriptorName=a-b.c_d@e%f g");
        assert_string_equal(c->fdname, "a-b.c_d@e%f g");
        config_unref(c);
        snprintf(line, sizeof(line), "FileDescriptorName=%0255d", 0);
        c = load_socket_key(line);
        assert_int_equal(strlen(c->fdname), 255);
        config_unref(c);

        /* The default is the service name, or "rpsup" if that is not a valid name. */
        c = load_as("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n", "api");
        assert_string_equal(c->fdname, "api");
        assert_string_equal(c->service, "api");
        config_unref(c);
        c = load_as("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n", "a:b");
        assert_string_equal(c->fdname, "rpsup");
        config_unref(c);

        assert_true(fdname_is_valid("x"));
        assert_false(fdname_is_valid(""));
        assert_false(fdname_is_valid("a:b"));
        assert_false(fdname_is_valid("tab\there"));
        assert_false(fdname_is_valid("\x7f"));
        assert_false(fdname_is_valid("\xc3\xa9"));
}

static void test_ready_probe(void **state) {
        Config *c;

        c = load_service_key("ReadyProbe=tcp");
        assert_int_equal(c->probe, PROBE_TCP);
        assert_string_equal(c->probe_text, "tcp");
        assert_string_equal(probe_kind_to_string(c->probe), "tcp");
        config_unref(c);

        c = load_service_key("ReadyProbe=http:/healthz?full=1&x=%41");
        assert_int_equal(c->probe, PROBE_HTTP);
        assert_string_equal(c->probe_path, "/healthz?full=1&x=%41");
        assert_string_equal(c->probe_text, "http:/healthz?full=1&x=%41");
        assert_string_equal(probe_kind_to_string(c->probe), "http");
        config_unref(c);

        c = load_service_key("ReadyProbe=http:/");
        assert_string_equal(c->probe_path, "/");
        config_unref(c);

        /* A command line as in ExecStart=: quotes, escapes and %i now, $VARS when it runs. */
        c = load_service_key("ReadyProbe=exec:@W@ --service=%i \"a b\" $RPSUP_PROBE_ADDRESS");
        assert_int_equal(c->probe, PROBE_EXEC);
        assert_string_equal(probe_kind_to_string(c->probe), "exec");
        assert_int_equal(strv_length(c->probe_argv), 4);
        assert_string_equal(c->probe_argv[0], worker);
        assert_string_equal(c->probe_argv[1], "--service=web");
        assert_string_equal(c->probe_argv[2], "a b");
        assert_string_equal(c->probe_argv[3], "$RPSUP_PROBE_ADDRESS");
        assert_string_equal(c->probe_exec_path, worker);
        assert_null(c->probe_path);
        config_unref(c);

        /* The last assignment counts; an empty one means no probe. */
        c = load_service_key("ReadyProbe=exec:@W@\nReadyProbe=http:/x\nReadyProbe=tcp");
        assert_int_equal(c->probe, PROBE_TCP);
        assert_null(c->probe_argv);
        assert_null(c->probe_path);
        config_unref(c);
        c = load_service_key("ReadyProbe=http:/x\nReadyProbe=");
        assert_int_equal(c->probe, PROBE_NONE);
        assert_null(c->probe_text);
        assert_null(c->probe_path);
        config_unref(c);

        /* A connection probe needs a stream listener (the first is used); exec does not. */
        c = load("[Service]\nExecStart=@W@\nReadyProbe=tcp\n[Socket]\nListenDatagram=5353\nListenStream=/@D@/s\n");
        assert_int_equal(c->probe, PROBE_TCP);
        config_unref(c);
        c = load("[Service]\nExecStart=@W@\nReadyProbe=exec:@W@\n[Socket]\nListenDatagram=5353\n");
        assert_int_equal(c->probe, PROBE_EXEC);
        config_unref(c);

        assert_null(probe_kind_to_string(_PROBE_KIND_MAX));
        assert_string_equal(probe_kind_to_string(PROBE_NONE), "none");
}

static void test_probe_soak_canary_keys(void **state) {
        Config *c;

        c = load_service_key("ReadyProbeTimeoutSec=500ms\nReadyProbeIntervalSec=250ms\nReadyProbePasses=3\n"
                             "ReadyProbeFailures=5\nSoakSec=1min\nCanary=10%");
        assert_true(c->probe_timeout == 500 * USEC_PER_MSEC);
        assert_true(c->probe_interval == 250 * USEC_PER_MSEC);
        assert_int_equal(c->probe_passes, 3);
        assert_int_equal(c->probe_failures, 5);
        assert_true(c->soak == USEC_PER_MINUTE);
        assert_int_equal(c->canary, 10);
        config_unref(c);

        /* The bounds; SoakSec=0 is no soak; a canary with or without '%', empty for none. */
        c = load_service_key("ReadyProbeIntervalSec=10ms\nReadyProbePasses=100\nReadyProbeFailures=1\nSoakSec=0\n"
                             "Canary=100");
        assert_true(c->probe_interval == 10 * USEC_PER_MSEC);
        assert_int_equal(c->probe_passes, 100);
        assert_int_equal(c->probe_failures, 1);
        assert_true(c->soak == 0);
        assert_int_equal(c->canary, 100);
        config_unref(c);

        c = load_service_key("SoakSec=1h\nCanary=1\nCanary=");
        assert_true(c->soak == USEC_PER_HOUR);
        assert_int_equal(c->canary, 0);
        config_unref(c);
}

static void test_error_ready_probe(void **state) {
        char line[PROBE_LINE_LEN];

        check_service_key_error("ReadyProbe=udp", -EINVAL, "ReadyProbe",
                                "unknown probe \"udp\" (expected tcp, http:/PATH or exec:COMMAND");
        check_service_key_error("ReadyProbe=TCP", -EINVAL, "ReadyProbe", "unknown probe \"TCP\"");
        check_service_key_error("ReadyProbe=http:", -EINVAL, "ReadyProbe", "\"\" is not a path starting with '/'");
        check_service_key_error("ReadyProbe=http:healthz", -EINVAL, "ReadyProbe",
                                "\"healthz\" is not a path starting with '/'");
        check_service_key_error("ReadyProbe=http://localhost/", -EINVAL, "ReadyProbe",
                                "\"http://localhost/\" is a URL, not a path");
        check_service_key_error("ReadyProbe=http:/a b", -EINVAL, "ReadyProbe",
                                "may only hold printable ASCII without spaces");
        check_service_key_error("ReadyProbe=http:/caf\xc3\xa9", -EINVAL, "ReadyProbe", "printable ASCII");
        check_service_key_error("ReadyProbe=http:/a\x01b", -EINVAL, "ReadyProbe", "printable ASCII");
        check_service_key_error("ReadyProbe=http:/a#frag", -EINVAL, "ReadyProbe", "printable ASCII");
        snprintf(line, sizeof(line), "ReadyProbe=http:/%01024d", 0);
        check_service_key_error(line, -E2BIG, "ReadyProbe", "longer than 1024 bytes");
        snprintf(line, sizeof(line), "ReadyProbe=http:/%01023d", 0);
        config_unref(load_service_key(line));

        check_service_key_error("ReadyProbe=exec:", -EINVAL, "ReadyProbe", "empty command line");
        check_service_key_error("ReadyProbe=exec:@W@ \"x", -EINVAL, "ReadyProbe", "unterminated double quote");
        check_service_key_error("ReadyProbe=exec:-@W@", -EINVAL, "ReadyProbe", "command prefix \"-\"");
        check_service_key_error("ReadyProbe=exec:@W@ %z", -EINVAL, "ReadyProbe", "unknown specifier");
        /* Resolved as ExecStart= is, reported at the ReadyProbe= line. */
        check_service_key_error("ReadyProbe=exec:/nonexistent/probe", -ENOENT, "ReadyProbe",
                                "cannot execute \"/nonexistent/probe\"");
        check_service_key_error("ReadyProbe=exec:rel/probe", -EINVAL, "ReadyProbe",
                                "\"rel/probe\" must be an absolute path or a name found in $PATH");
        check_service_key_error("ReadyProbe=exec:@D@/noexec", -EACCES, "ReadyProbe", "cannot execute");
        check_service_key_error("ReadyProbe=exec:@D@/subdir", -EISDIR, "ReadyProbe", "cannot execute");

        /* tcp and http connect to the first ListenStream=: without one, it is an error of the probe's line. */
        check_error("[Service]\nExecStart=@W@\nReadyProbe=tcp\n[Socket]\nListenDatagram=5353\n", -EINVAL, 3,
                    "ReadyProbe", "a tcp probe connects to the first ListenStream=, and there is none");
        check_error("[Service]\nExecStart=@W@\nReadyProbe=http:/\nWorkers=1\n[Socket]\nListenDatagram=@d\n", -EINVAL,
                    3, "ReadyProbe", "a http probe connects to the first ListenStream=");
}

static void test_error_probe_soak_canary_keys(void **state) {
        static const char *const bad_counts[] = { "0", "101", "-1", "abc", "", "1.5" };

        for (size_t i = 0; i < ELEMENTSOF(bad_counts); i++) {
                char line[64], needle[64];

                snprintf(needle, sizeof(needle), "\"%s\" is not a count between 1 and 100", bad_counts[i]);
                snprintf(line, sizeof(line), "ReadyProbePasses=%s", bad_counts[i]);
                check_service_key_error(line, -EINVAL, "ReadyProbePasses", needle);
                snprintf(line, sizeof(line), "ReadyProbeFailures=%s", bad_counts[i]);
                check_service_key_error(line, -EINVAL, "ReadyProbeFailures", needle);
        }

        check_service_key_error("ReadyProbeTimeoutSec=0", -EINVAL, "ReadyProbeTimeoutSec", "must be greater than 0");
        check_service_key_error("ReadyProbeTimeoutSec=soon", -EINVAL, "ReadyProbeTimeoutSec", "is not a time span");
        check_service_key_error("ReadyProbeTimeoutSec=8d", -ERANGE, "ReadyProbeTimeoutSec", "7 day maximum");
        check_service_key_error("ReadyProbeIntervalSec=0", -EINVAL, "ReadyProbeIntervalSec", "must be greater than 0");
        check_service_key_error("ReadyProbeIntervalSec=9ms", -ERANGE, "ReadyProbeIntervalSec",
                                "\"9ms\" is shorter than the 10 ms minimum");
        check_service_key_error("ReadyProbeIntervalSec=infinity", -EINVAL, "ReadyProbeIntervalSec",
                                "is not a time span");

        check_service_key_error("SoakSec=61min", -ERANGE, "SoakSec", "\"61min\" is longer than the 1 hour maximum");
        check_service_key_error("SoakSec=-1", -EINVAL, "SoakSec", "is not a time span");
        check_service_key_error("SoakSec=auto", -EINVAL, "SoakSec", "is not a time span");

        static const char *const bad_canaries[] = { "0", "101", "0%", "%", "10%%", "10 %", "-5", "ten", "1.5%" };
        for (size_t i = 0; i < ELEMENTSOF(bad_canaries); i++) {
                char line[64], needle[96];

                snprintf(line, sizeof(line), "Canary=%s", bad_canaries[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a percentage between 1 and 100", bad_canaries[i]);
                check_service_key_error(line, -EINVAL, "Canary", needle);
        }

        /* A canary needs listeners per worker. */
        check_error("[Service]\nExecStart=@W@\nCanary=10\nStrategy=handoff\n[Socket]\nListenStream=8080\n", -EINVAL, 3,
                    "Canary", "needs listeners per worker (Strategy=drain or migrate)");
        config_unref(load_service_key("Strategy=handoff\nCanary=10\nCanary="));

        /* They belong in [Service]. */
        check_socket_key_error("SoakSec=5", -EINVAL, "SoakSec", "belongs in [Service], not [Socket]");
        check_socket_key_error("ReadyProbe=tcp", -EINVAL, "ReadyProbe", "belongs in [Service], not [Socket]");
}

static void test_steering_key(void **state) {
        Config *c;

        /* Round-robin by default; each policy by name; the last one given counts. */
        c = load_service_key("Workers=2");
        assert_int_equal(c->steering, STEERING_ROUND_ROBIN);
        config_unref(c);
        c = load_service_key("Steering=hash");
        assert_int_equal(c->steering, STEERING_HASH);
        config_unref(c);
        c = load_service_key("Steering=kernel\nStrategy=migrate");
        assert_int_equal(c->steering, STEERING_KERNEL);
        config_unref(c);
        c = load_service_key("Steering=kernel\nSteering=round-robin");
        assert_int_equal(c->steering, STEERING_ROUND_ROBIN);
        config_unref(c);
        /* The default goes with handoff (it means nothing there), as does kernel with a Canary= of 100 %. */
        config_unref(load_service_key("Strategy=handoff\nSteering=round-robin"));
        config_unref(load_service_key("Steering=kernel\nCanary=100"));

        for (SteeringPolicy p = 0; p < _STEERING_POLICY_MAX; p++)
                assert_int_equal(steering_policy_from_string(steering_policy_to_string(p)), p);
        assert_null(steering_policy_to_string(_STEERING_POLICY_MAX));
        assert_int_equal(steering_policy_from_string("Hash"), _STEERING_POLICY_INVALID);
}

static void test_error_steering_key(void **state) {
        static const char *const bad[] = { "roundrobin", "Hash", "random", "", "hash kernel", "kernel," };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char line[64], needle[128];

                snprintf(line, sizeof(line), "Steering=%s", bad[i]);
                snprintf(needle, sizeof(needle),
                         "unknown steering policy \"%s\" (expected round-robin, hash or kernel)", bad[i]);
                check_service_key_error(line, -EINVAL, "Steering", needle);
        }
        /* A policy of the steering program: not with handoff; kernel leaves no share to a canary. Reported at
         * the Steering= line. */
        check_error("[Service]\nExecStart=@W@\nSteering=hash\nStrategy=handoff\n[Socket]\nListenStream=8080\n",
                    -EINVAL, 3, "Steering", "hash needs listeners per worker (Strategy=drain or migrate)");
        check_error("[Service]\nExecStart=@W@\nStrategy=handoff\nSteering=kernel\n[Socket]\nListenStream=8080\n",
                    -EINVAL, 4, "Steering", "kernel needs listeners per worker");
        check_error("[Service]\nExecStart=@W@\nCanary=10\nSteering=kernel\n[Socket]\nListenStream=8080\n",
                    -EINVAL, 4, "Steering", "it excludes Canary=");
        check_socket_key_error("Steering=hash", -EINVAL, "Steering", "belongs in [Service], not [Socket]");
}

static void test_flow_keys(void **state) {
        Config *c;

        /* On by default, the table's default size; FlowIdleSec= 5 s. */
        c = load_service_key("Workers=2");
        assert_int_equal(c->flow_table_size, STEER_FLOWS_DEFAULT);
        assert_true(c->flow_idle == 5 * USEC_PER_SEC);
        config_unref(c);
        /* 0 turns it off; the largest table; the last one given counts. */
        c = load_service_key("FlowTableSize=0\nFlowIdleSec=500ms");
        assert_int_equal(c->flow_table_size, 0);
        assert_true(c->flow_idle == 500 * USEC_PER_MSEC);
        config_unref(c);
        c = load_service_key("FlowTableSize=4194304");
        assert_int_equal(c->flow_table_size, STEER_FLOWS_MAX);
        config_unref(c);
        c = load_service_key("FlowTableSize=1\nFlowTableSize=4096\nFlowIdleSec=1min");
        assert_int_equal(c->flow_table_size, 4096);
        assert_true(c->flow_idle == 60 * USEC_PER_SEC);
        config_unref(c);
        /* It means nothing with handoff, which is not an error (as for the other steering keys' defaults). */
        config_unref(load_service_key("Strategy=handoff\nFlowTableSize=1024"));
}

static void test_error_flow_keys(void **state) {
        static const char *const bad[] = { "-1", "4194305", "65536k", "", "1 2", "lots", "99999999999" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char line[64], needle[128];

                snprintf(line, sizeof(line), "FlowTableSize=%s", bad[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a number of flows between 0 (off) and 4194304", bad[i]);
                check_service_key_error(line, -EINVAL, "FlowTableSize", needle);
        }
        check_service_key_error("FlowIdleSec=0", -EINVAL, "FlowIdleSec", "must be greater than 0");
        check_service_key_error("FlowIdleSec=auto", -EINVAL, "FlowIdleSec", "is not a time span");
        check_service_key_error("FlowIdleSec=8d", -ERANGE, "FlowIdleSec", "day maximum");
        check_socket_key_error("FlowTableSize=1", -EINVAL, "FlowTableSize", "belongs in [Service], not [Socket]");
}

static void test_comments_and_blank_lines(void **state) {
        Config *c = load("# a comment\n"
                         "; another comment\n"
                         "\n"
                         "[Service]\n"
                         "   # indented comment\n"
                         "#Workers=7\n"
                         ";Workers=8\n"
                         "ExecStart=@W@\n"
                         "\n"
                         "\t\n"
                         "Workers=3\n"
                         "[Socket]\n"
                         "; ListenStream=9999\n"
                         "ListenStream=8080\n"
                         "# the end");

        assert_int_equal(c->workers, 3);
        assert_int_equal(c->n_listen, 1);
        config_unref(c);
}

static void test_continuation(void **state) {
        /* A trailing backslash continues the line; comment lines inside are skipped. */
        Config *c = load("[Service]\n"
                         "ExecStart=@W@ \\\n"
                         "    --one \\\n"
                         "# a comment inside\n"
                         "; and another\n"
                         "    --two\n"
                         "Environment=A=1 \\\n"
                         "  B=2\n"
                         "[Socket]\n"
                         "ListenStream=\\\n"
                         "8080\n");

        assert_int_equal(strv_length(c->exec_words), 3);
        assert_string_equal(c->exec_words[1], "--one");
        assert_string_equal(c->exec_words[2], "--two");
        assert_env(c, (const char *const[]) { "A=1", "B=2", NULL });
        assert_int_equal(c->n_listen, 1);
        config_unref(c);

        /* A continuation on the last line, without a final newline. */
        c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080 \\");
        assert_string_equal(c->listen[0].text, "8080");
        config_unref(c);

        /* Errors in a continued line name its first line, and later lines keep their numbers. */
        check_error("[Service]\nExecStart=@W@\nWorkers=\\\n# comment\n  zero\n[Socket]\nListenStream=8080\n",
                    -EINVAL, 3, "Workers", "\"zero\"");
        check_error("[Service]\nExecStart=@W@ \\\n  -x \\\n  -y\nStrategy=fastest\n[Socket]\nListenStream=8080\n",
                    -EINVAL, 5, "Strategy", "\"fastest\"");
}

static void test_whitespace(void **state) {
        Config *c = load("  [Service]  \n"
                         "ExecStart = @W@   \n"
                         "  Workers  =  4  \n"
                         "Strategy=\thandoff\n"
                         "[Socket]\r\n"
                         "ListenStream =8080\r\n"
                         "FileDescriptorName= http \r\n");

        assert_string_equal(c->exec_start, worker);
        assert_int_equal(c->workers, 4);
        assert_int_equal(c->strategy, STRATEGY_HANDOFF);
        assert_string_equal(c->listen[0].text, "8080");
        assert_string_equal(c->fdname, "http");
        config_unref(c);
}

static void test_ref_unref(void **state) {
        Config *c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n");

        assert_ptr_equal(config_ref(c), c);
        assert_int_equal(c->n_ref, 2);
        assert_null(config_unref(c));
        assert_int_equal(c->n_ref, 1);
        assert_null(config_unref(c));
        assert_null(config_ref(NULL));
        assert_null(config_unref(NULL));
}

/* Whether two configs ask for the same listening sockets: the same addresses and types in the same order
 * (the order of the fds in LISTEN_FDS), backlog and name. */
static bool sockets_equal(const Config *a, const Config *b) {
        if (a->n_listen != b->n_listen || a->backlog != b->backlog || !streq(a->fdname, b->fdname))
                return false;
        for (size_t i = 0; i < a->n_listen; i++)
                if (!socket_address_equal(&a->listen[i].address, &b->listen[i].address))
                        return false;
        return true;
}

static void test_sockets_equal(void **state) {
        static const char *const base = "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenDatagram=53\n";
        static const char *const same[] = {
                /* Other [Service] settings do not matter. */
                "[Service]\nExecStart=@W@ --other\nWorkers=3\nStrategy=handoff\n[Socket]\n"
                "ListenStream=8080\nListenDatagram=53\n",
                /* Other spellings of the same addresses, explicit defaults. */
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=[::]:8080\nListenDatagram=[::]:53\n"
                "Backlog=4096\nFileDescriptorName=web\n",
        };
        static const char *const different[] = {
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8081\nListenDatagram=53\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenStream=53\n",
                /* The order is the order of the fds in LISTEN_FDS. */
                "[Service]\nExecStart=@W@\n[Socket]\nListenDatagram=53\nListenStream=8080\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenDatagram=53\nListenStream=8081\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=127.0.0.1:8080\nListenDatagram=53\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenDatagram=53\nBacklog=128\n",
                "[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenDatagram=53\nFileDescriptorName=x\n",
        };
        Config *a = load(base), *b;

        assert_true(sockets_equal(a, a));
        for (size_t i = 0; i < ELEMENTSOF(same); i++) {
                b = load(same[i]);
                assert_true(sockets_equal(a, b));
                assert_true(sockets_equal(b, a));
                config_unref(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(different); i++) {
                b = load(different[i]);
                if (sockets_equal(a, b))
                        print_error("sockets of case %zu compare equal\n", i);
                assert_false(sockets_equal(a, b));
                assert_false(sockets_equal(b, a));
                config_unref(b);
        }

        /* The default name follows the service name. */
        b = load_as(base, "api");
        assert_false(sockets_equal(a, b));
        config_unref(b);
        config_unref(a);
}

/* ---- errors ---- */

static void test_error_syntax(void **state) {
        check_error("[Sevrice]\nExecStart=@W@\n", -EINVAL, 1, NULL, "unknown section [Sevrice]");
        check_error("[Service]\nExecStart=@W@\n[Sockets]\nListenStream=8080\n", -EINVAL, 3, NULL,
                    "unknown section [Sockets]");
        check_error("[Install]\nWantedBy=multi-user.target\n", -EINVAL, 1, NULL, "unknown section [Install]");
        check_error("Workers=2\n[Service]\nExecStart=@W@\n", -EINVAL, 1, NULL, "assignment outside of a section");
        check_error("# comment\n\nExecStart=@W@\n", -EINVAL, 3, NULL, "assignment outside of a section");
        check_error("[Service\nExecStart=@W@\n", -EINVAL, 1, NULL, "invalid section header \"[Service\"");
        check_error("[Service]\nExecStart=@W@\n[]\n", -EINVAL, 3, NULL, "invalid section header \"[]\"");
        check_error("[Service]\nExecStart=@W@\n[Socket] # x\n", -EINVAL, 3, NULL, "invalid section header");
        check_error("[Service]\nExecStart=@W@\nWorkers 4\n", -EINVAL, 3, NULL,
                    "\"Workers 4\" is not a KEY=VALUE assignment");
        check_error("[Service]\nExecStart=@W@\n=4\n", -EINVAL, 3, NULL, "assignment without a key");
}

static void test_error_unknown_key(void **state) {
        check_error("[Service]\nExecStart=@W@\n\n[Socket]\nListenStream=8080\nBacklogg=5\n", -EINVAL, 6, "Backlogg",
                    "unknown key in [Socket]");
        check_error("[Service]\nExecStart=@W@\nType=notify\n", -EINVAL, 3, "Type", "unknown key in [Service]");
        /* Keys are case-sensitive, as in systemd. */
        check_error("[Service]\nexecstart=@W@\n", -EINVAL, 2, "execstart", "unknown key in [Service]");
}

static void test_error_wrong_section(void **state) {
        check_error("[Service]\nExecStart=@W@\nListenStream=8080\n", -EINVAL, 3, "ListenStream",
                    "belongs in [Socket], not [Service]");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nWorkers=2\n", -EINVAL, 5, "Workers",
                    "belongs in [Service], not [Socket]");
}

static void test_error_exec_start_value(void **state) {
        check_service_key_error("ExecStart=", -EINVAL, "ExecStart", "empty command line");
        check_service_key_error("ExecStart=-@W@", -EINVAL, "ExecStart", "command prefix \"-\"");
        check_service_key_error("ExecStart=@W@ \"unterminated", -EINVAL, "ExecStart", "unterminated double quote");
        check_service_key_error("ExecStart=@W@ 'unterminated", -EINVAL, "ExecStart", "unterminated single quote");
        check_service_key_error("ExecStart=@W@ \\q", -EINVAL, "ExecStart", "\\q");
        check_service_key_error("ExecStart=@W@ %n", -EINVAL, "ExecStart", "%n");
}

static void test_error_exec_start_file(void **state) {
        check_error("[Service]\nExecStart=@D@/nonexistent --flag\n[Socket]\nListenStream=8080\n", -ENOENT, 2,
                    "ExecStart", "No such file or directory");
        check_error("[Service]\nWorkers=2\nExecStart=@D@/nonexistent\n[Socket]\nListenStream=8080\n", -ENOENT, 3,
                    "ExecStart", "cannot execute");
        check_error("[Service]\nExecStart=bin/worker\n[Socket]\nListenStream=8080\n", -EINVAL, 2, "ExecStart",
                    "\"bin/worker\" must be an absolute path or a name found in $PATH");
        check_error("[Service]\nExecStart=./worker\n[Socket]\nListenStream=8080\n", -EINVAL, 2, "ExecStart",
                    "must be an absolute path");
        /* Not executable (even root needs an x bit), or a directory. */
        check_error("[Service]\nExecStart=@D@/noexec\n[Socket]\nListenStream=8080\n", -EACCES, 2, "ExecStart",
                    "Permission denied");
        check_error("[Service]\nExecStart=@D@/subdir\n[Socket]\nListenStream=8080\n", -EISDIR, 2, "ExecStart",
                    "Is a directory");
        /* The line of the ExecStart= that counts: the last one. */
        check_error("[Service]\nExecStart=@W@\nExecStart=@D@/nonexistent\n[Socket]\nListenStream=8080\n", -ENOENT,
                    3, "ExecStart", "cannot execute");
}

static void test_error_workers(void **state) {
        static const char *const bad[] = { "zero", "0", "513", "-1", "4x", "", "1.5", "99999999999" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char line[64], needle[64];
                snprintf(line, sizeof(line), "Workers=%s", bad[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a worker count between 1 and 512", bad[i]);
                check_service_key_error(line, -EINVAL, "Workers", needle);
        }
}

static void test_error_strategy_ready_restart(void **state) {
        check_service_key_error("Strategy=fastest", -EINVAL, "Strategy", "unknown strategy \"fastest\"");
        check_service_key_error("Strategy=Auto", -EINVAL, "Strategy", "unknown strategy \"Auto\"");
        check_service_key_error("Strategy=", -EINVAL, "Strategy", "unknown strategy");
        check_service_key_error("Ready=immediately", -EINVAL, "Ready", "unknown readiness mode \"immediately\"");
        check_service_key_error("Restart=sometimes", -EINVAL, "Restart", "unknown restart mode \"sometimes\"");
        check_service_key_error("Restart=on-abort", -EINVAL, "Restart", "unknown restart mode \"on-abort\"");
}

static void test_error_time(void **state) {
        static const char *const keys[] = { "ReadyTimeoutSec", "StopTimeoutSec", "WatchdogSec", "StallSec", "DrainSec" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                static const char *const bad[] = { "soon", "5x", "-5", "", "1.s", "infinity" };
                char line[64], needle[64];

                for (size_t j = 0; j < ELEMENTSOF(bad); j++) {
                        snprintf(line, sizeof(line), "%s=%s", keys[i], bad[j]);
                        snprintf(needle, sizeof(needle), "\"%s\" is not a time span", bad[j]);
                        check_service_key_error(line, -EINVAL, keys[i], needle);
                }
                /* Longer than 7 days. */
                snprintf(line, sizeof(line), "%s=8d", keys[i]);
                check_service_key_error(line, -ERANGE, keys[i], "\"8d\" is longer than the 7 day maximum");
                snprintf(line, sizeof(line), "%s=7d 1us", keys[i]);
                check_service_key_error(line, -ERANGE, keys[i], "7 day maximum");
                /* Far too long, not wrapping around to something short. */
                snprintf(line, sizeof(line), "%s=18446744073709.9s", keys[i]);
                check_service_key_error(line, -EINVAL, keys[i], "is not a time span");
        }

        check_service_key_error("ReadyTimeoutSec=0", -EINVAL, "ReadyTimeoutSec", "must be greater than 0");
        check_service_key_error("ReadyTimeoutSec=0ms", -EINVAL, "ReadyTimeoutSec", "must be greater than 0");
        /* "auto" only where it has a meaning. */
        check_service_key_error("ReadyTimeoutSec=auto", -EINVAL, "ReadyTimeoutSec", "\"auto\" is not a time span");
        check_service_key_error("WatchdogSec=auto", -EINVAL, "WatchdogSec", "\"auto\" is not a time span");
        check_service_key_error("StallSec=sometimes", -EINVAL, "StallSec", "or auto");
        check_service_key_error("DrainSec=Auto", -EINVAL, "DrainSec", "\"Auto\" is not a time span");
}

static void test_error_kill_signal(void **state) {
        check_service_key_error("KillSignal=SIGFOO", -EINVAL, "KillSignal", "unknown signal \"SIGFOO\"");
        check_service_key_error("KillSignal=0", -EINVAL, "KillSignal", "unknown signal \"0\"");
        check_service_key_error("KillSignal=sigint", -EINVAL, "KillSignal", "unknown signal \"sigint\"");
        check_service_key_error("KillSignal=", -EINVAL, "KillSignal", "unknown signal");
        check_service_key_error("KillSignal=SIGKILL", -EINVAL, "KillSignal", "SIGKILL cannot start a graceful stop");
        check_service_key_error("KillSignal=KILL", -EINVAL, "KillSignal", "SIGKILL cannot");
        check_service_key_error("KillSignal=9", -EINVAL, "KillSignal", "SIGKILL cannot");
        check_service_key_error("KillSignal=SIGSTOP", -EINVAL, "KillSignal", "SIGSTOP cannot");
}

static void test_error_kill_signal_reserved(void **state) {
        char line[64];

        /* Regression: KillSignal=32 was accepted. 32..SIGRTMIN-1 belong to glibc. */
        for (int sig = 32; sig < SIGRTMIN; sig++) {
                snprintf(line, sizeof(line), "KillSignal=%d", sig);
                check_service_key_error(line, -EINVAL, "KillSignal", "is reserved by the C library");
        }
        check_service_key_error("KillSignal=32", -EINVAL, "KillSignal", "signal 32 is reserved by the C library");
        snprintf(line, sizeof(line), "KillSignal=%d", SIGRTMAX + 1);
        check_service_key_error(line, -EINVAL, "KillSignal", "");
}

static void test_error_environment(void **state) {
        check_service_key_error("Environment=1A=b", -EINVAL, "Environment",
                                "\"1A=b\" is not a valid KEY=VALUE assignment");
        check_service_key_error("Environment=A=1 NOEQUALS", -EINVAL, "Environment", "\"NOEQUALS\" is not a valid");
        check_service_key_error("Environment==x", -EINVAL, "Environment", "\"=x\" is not a valid");
        check_service_key_error("Environment=A-B=1", -EINVAL, "Environment", "\"A-B=1\" is not a valid");
        check_service_key_error("Environment=\"A=unterminated", -EINVAL, "Environment", "unterminated double quote");
        check_service_key_error("Environment=A=\\q", -EINVAL, "Environment", "\\q");
        check_service_key_error("Environment=A=%z", -EINVAL, "Environment", "%z");

        /* At most 512 assignments. */
        char *line = strdup("Environment="), *more = NULL;
        assert_non_null(line);
        for (unsigned i = 0; i <= 512; i++) {
                assert_true(asprintf(&more, "%s V%u=%u", line, i, i) > 0);
                free(line);
                line = more;
        }
        check_service_key_error(line, -E2BIG, "Environment", "more than 512 assignments");
        free(line);
}

static void test_error_user_group(void **state) {
        check_error("[Service]\nExecStart=@W@\nUser=no-such-user-rpsup\n[Socket]\nListenStream=8080\n", 0, 3, "User",
                    "no such user \"no-such-user-rpsup\"");
        check_error("[Service]\nExecStart=@W@\nGroup=no-such-group-rpsup\n[Socket]\nListenStream=8080\n", 0, 3,
                    "Group", "no such group \"no-such-group-rpsup\"");
        check_error("[Service]\nUser=no-such-user-rpsup\nExecStart=@W@\n[Socket]\nListenStream=8080\n", 0, 2, "User",
                    "no such user");

        /* Regression: these passed, and Group=4294967295 alone ran the worker as group 0. systemd refuses
         * (uid_t) -1, the 16-bit -1, and all-digit strings that are not valid ids. */
        static const char *const bad_ids[] = { "4294967295", "65535", "4294967296", "0100", "-1", "99999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                char line[64], needle[96];
                snprintf(line, sizeof(line), "User=%s", bad_ids[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a valid user name or numeric ID", bad_ids[i]);
                check_service_key_error(line, -EINVAL, "User", needle);
                snprintf(line, sizeof(line), "Group=%s", bad_ids[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a valid group name or numeric ID", bad_ids[i]);
                check_service_key_error(line, -EINVAL, "Group", needle);
        }
        static const char *const bad_names[] = { "a:b", "a/b", ".", "..", "a\tb", "-5" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                char line[64];
                snprintf(line, sizeof(line), "User=%s", bad_names[i]);
                check_service_key_error(line, -EINVAL, "User", "is not a valid user name or numeric ID");
                snprintf(line, sizeof(line), "Group=%s", bad_names[i]);
                check_service_key_error(line, -EINVAL, "Group", "is not a valid group name or numeric ID");
        }

        if (geteuid() != 0) {
                /* Only root can switch to another user. */
                check_error("[Service]\nExecStart=@W@\nUser=0\n[Socket]\nListenStream=8080\n", -EPERM, 3, NULL,
                            "User=/Group=: switching to 0 needs rpsupd to run as root");
                if (getgid() != 0)
                        check_error("[Service]\nExecStart=@W@\n\nGroup=0\n[Socket]\nListenStream=8080\n", -EPERM, 4,
                                    NULL, "needs rpsupd to run as root");
        }
}

static void test_error_capabilities(void **state) {
        uint64_t permitted;

        static const char *const unknown[][2] = {
                { "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_FLY", "CAP_FLY" },
                { "CapabilityBoundingSet=NET_BIND_SERVICE", "NET_BIND_SERVICE" },
                { "CapabilityBoundingSet=CAP_KILL,CAP_CHOWN", "CAP_KILL,CAP_CHOWN" },
                { "CapabilityBoundingSet=CAP_CHOWN1", "CAP_CHOWN1" },
                { "CapabilityBoundingSet=~ ~CAP_CHOWN", "~CAP_CHOWN" },
                { "CapabilityBoundingSet=12", "12" },
                { "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_BIND_SERVICES", "CAP_NET_BIND_SERVICES" },
        };
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                char needle[128];
                snprintf(needle, sizeof(needle), "unknown capability \"%s\"", unknown[i][1]);
                check_service_key_error(unknown[i][0], -EINVAL,
                                        strncmp(unknown[i][0], "Ambient", 7) == 0 ? "AmbientCapabilities" :
                                                                                  "CapabilityBoundingSet",
                                        needle);
        }
        check_service_key_error("NoNewPrivileges=maybe", -EINVAL, "NoNewPrivileges", "\"maybe\" is not a boolean");
        check_service_key_error("NoNewPrivileges=", -EINVAL, "NoNewPrivileges", "is not a boolean");
        /* CapabilityBoundingSet= given leaves an ambient capability out: said where both are. */
        check_error("[Service]\nExecStart=@W@\nCapabilityBoundingSet=CAP_KILL\nAmbientCapabilities=CAP_NET_RAW\n"
                    "[Socket]\nListenStream=8080\n", -EINVAL, 4, "AmbientCapabilities",
                    "CAP_NET_RAW is not in CapabilityBoundingSet= (line 3)");

        assert_int_equal(capability_get_own(NULL, &permitted, NULL), 0);
        if (!(permitted & CAPABILITY_MASK(CAP_NET_BIND_SERVICE)))
                check_service_key_error("AmbientCapabilities=CAP_NET_BIND_SERVICE", -EPERM, "AmbientCapabilities",
                                        "rpsupd does not have CAP_NET_BIND_SERVICE itself");
}

static void test_error_working_directory(void **state) {
        check_service_key_error("WorkingDirectory=srv/web", -EINVAL, "WorkingDirectory",
                                "\"srv/web\" is not an absolute path");
        check_service_key_error("WorkingDirectory=-srv/web", -EINVAL, "WorkingDirectory",
                                "\"srv/web\" is not an absolute path");
        check_service_key_error("WorkingDirectory=~", -EINVAL, "WorkingDirectory", "\"~\" is not an absolute path");
}

static void test_error_listen(void **state) {
        static const char *const bad[] = {
                "ListenStream=0", "ListenStream=70000", "ListenStream=127.0.0.1", "ListenStream=localhost:80",
                "ListenStream=[::1:80", "ListenStream=256.1.1.1:80", "ListenStream=web.sock", "ListenDatagram=0",
                "ListenDatagram=:53",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *v = strchr(bad[i], '=') + 1;
                char key[32], needle[64];

                snprintf(key, sizeof(key), "%.*s", (int) (v - bad[i] - 1), bad[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not an address", v);
                check_socket_key_error(bad[i], -EINVAL, key, needle);
        }
        check_socket_key_error("ListenStream=[fe80::1%nosuchif0]:80", -ENODEV, "ListenStream",
                               "no such network interface");

        /* The same address twice, however written. */
        check_socket_key_error("ListenStream=8080", -EEXIST, "ListenStream", "\"8080\" is listed twice");
        check_socket_key_error("ListenStream=[::]:8080", -EEXIST, "ListenStream", "\"[::]:8080\" is listed twice");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenDatagram=@x\nListenStream=@x\nListenDatagram=@x\n",
                    -EEXIST, 6, "ListenDatagram", "listed twice");

        /* At most 32 addresses. */
        char *text = strdup("[Service]\nExecStart=@W@\n[Socket]\n"), *more = NULL;
        assert_non_null(text);
        for (unsigned i = 0; i < 33; i++) {
                assert_true(asprintf(&more, "%sListenStream=%u\n", text, 10000 + i) > 0);
                free(text);
                text = more;
        }
        check_error(text, -E2BIG, 3 + 33, "ListenStream", "more than 32 listening addresses");
        free(text);
}

static void test_listen_paths(void **state) {
        char want[PATH_LEN];
        Config *c;

        /* Socket paths are simplified: one file, one spelling. The text stays as written. */
        c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=/@D@//./a.sock/\n");
        snprintf(want, sizeof(want), "%s/a.sock", tmpdir);
        assert_string_equal(c->listen[0].address.un.sun_path, want);
        snprintf(want, sizeof(want), "/%s//./a.sock/", tmpdir);
        assert_string_equal(c->listen[0].text, want);
        config_unref(c);

        /* Same port, other families: the kernel decides (it binds both with SO_REUSEPORT), as in systemd. */
        c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenStream=0.0.0.0:8080\n"
                 "ListenStream=[::1]:8080\nListenStream=127.0.0.1:8080\n");
        assert_int_equal(c->n_listen, 4);
        config_unref(c);

        /* An abstract name may be a stream and a datagram socket at once (the kernel keeps them apart). */
        c = load("[Service]\nExecStart=@W@\n[Socket]\nListenStream=@rpsup-x\nListenDatagram=@rpsup-x\n");
        assert_int_equal(c->n_listen, 2);
        config_unref(c);
}

static void test_error_listen_paths(void **state) {
        /* Regression: these were two addresses, and binding the second replaced the first's socket file. */
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=/tmp/s.sock\nListenStream=//tmp/s.sock\n",
                    -EEXIST, 5, "ListenStream", "\"//tmp/s.sock\" is listed twice (line 4: ListenStream=/tmp/s.sock)");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=/tmp/s.sock\n\nListenStream=/tmp/./s.sock\n",
                    -EEXIST, 6, "ListenStream", "(line 4: ListenStream=/tmp/s.sock)");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=/tmp/s.sock\nListenStream=/tmp/s.sock/\n",
                    -EEXIST, 5, "ListenStream", "is listed twice");
        /* One socket file cannot be a stream and a datagram socket. */
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenDatagram=/tmp/s.sock\nListenStream=/tmp//s.sock\n",
                    -EEXIST, 5, "ListenStream", "(line 4: ListenDatagram=/tmp/s.sock)");
        /* Written differently, the same address. */
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=[::]:8080\nListenStream=8080\n", -EEXIST, 5,
                    "ListenStream", "\"8080\" is listed twice (line 4: ListenStream=[::]:8080)");
        /* ".." would need the file system to resolve. */
        check_socket_key_error("ListenStream=/tmp/../s.sock", -EINVAL, "ListenStream",
                               "\"/tmp/../s.sock\": a socket path may not contain \"..\"");
        check_socket_key_error("ListenDatagram=/..", -EINVAL, "ListenDatagram", "may not contain \"..\"");
}

static void test_error_backlog(void **state) {
        static const char *const bad[] = { "0", "70000", "65536", "-1", "abc", "" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char line[64], needle[64];
                snprintf(line, sizeof(line), "Backlog=%s", bad[i]);
                snprintf(needle, sizeof(needle), "\"%s\" is not a backlog between 1 and 65535", bad[i]);
                check_socket_key_error(line, -EINVAL, "Backlog", needle);
        }
}

static void test_error_fdname(void **state) {
        char line[300];

        check_socket_key_error("FileDescriptorName=a:b", -EINVAL, "FileDescriptorName", "\"a:b\" is not a valid name");
        check_socket_key_error("FileDescriptorName=", -EINVAL, "FileDescriptorName", "is not a valid name");
        check_socket_key_error("FileDescriptorName=caf\xc3\xa9", -EINVAL, "FileDescriptorName", "is not a valid name");
        snprintf(line, sizeof(line), "FileDescriptorName=%0256d", 0);
        check_socket_key_error(line, -EINVAL, "FileDescriptorName", "is not a valid name");
}

static void test_error_missing_keys(void **state) {
        check_error("[Socket]\nListenStream=8080\n", -EINVAL, 0, NULL, "[Service] has no ExecStart=; it is required");
        check_error("", -EINVAL, 0, NULL, "has no ExecStart=");
        check_error("# nothing\n", -EINVAL, 0, NULL, "has no ExecStart=");
        check_error("[Service]\nExecStart=@W@\n", -EINVAL, 0, NULL,
                    "[Socket] has no ListenStream= or ListenDatagram=; at least one is required");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\nListenStream=\n", -EINVAL, 0, NULL,
                    "has no ListenStream=");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nBacklog=5\n", -EINVAL, 0, NULL, "has no ListenStream=");
}

static void check_load_fails(const char *path, int want_r, const char *want_error) {
        char *error = NULL;
        Config *c = NULL;
        int r = config_load(path, "web", &c, &error);

        if (r != want_r || !error || !streq(error, want_error))
                print_error("config_load(\"%s\") = %d (expected %d): \"%s\", expected \"%s\"\n", path, r, want_r,
                            error ?: "(none)", want_error);
        assert_int_equal(r, want_r);
        assert_null(c);
        assert_string_equal(error, want_error);
        free(error);
}

static void test_error_file(void **state) {
        char path[PATH_LEN], want[PATH_LEN + 64];

        snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
        snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
        check_load_fails(path, -ENOENT, want);

        /* Regression: a directory said "cannot read", without the reason. */
        snprintf(want, sizeof(want), "%s: is a directory, not a regular file", tmpdir);
        check_load_fails(tmpdir, -EISDIR, want);

        /* Regression: reading a FIFO blocked until something wrote to it. */
        struct timespec t0, t1;
        snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
        assert_int_equal(mkfifo(path, 0644), 0);
        snprintf(want, sizeof(want), "%s: is a FIFO, not a regular file", path);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        check_load_fails(path, -EBADFD, want);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 2);
        assert_int_equal(unlink(path), 0);

        /* A socket cannot even be opened: the message says what it is. */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        snprintf(path, sizeof(path), "%s/socket.conf", tmpdir);
        assert_true(strlen(path) < sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        snprintf(want, sizeof(want), "%s: is a socket, not a regular file", path);
        check_load_fails(path, -EBADFD, want);
        close(fd);
        assert_int_equal(unlink(path), 0);

        /* A device. */
        check_load_fails("/dev/null", -EBADFD, "/dev/null: is a character device, not a regular file");

        /* The path is shown in status replies, which carry UTF-8 only. */
        snprintf(path, sizeof(path), "%s/caf\xe9.conf", tmpdir);
        snprintf(want, sizeof(want), "%s/caf\xef\xbf\xbd.conf: the path is not valid UTF-8", tmpdir);
        check_load_fails(path, -EINVAL, want);
}

static void test_bom(void **state) {
        /* Regression: a byte order mark was "assignment outside of a section". systemd skips it. */
        Config *c = load("\xef\xbb\xbf[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n");
        assert_int_equal(c->n_listen, 1);
        config_unref(c);
        /* Only at the start of the file. */
        check_error("[Service]\nExecStart=@W@\n\xef\xbb\xbf[Socket]\nListenStream=8080\n", -EINVAL, 3, NULL,
                    "\"\xef\xbb\xbf[Socket]\" is not a KEY=VALUE assignment");
}

static void test_error_utf8(void **state) {
        char *error = NULL, *t;
        Config *c = NULL;

        /* Values end up in D-Bus replies: a line that is not UTF-8 is refused, with its line. */
        check_error("[Service]\nExecStart=@W@\nEnvironment=A=caf\xe9\n[Socket]\nListenStream=8080\n", -EINVAL, 3,
                    NULL, "not valid UTF-8 (byte 0xe9)");
        check_error("[Service]\nExecStart=@W@\n[Socket]\nListenStream=/tmp/\xff.sock\n", -EINVAL, 4, NULL,
                    "not valid UTF-8");
        /* ... but not a comment. */
        c = load("# caf\xe9\n[Service]\nExecStart=@W@\n; \xff\n[Socket]\nListenStream=8080\n");
        c = config_unref(c);

        /* Escapes can make any byte: a message that quotes the value is still valid UTF-8. */
        t = expand("[Service]\nExecStart=@W@\nEnvironment=\\xff=1\n[Socket]\nListenStream=8080\n");
        write_file(conf, t, strlen(t), 0644);
        free(t);
        assert_int_equal(config_load(conf, "web", &c, &error), -EINVAL);
        assert_non_null(error);
        assert_true(utf8_is_valid(error));
        assert_non_null(strstr(error, "\"\xef\xbf\xbd=1\" is not a valid KEY=VALUE assignment"));
        free(error);
        error = NULL;

        /* The executable's path is part of failure messages. */
        char path[PATH_LEN];
        snprintf(path, sizeof(path), "%s/caf\xe9", tmpdir);
        write_file(path, "#!/bin/sh\nexit 0\n", 17, 0755);
        check_error("[Service]\nExecStart=@D@/caf\\xe9\n[Socket]\nListenStream=8080\n", -EINVAL, 2, "ExecStart",
                    "is not valid UTF-8");
        assert_int_equal(unlink(path), 0);

        /* And so is the service name (%i). */
        t = expand("[Service]\nExecStart=@W@\n[Socket]\nListenStream=8080\n");
        write_file(conf, t, strlen(t), 0644);
        free(t);
        assert_int_equal(config_load(conf, "w\xe9" "b", &c, &error), -EINVAL);
        assert_null(c);
        assert_non_null(strstr(error, "the service name \"w\xef\xbf\xbd" "b\" is not valid UTF-8"));
        free(error);
}

static void test_parse_buffer(void **state) {
        char *t = expand("[Service]\nExecStart=@W@\nWorkers=3\n[Socket]\nListenStream=8080\n");
        size_t n = strlen(t);
        char *copy = malloc(n), *error = NULL;
        Config *c = NULL;

        /* Not NUL-terminated: exactly `size` bytes are read. */
        assert_non_null(copy);
        memcpy(copy, t, n);
        assert_int_equal(config_parse_buffer(copy, n, "in-memory", "web", &c, &error), 0);
        assert_null(error);
        assert_int_equal(c->workers, 3);
        assert_string_equal(c->path, "in-memory");
        config_unref(c);
        c = NULL;

        /* The path only names the config in messages. */
        assert_int_equal(config_parse_buffer(copy, n - 1 - strlen("ListenStream=8080"), "mem\xff", "web", &c, &error),
                         -EINVAL);
        assert_null(c);
        assert_string_equal(error, "mem\xef\xbf\xbd: [Socket] has no ListenStream= or ListenDatagram=; at least "
                            "one is required");
        free(error);
        error = NULL;

        assert_int_equal(config_parse_buffer("", 0, "empty", "web", &c, &error), -EINVAL);
        assert_string_equal(error, "empty: [Service] has no ExecStart=; it is required");
        free(error);
        error = NULL;

        assert_int_equal(config_parse_buffer(t, 1024 * 1024 + 1, "big", "web", &c, &error), -EFBIG);
        assert_string_equal(error, "big: larger than 1048576 bytes");
        free(error);
        free(copy);
        free(t);
}

static void test_error_nul_byte(void **state) {
        static const char text[] = "[Service]\nExecStart=/bin/true\0 --evil\n[Socket]\nListenStream=8080\n";

        check_error_text(text, sizeof(text) - 1, -EINVAL, 0, NULL, "contains a NUL byte");
}

static void test_error_long_lines(void **state) {
        static char t[2 * LINE_LIMIT + 512];
        char *p;

        /* Exactly the limit is fine (here a comment)... */
        p = t + sprintf(t, "[Service]\nExecStart=%s\n#", worker);
        memset(p, 'x', LINE_LIMIT - 1);
        p += LINE_LIMIT - 1;
        p += sprintf(p, "\n[Socket]\nListenStream=8080\n");
        write_file(conf, t, (size_t) (p - t), 0644);
        {
                Config *c = NULL;
                char *error = NULL;
                assert_int_equal(config_load(conf, "web", &c, &error), 0);
                assert_null(error);
                config_unref(c);
        }

        /* ...one more byte is not. */
        p = t + sprintf(t, "[Service]\nExecStart=%s\n\nExecStart=%s ", worker, worker);
        memset(p, 'x', LINE_LIMIT);
        p += LINE_LIMIT;
        p += sprintf(p, "\n[Socket]\nListenStream=8080\n");
        check_error_text(t, (size_t) (p - t), -E2BIG, 4, NULL, "line longer than 65536 bytes");

        /* Nor a continued line that grows past it; the error names its first line. */
        p = t + sprintf(t, "[Service]\nExecStart=%s\nEnvironment=A=", worker);
        memset(p, 'x', LINE_LIMIT / 2 + 8);
        p += LINE_LIMIT / 2 + 8;
        p += sprintf(p, " \\\nB=");
        memset(p, 'y', LINE_LIMIT / 2 + 8);
        p += LINE_LIMIT / 2 + 8;
        p += sprintf(p, "\n[Socket]\nListenStream=8080\n");
        check_error_text(t, (size_t) (p - t), -E2BIG, 3, NULL, "continued line longer than 65536 bytes");
}

static void test_error_file_too_large(void **state) {
        size_t n = 1024 * 1024 + 64;
        char *t = malloc(n);

        assert_non_null(t);
        /* Comment lines, so that only the size is wrong. */
        for (size_t i = 0; i < n; i += 64) {
                memset(t + i, ' ', 63);
                t[i] = '#';
                t[i + 63] = '\n';
        }
        check_error_text(t, n, -EFBIG, 0, NULL, "larger than 1048576 bytes");
        free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_exec_start),
                cmocka_unit_test(test_exec_start_path_lookup),
                cmocka_unit_test(test_workers),
                cmocka_unit_test(test_strategy),
                cmocka_unit_test(test_ready),
                cmocka_unit_test(test_time_keys),
                cmocka_unit_test(test_kill_signal),
                cmocka_unit_test(test_kill_signal_realtime),
                cmocka_unit_test(test_restart),
                cmocka_unit_test(test_environment),
                cmocka_unit_test(test_user_group),
                cmocka_unit_test(test_capabilities),
                cmocka_unit_test(test_working_directory),
                cmocka_unit_test(test_listen),
                cmocka_unit_test(test_listen_reset),
                cmocka_unit_test(test_backlog),
                cmocka_unit_test(test_fdname),
                cmocka_unit_test(test_ready_probe),
                cmocka_unit_test(test_probe_soak_canary_keys),
                cmocka_unit_test(test_error_ready_probe),
                cmocka_unit_test(test_error_probe_soak_canary_keys),
                cmocka_unit_test(test_comments_and_blank_lines),
                cmocka_unit_test(test_continuation),
                cmocka_unit_test(test_whitespace),
                cmocka_unit_test(test_ref_unref),
                cmocka_unit_test(test_sockets_equal),
                cmocka_unit_test(test_error_syntax),
                cmocka_unit_test(test_error_unknown_key),
                cmocka_unit_test(test_error_wrong_section),
                cmocka_unit_test(test_error_exec_start_value),
                cmocka_unit_test(test_error_exec_start_file),
                cmocka_unit_test(test_error_workers),
                cmocka_unit_test(test_error_strategy_ready_restart),
                cmocka_unit_test(test_error_time),
                cmocka_unit_test(test_error_kill_signal),
                cmocka_unit_test(test_error_kill_signal_reserved),
                cmocka_unit_test(test_error_environment),
                cmocka_unit_test(test_error_user_group),
                cmocka_unit_test(test_error_capabilities),
                cmocka_unit_test(test_error_working_directory),
                cmocka_unit_test(test_error_listen),
                cmocka_unit_test(test_listen_paths),
                cmocka_unit_test(test_error_listen_paths),
                cmocka_unit_test(test_error_backlog),
                cmocka_unit_test(test_error_fdname),
                cmocka_unit_test(test_error_missing_keys),
                cmocka_unit_test(test_error_file),
                cmocka_unit_test(test_bom),
                cmocka_unit_test(test_error_utf8),
                cmocka_unit_test(test_parse_buffer),
                cmocka_unit_test(test_steering_key),
                cmocka_unit_test(test_error_steering_key),
                cmocka_unit_test(test_flow_keys),
                cmocka_unit_test(test_error_flow_keys),
                cmocka_unit_test(test_error_nul_byte),
                cmocka_unit_test(test_error_long_lines),
                cmocka_unit_test(test_error_file_too_large),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
