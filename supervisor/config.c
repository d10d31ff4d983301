/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capability-util.h"
#include "config.h"
#include "config-exec.h"
#include "fd-util.h"
#include "rpsup-limits.h"
#include "steer-shared.h"
#include "string-util.h"
#include "parse-util.h"
#include "path-util.h"
#include "strv.h"
#include "user-util.h"
#include "utf8.h"

static const char *const ready_names[_READY_MAX] = {
        [READY_NOTIFY] = "notify",
        [READY_EXEC] = "exec",
};
static const char *const restart_names[_RESTART_MAX] = {
        [RESTART_NO] = "no",
        [RESTART_ON_FAILURE] = "on-failure",
        [RESTART_ALWAYS] = "always",
};
static const char *const probe_names[_PROBE_KIND_MAX] = {
        [PROBE_NONE] = "none",
        [PROBE_TCP] = "tcp",
        [PROBE_HTTP] = "http",
        [PROBE_EXEC] = "exec",
};

static int lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

const char *restart_mode_to_string(RestartMode m) {
        return m >= 0 && m < _RESTART_MAX ? restart_names[m] : NULL;
}

const char *probe_kind_to_string(ProbeKind k) {
        return k >= 0 && k < _PROBE_KIND_MAX ? probe_names[k] : NULL;
}

/* ---- the parsed object ---- */

static void listen_specs_free(ListenSpec *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i].text);
        free(l);
}

static Config *config_free(Config *c) {
        free(c->path);
        free(c->service);
        free(c->source);
        free(c->exec_start);
        strv_free(c->exec_words);
        free(c->exec_path);
        strv_free(c->environment);
        free(c->user);
        free(c->group);
        free(c->user_name);
        free(c->groups);
        free(c->home);
        free(c->shell);
        free(c->working_directory);
        free(c->probe_text);
        free(c->probe_path);
        strv_free(c->probe_argv);
        free(c->probe_exec_path);
        listen_specs_free(c->listen, c->n_listen);
        free(c->fdname);
        free(c);
        return NULL;
}

Config *config_ref(Config *c) {
        if (c)
                c->n_ref++;
        return c;
}

Config *config_unref(Config *c) {
        if (!c)
                return NULL;
        if (--c->n_ref > 0)
                return NULL;
        return config_free(c);
}

/* ---- parsing ---- */

typedef struct ParseContext {
        const char *path;
        unsigned line;
        const char *section;
        const char *key;
        char *error;
        /* Where ExecStart=, User=, Group=, ReadyProbe= and Canary= were last set, for the errors of validate(). */
        unsigned exec_start_line, user_line, group_line, probe_line, canary_line, steering_line;
        /* Where CapabilityBoundingSet= and AmbientCapabilities= were last set; 0: not set (or reset). */
        unsigned bounding_line, ambient_line;
} ParseContext;

/* *ret_error = the formatted message. It quotes values, which may hold any byte after unescaping (\xff):
 * it is made valid UTF-8, as it may become a D-Bus error message (a failed Reload). */
static void set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static void set_error(char **ret_error, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;

        va_start(ap, fmt);
        m = strdup_vprintf(fmt, ap);
        va_end(ap);

        free(*ret_error);
        *ret_error = m ? utf8_sanitize_dup(m, 0) : NULL;
}

static int fail(ParseContext *ctx, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(ParseContext *ctx, int r, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        what = strdup_vprintf(fmt, ap);
        va_end(ap);

        /* Line 0: a whole-file problem, which names the file only. */
        if (ctx->line > 0)
                set_error(&ctx->error, "%s:%u: %s%s%s", ctx->path, ctx->line, ctx->key ?: "", ctx->key ? "=: " : "",
                          what ?: "out of memory");
        else
                set_error(&ctx->error, "%s: %s%s%s", ctx->path, ctx->key ?: "", ctx->key ? "=: " : "",
                          what ?: "out of memory");
        return r;
}

typedef int (*KeyParser)(Config *c, ParseContext *ctx, const char *value);

static int parse_exec_start(Config *c, ParseContext *ctx, const char *v) {
        _cleanup_strv_free_ char **words = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = exec_line_split(v, c->service, &words, &err);
        if (r < 0)
                return fail(ctx, r, "%s", err ?: "cannot parse command line");
        free(c->exec_start);
        c->exec_start = strdup(v);
        if (!c->exec_start)
                return fail(ctx, -ENOMEM, "out of memory");
        strv_free(c->exec_words);
        c->exec_words = TAKE_PTR(words);
        ctx->exec_start_line = ctx->line;
        return 0;
}

static int parse_workers(Config *c, ParseContext *ctx, const char *v) {
        unsigned n;

        if (parse_uint(v, &n) < 0 || n < 1 || n > WORKERS_MAX)
                return fail(ctx, -EINVAL, "\"%s\" is not a worker count between 1 and %u", v, WORKERS_MAX);
        c->workers = n;
        return 0;
}

static int parse_strategy(Config *c, ParseContext *ctx, const char *v) {
        StrategyKind s = strategy_kind_from_string(v);

        if (s < 0)
                return fail(ctx, -EINVAL, "unknown strategy \"%s\" (expected auto, handoff, drain or migrate)", v);
        c->strategy = s;
        return 0;
}

static int parse_steering(Config *c, ParseContext *ctx, const char *v) {
        SteeringPolicy p = steering_policy_from_string(v);

        if (p < 0)
                return fail(ctx, -EINVAL, "unknown steering policy \"%s\" (expected round-robin, hash or kernel)", v);
        c->steering = p;
        ctx->steering_line = ctx->line;
        return 0;
}

static int parse_ready(Config *c, ParseContext *ctx, const char *v) {
        int m = lookup(ready_names, _READY_MAX, v);

        if (m < 0)
                return fail(ctx, -EINVAL, "unknown readiness mode \"%s\" (expected notify or exec)", v);
        c->ready = (ReadyMode) m;
        return 0;
}

static int parse_restart(Config *c, ParseContext *ctx, const char *v) {
        int m = lookup(restart_names, _RESTART_MAX, v);

        if (m < 0)
                return fail(ctx, -EINVAL, "unknown restart mode \"%s\" (expected on-failure, always or no)", v);
        c->restart = (RestartMode) m;
        return 0;
}

static int parse_time(ParseContext *ctx, const char *v, bool allow_auto, bool allow_zero, usec_t *ret) {
        usec_t t;

        if (allow_auto && streq(v, "auto")) {
                *ret = USEC_INFINITY;
                return 0;
        }
        if (parse_timespan(v, USEC_PER_SEC, &t) < 0 || t == USEC_INFINITY)
                return fail(ctx, -EINVAL, "\"%s\" is not a time span (e.g. 30, 30s, 500ms, 2min%s)", v,
                            allow_auto ? " or auto" : "");
        if (t == 0 && !allow_zero)
                return fail(ctx, -EINVAL, "must be greater than 0");
        if (t > CONFIG_TIME_MAX_USEC)
                return fail(ctx, -ERANGE, "\"%s\" is longer than the %llu day maximum", v,
                            (unsigned long long) (CONFIG_TIME_MAX_USEC / USEC_PER_DAY));
        *ret = t;
        return 0;
}

static int parse_ready_timeout(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, false, false, &c->ready_timeout);
}
static int parse_stop_timeout(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, false, true, &c->stop_timeout);
}
static int parse_watchdog(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, false, true, &c->watchdog);
}
static int parse_stall(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, true, true, &c->stall);
}
static int parse_drain(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, true, true, &c->drain);
}

static int parse_kill_signal(Config *c, ParseContext *ctx, const char *v) {
        int sig = parse_signal(v);

        if (sig < 0)
                return fail(ctx, -EINVAL, "unknown signal \"%s\" (e.g. SIGTERM, SIGINT, SIGQUIT)", v);
        if (sig == SIGKILL || sig == SIGSTOP)
                return fail(ctx, -EINVAL, "%s cannot start a graceful stop; it is what StopTimeoutSec= ends in",
                            signal_name(sig));
        /* The signals between the classic ones and SIGRTMIN belong to glibc (its threads use them). */
        if (sig > SIGSYS && (sig < SIGRTMIN || sig > SIGRTMAX))
                return fail(ctx, -EINVAL, "signal %d is reserved by the C library (valid: 1..%d and SIGRTMIN+0..%d, "
                            "that is %d..%d)", sig, SIGSYS, SIGRTMAX - SIGRTMIN, SIGRTMIN, SIGRTMAX);
        c->kill_signal = sig;
        return 0;
}

static int parse_environment(Config *c, ParseContext *ctx, const char *v) {
        _cleanup_strv_free_ char **words = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (isempty(v)) {
                c->environment = strv_free(c->environment);
                return 0;
        }
        r = words_split(v, c->service, &words, &err);
        if (r < 0)
                return fail(ctx, r, "%s", err ?: "cannot parse assignment");
        STRV_FOREACH(w, words) {
                if (!env_assignment_is_valid(*w))
                        return fail(ctx, -EINVAL, "\"%s\" is not a valid KEY=VALUE assignment", *w);
                if (strv_length(c->environment) >= ENVIRONMENT_MAX)
                        return fail(ctx, -E2BIG, "more than %u assignments", ENVIRONMENT_MAX);
                r = strv_env_set(&c->environment, *w);
                if (r < 0)
                        return fail(ctx, r, "out of memory");
        }
        return 0;
}

/* A name; an empty assignment resets it. `line` remembers where it was set (for errors found later). */
static int parse_name(ParseContext *ctx, const char *v, char **field, unsigned *line) {
        char *copy = NULL;

        if (!isempty(v)) {
                copy = strdup(v);
                if (!copy)
                        return fail(ctx, -ENOMEM, "out of memory");
        }
        free(*field);
        *field = copy;
        *line = ctx->line;
        return 0;
}

static int parse_user(Config *c, ParseContext *ctx, const char *v) {
        if (!isempty(v) && !user_group_name_or_id_is_valid(v))
                return fail(ctx, -EINVAL, "\"%s\" is not a valid user name or numeric ID", v);
        return parse_name(ctx, v, &c->user, &ctx->user_line);
}

static int parse_group(Config *c, ParseContext *ctx, const char *v) {
        if (!isempty(v) && !user_group_name_or_id_is_valid(v))
                return fail(ctx, -EINVAL, "\"%s\" is not a valid group name or numeric ID", v);
        return parse_name(ctx, v, &c->group, &ctx->group_line);
}

static int parse_working_directory(Config *c, ParseContext *ctx, const char *v) {
        bool missing_ok = false;

        if (isempty(v)) {
                c->working_directory = mfree(c->working_directory);
                return 0;
        }
        if (v[0] == '-') {
                missing_ok = true;
                v++;
        }
        if (v[0] != '/')
                return fail(ctx, -EINVAL, "\"%s\" is not an absolute path", v);
        free(c->working_directory);
        c->working_directory = strdup(v);
        c->working_directory_missing_ok = missing_ok;
        return c->working_directory ? 0 : fail(ctx, -ENOMEM, "out of memory");
}

/* CapabilityBoundingSet= and AmbientCapabilities=, as systemd parses them: a list merges with the key's
 * earlier ones ("~" removes from them), an empty assignment resets the key to its default (none). */
static int parse_capabilities(ParseContext *ctx, const char *v, uint64_t *field, unsigned *line) {
        _cleanup_free_ char *unknown = NULL;
        uint64_t set;
        bool inverted;
        int r;

        r = capability_set_parse(v, &set, &inverted, &unknown);
        if (r == -EINVAL)
                return fail(ctx, r, "unknown capability \"%s\" (expected names as in capabilities(7), such as "
                            "CAP_NET_BIND_SERVICE, separated by spaces, \"~\" first to invert)", unknown);
        if (r < 0)
                return fail(ctx, r, "out of memory");
        if (isempty(v)) {
                *field = 0;
                *line = 0;
                return 0;
        }
        if (*line == 0 || (inverted && set == capability_set_all()))
                *field = set;
        else if (inverted)
                *field &= set;
        else
                *field |= set;
        *line = ctx->line;
        return 0;
}

static int parse_capability_bounding_set(Config *c, ParseContext *ctx, const char *v) {
        return parse_capabilities(ctx, v, &c->capability_bounding_set, &ctx->bounding_line);
}

static int parse_ambient_capabilities(Config *c, ParseContext *ctx, const char *v) {
        return parse_capabilities(ctx, v, &c->ambient_capabilities, &ctx->ambient_line);
}

/* systemd's booleans. */
static int parse_boolean(const char *v) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

static int parse_no_new_privileges(Config *c, ParseContext *ctx, const char *v) {
        int b = parse_boolean(v);

        if (b < 0)
                return fail(ctx, -EINVAL, "\"%s\" is not a boolean (yes or no)", v);
        c->no_new_privileges = b;
        return 0;
}

static const char *listen_key(int type) {
        return type == SOCK_STREAM ? "ListenStream" : "ListenDatagram";
}

/* Two entries that cannot both be bound: the same type and address ("8080" and "[::]:8080"), or the same
 * socket file, whatever the types (binding the second would replace the first's file). Other overlaps,
 * such as "8080" (dual stack) and "0.0.0.0:8080", are left to the kernel, as in systemd: with
 * SO_REUSEPORT it binds both, without it the second bind fails and says so. */
static bool listen_conflict(const SocketAddress *a, const SocketAddress *b) {
        if (socket_address_equal(a, b))
                return true;
        return a->sa.sa_family == AF_UNIX && b->sa.sa_family == AF_UNIX && a->un.sun_path[0] &&
               b->un.sun_path[0] && streq(a->un.sun_path, b->un.sun_path);
}

static int parse_listen(Config *c, ParseContext *ctx, const char *v, int type) {
        SocketAddress a;
        ListenSpec *l;
        int r;

        if (isempty(v)) {
                /* An empty assignment resets the list, as in systemd. Only this key's type is reset. */
                size_t j = 0;
                for (size_t i = 0; i < c->n_listen; i++) {
                        if (c->listen[i].address.type == type)
                                free(c->listen[i].text);
                        else
                                c->listen[j++] = c->listen[i];
                }
                c->n_listen = j;
                return 0;
        }

        if (v[0] == '/' && path_has_dot_dot(v))
                return fail(ctx, -EINVAL, "\"%s\": a socket path may not contain \"..\"", v);
        r = socket_address_parse(v, type, &a);
        if (r == -ENODEV)
                return fail(ctx, r, "\"%s\": no such network interface", v);
        if (r < 0)
                return fail(ctx, r, "\"%s\" is not an address (PORT, ADDR:PORT, [IPV6]:PORT, /path or @abstract)", v);
        for (size_t i = 0; i < c->n_listen; i++)
                if (listen_conflict(&c->listen[i].address, &a))
                        return fail(ctx, -EEXIST, "\"%s\" is listed twice (line %u: %s=%s)", v, c->listen[i].line,
                                    listen_key(c->listen[i].address.type), c->listen[i].text);
        if (c->n_listen >= LISTEN_MAX)
                return fail(ctx, -E2BIG, "more than %u listening addresses", LISTEN_MAX);

        l = realloc(c->listen, sizeof(ListenSpec) * (c->n_listen + 1));
        if (!l)
                return fail(ctx, -ENOMEM, "out of memory");
        c->listen = l;
        l[c->n_listen] = (ListenSpec) { .address = a, .text = strdup(v), .line = ctx->line };
        if (!l[c->n_listen].text)
                return fail(ctx, -ENOMEM, "out of memory");
        c->n_listen++;
        return 0;
}

static int parse_listen_stream(Config *c, ParseContext *ctx, const char *v) {
        return parse_listen(c, ctx, v, SOCK_STREAM);
}
static int parse_listen_datagram(Config *c, ParseContext *ctx, const char *v) {
        return parse_listen(c, ctx, v, SOCK_DGRAM);
}

static int parse_backlog(Config *c, ParseContext *ctx, const char *v) {
        unsigned n;

        if (parse_uint(v, &n) < 0 || n < 1 || n > 65535)
                return fail(ctx, -EINVAL, "\"%s\" is not a backlog between 1 and 65535", v);
        c->backlog = n;
        return 0;
}

bool fdname_is_valid(const char *s) {
        size_t n = 0;

        /* The rules of systemd's FileDescriptorName=: printable ASCII except ':', at most 255 characters. */
        for (const char *p = s; *p; p++, n++)
                if (*p < ' ' || *p > '~' || *p == ':')
                        return false;
        return n > 0 && n <= 255;
}

static int parse_fdname(Config *c, ParseContext *ctx, const char *v) {
        if (!fdname_is_valid(v))
                return fail(ctx, -EINVAL, "\"%s\" is not a valid name (printable ASCII without ':', "
                            "1 to 255 characters)", v);
        free(c->fdname);
        c->fdname = strdup(v);
        return c->fdname ? 0 : fail(ctx, -ENOMEM, "out of memory");
}

/* ReadyProbe=: empty (none), tcp, http:/PATH or exec:COMMAND ARGS... (a command line as ExecStart=). */
static int parse_ready_probe(Config *c, ParseContext *ctx, const char *v) {
        _cleanup_strv_free_ char **words = NULL;
        _cleanup_free_ char *text = NULL, *path = NULL, *err = NULL;
        ProbeKind kind;
        int r;

        if (isempty(v))
                kind = PROBE_NONE;
        else if (streq(v, "tcp"))
                kind = PROBE_TCP;
        else if (strncmp(v, "http:", 5) == 0) {
                const char *t = v + strlen("http:");
                size_t n = strlen(t);

                /* The request target goes into the request line as it is: one token, nothing to escape. */
                if (t[0] != '/')
                        return fail(ctx, -EINVAL, "\"%s\" is not a path starting with '/' (e.g. http:/healthz)", t);
                if (t[1] == '/')
                        return fail(ctx, -EINVAL, "\"%s\" is a URL, not a path: the probe connects to the first "
                                    "ListenStream=; write the path only (e.g. http:/healthz)", v);
                if (n > PROBE_PATH_MAX)
                        return fail(ctx, -E2BIG, "the path is longer than %u bytes", PROBE_PATH_MAX);
                for (const char *p = t; *p; p++)
                        if (*p <= ' ' || *p > '~' || *p == '#')
                                return fail(ctx, -EINVAL, "the path \"%s\" may only hold printable ASCII without "
                                            "spaces or '#' (percent-encode them)", t);
                kind = PROBE_HTTP;
                path = strdup(t);
                if (!path)
                        return fail(ctx, -ENOMEM, "out of memory");
        } else if (strncmp(v, "exec:", 5) == 0) {
                r = exec_line_split(v + strlen("exec:"), c->service, &words, &err);
                if (r < 0)
                        return fail(ctx, r, "%s", err ?: "cannot parse command line");
                kind = PROBE_EXEC;
        } else
                return fail(ctx, -EINVAL, "unknown probe \"%s\" (expected tcp, http:/PATH or exec:COMMAND, or "
                            "empty for none)", v);

        if (kind != PROBE_NONE) {
                text = strdup(v);
                if (!text)
                        return fail(ctx, -ENOMEM, "out of memory");
        }
        c->probe = kind;
        free(c->probe_text);
        c->probe_text = TAKE_PTR(text);
        free(c->probe_path);
        c->probe_path = TAKE_PTR(path);
        strv_free(c->probe_argv);
        c->probe_argv = TAKE_PTR(words);
        ctx->probe_line = ctx->line;
        return 0;
}

static int parse_probe_timeout(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, false, false, &c->probe_timeout);
}

static int parse_probe_interval(Config *c, ParseContext *ctx, const char *v) {
        usec_t t;
        int r;

        r = parse_time(ctx, v, false, false, &t);
        if (r < 0)
                return r;
        if (t < PROBE_INTERVAL_MIN_USEC)
                return fail(ctx, -ERANGE, "\"%s\" is shorter than the %llu ms minimum", v,
                            (unsigned long long) (PROBE_INTERVAL_MIN_USEC / USEC_PER_MSEC));
        c->probe_interval = t;
        return 0;
}

static int parse_probe_count(ParseContext *ctx, const char *v, unsigned *ret) {
        unsigned n;

        if (parse_uint(v, &n) < 0 || n < 1 || n > PROBE_COUNT_MAX)
                return fail(ctx, -EINVAL, "\"%s\" is not a count between 1 and %u", v, PROBE_COUNT_MAX);
        *ret = n;
        return 0;
}

static int parse_probe_passes(Config *c, ParseContext *ctx, const char *v) {
        return parse_probe_count(ctx, v, &c->probe_passes);
}
static int parse_probe_failures(Config *c, ParseContext *ctx, const char *v) {
        return parse_probe_count(ctx, v, &c->probe_failures);
}

static int parse_soak(Config *c, ParseContext *ctx, const char *v) {
        usec_t t;
        int r;

        r = parse_time(ctx, v, false, true, &t);
        if (r < 0)
                return r;
        if (t > SOAK_MAX_USEC)
                return fail(ctx, -ERANGE, "\"%s\" is longer than the %llu hour maximum", v,
                            (unsigned long long) (SOAK_MAX_USEC / USEC_PER_HOUR));
        c->soak = t;
        return 0;
}

/* Canary=: a percentage, 1..100, with or without '%'; empty: none (the soaking generation takes all). */
static int parse_canary(Config *c, ParseContext *ctx, const char *v) {
        _cleanup_free_ char *number = NULL;
        size_t n = strlen(v);
        unsigned p;

        if (n == 0) {
                c->canary = 0;
                return 0;
        }
        number = strndup(v, v[n - 1] == '%' ? n - 1 : n);
        if (!number)
                return fail(ctx, -ENOMEM, "out of memory");
        if (parse_uint(number, &p) < 0 || p < 1 || p > 100)
                return fail(ctx, -EINVAL, "\"%s\" is not a percentage between 1 and 100 (e.g. 10 or 10%%)", v);
        c->canary = p;
        ctx->canary_line = ctx->line;
        return 0;
}

/* FlowTableSize=: flows remembered (an LRU table in the kernel, sized once: see rpsup.conf(5)); 0: off. */
static int parse_flow_table_size(Config *c, ParseContext *ctx, const char *v) {
        unsigned n;

        if (parse_uint(v, &n) < 0 || n > STEER_FLOWS_MAX)
                return fail(ctx, -EINVAL, "\"%s\" is not a number of flows between 0 (off) and %u", v, STEER_FLOWS_MAX);
        c->flow_table_size = n;
        return 0;
}

static int parse_flow_idle(Config *c, ParseContext *ctx, const char *v) {
        return parse_time(ctx, v, false, false, &c->flow_idle);
}

/* FileDescriptorStoreMax=: fds kept per worker slot (FDSTORE=1); 0: none. */
static int parse_fdstore_max(Config *c, ParseContext *ctx, const char *v) {
        unsigned n;

        if (parse_uint(v, &n) < 0 || n > WORKER_FDSTORE_SLOT_MAX)
                return fail(ctx, -EINVAL, "\"%s\" is not a number of file descriptors between 0 (none) and %u", v,
                            WORKER_FDSTORE_SLOT_MAX);
        c->fdstore_max = n;
        return 0;
}

static const struct {
        const char *section;
        const char *key;
        KeyParser parse;
} keys[] = {
        { "Service", "ExecStart", parse_exec_start },
        { "Service", "Workers", parse_workers },
        { "Service", "Strategy", parse_strategy },
        { "Service", "Steering", parse_steering },
        { "Service", "Ready", parse_ready },
        { "Service", "ReadyTimeoutSec", parse_ready_timeout },
        { "Service", "KillSignal", parse_kill_signal },
        { "Service", "StopTimeoutSec", parse_stop_timeout },
        { "Service", "WatchdogSec", parse_watchdog },
        { "Service", "StallSec", parse_stall },
        { "Service", "DrainSec", parse_drain },
        { "Service", "Restart", parse_restart },
        { "Service", "Environment", parse_environment },
        { "Service", "User", parse_user },
        { "Service", "Group", parse_group },
        { "Service", "WorkingDirectory", parse_working_directory },
        { "Service", "CapabilityBoundingSet", parse_capability_bounding_set },
        { "Service", "AmbientCapabilities", parse_ambient_capabilities },
        { "Service", "NoNewPrivileges", parse_no_new_privileges },
        { "Service", "ReadyProbe", parse_ready_probe },
        { "Service", "ReadyProbeTimeoutSec", parse_probe_timeout },
        { "Service", "ReadyProbeIntervalSec", parse_probe_interval },
        { "Service", "ReadyProbePasses", parse_probe_passes },
        { "Service", "ReadyProbeFailures", parse_probe_failures },
        { "Service", "SoakSec", parse_soak },
        { "Service", "Canary", parse_canary },
        { "Service", "FlowTableSize", parse_flow_table_size },
        { "Service", "FlowIdleSec", parse_flow_idle },
        { "Service", "FileDescriptorStoreMax", parse_fdstore_max },
        { "Socket", "ListenStream", parse_listen_stream },
        { "Socket", "ListenDatagram", parse_listen_datagram },
        { "Socket", "Backlog", parse_backlog },
        { "Socket", "FileDescriptorName", parse_fdname },
};

static char *strstrip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

static int parse_assignment(Config *c, ParseContext *ctx, char *l) {
        char *eq = strchr(l, '='), *key, *value;
        bool section_known = false;

        if (!eq)
                return fail(ctx, -EINVAL, "\"%s\" is not a KEY=VALUE assignment", l);
        *eq = 0;
        key = strstrip(l);
        value = strstrip(eq + 1);
        if (isempty(key))
                return fail(ctx, -EINVAL, "assignment without a key");

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!streq(keys[i].section, ctx->section))
                        continue;
                section_known = true;
                if (streq(keys[i].key, key)) {
                        ctx->key = keys[i].key;
                        int r = keys[i].parse(c, ctx, value);
                        ctx->key = NULL;
                        return r;
                }
        }
        if (!section_known)
                return fail(ctx, -EINVAL, "unknown section [%s]", ctx->section);
        ctx->key = key;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq(keys[i].key, key)) {
                        int r = fail(ctx, -EINVAL, "belongs in [%s], not [%s]", keys[i].section, ctx->section);
                        ctx->key = NULL;
                        return r;
                }
        int r = fail(ctx, -EINVAL, "unknown key in [%s]", ctx->section);
        ctx->key = NULL;
        return r;
}

static int parse_text(Config *c, ParseContext *ctx, char *text) {
        _cleanup_free_ char *section = NULL;
        _cleanup_free_ char *continued = NULL;
        unsigned first_line = 0;
        int r;

        /* Split on '\n' by hand, so that empty lines still count. */
        char *p = text;
        unsigned lineno = 0;
        while (p) {
                char *nl = strchr(p, '\n'), *l;
                if (nl)
                        *nl = 0;
                lineno++;
                l = strstrip(p);
                p = nl ? nl + 1 : NULL;

                if (strlen(l) > CONFIG_LINE_MAX) {
                        ctx->line = lineno;
                        return fail(ctx, -E2BIG, "line longer than %u bytes", CONFIG_LINE_MAX);
                }

                /* Comments are skipped, also in the middle of a continued line (as systemd does). */
                if (l[0] == '#' || l[0] == ';')
                        continue;
                /* Values end up in status replies and errors, which D-Bus carries as UTF-8 only. */
                size_t bad = utf8_first_invalid(l, strlen(l));
                if (l[bad]) {
                        ctx->line = lineno;
                        return fail(ctx, -EINVAL, "not valid UTF-8 (byte 0x%02x)", (unsigned char) l[bad]);
                }

                bool continues = l[0] && l[strlen(l) - 1] == '\\';
                if (continues)
                        l[strlen(l) - 1] = ' ';

                if (continued || continues) {
                        size_t a = continued ? strlen(continued) : 0, b = strlen(l);
                        if (a + b > CONFIG_LINE_MAX) {
                                ctx->line = first_line ?: lineno;
                                return fail(ctx, -E2BIG, "continued line longer than %u bytes", CONFIG_LINE_MAX);
                        }
                        char *t = realloc(continued, a + b + 1);
                        if (!t)
                                return -ENOMEM;
                        memcpy(t + a, l, b + 1);
                        continued = t;
                        if (!first_line)
                                first_line = lineno;
                        if (continues && p)
                                continue;
                        l = strstrip(continued);
                }
                ctx->line = first_line ?: lineno;

                if (isempty(l)) {
                        /* nothing */
                } else if (l[0] == '[') {
                        size_t n = strlen(l);
                        if (l[n - 1] != ']' || n < 3)
                                return fail(ctx, -EINVAL, "invalid section header \"%s\"", l);
                        free(section);
                        section = strndup(l + 1, n - 2);
                        if (!section)
                                return -ENOMEM;
                        ctx->section = section;
                        bool known = false;
                        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                                known = known || streq(keys[i].section, section);
                        if (!known)
                                return fail(ctx, -EINVAL, "unknown section [%s] (expected [Service] or [Socket])",
                                            section);
                } else if (!ctx->section) {
                        return fail(ctx, -EINVAL, "assignment outside of a section");
                } else {
                        r = parse_assignment(c, ctx, l);
                        if (r < 0)
                                return r;
                }
                continued = mfree(continued);
                first_line = 0;
        }
        ctx->section = NULL;
        return 0;
}

static int find_executable(const char *name, char **ret) {
        const char *path;

        if (strchr(name, '/')) {
                struct stat st;
                if (name[0] != '/')
                        return -EINVAL;
                if (stat(name, &st) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
                if (!S_ISREG(st.st_mode))
                        return -EACCES;
                if (access(name, X_OK) < 0)
                        return -errno;
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        path = getenv("PATH") ?: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *f = NULL;
                if (n > 0 && asprintf(&f, "%.*s/%s", (int) n, p, name) >= 0) {
                        struct stat st;
                        if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0) {
                                *ret = TAKE_PTR(f);
                                return 0;
                        }
                }
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

/* An error about the value of `key`, set on `line`: "FILE:LINE: Key=: what". */
static int fail_at(ParseContext *ctx, unsigned line, const char *key, int r, const char *fmt, ...) _printf_(5, 6);
static int fail_at(ParseContext *ctx, unsigned line, const char *key, int r, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        what = strdup_vprintf(fmt, ap);
        va_end(ap);

        ctx->line = line;
        ctx->key = key;
        r = fail(ctx, r, "%s", what ?: "out of memory");
        ctx->key = NULL;
        return r;
}

/* The executable of a command line (ExecStart=, ReadyProbe=exec:), set on `line` of `key`. */
static int resolve_command(ParseContext *ctx, unsigned line, const char *key, const char *name, char **ret) {
        int r;

        r = find_executable(name, ret);
        if (r == -EINVAL)
                return fail_at(ctx, line, key, r, "\"%s\" must be an absolute path or a name found in $PATH", name);
        if (r < 0)
                return fail_at(ctx, line, key, r, "cannot execute \"%s\": %s", name, strerror(-r));
        /* The path is part of failure messages, which status replies carry (as UTF-8 only). */
        if (!utf8_is_valid(*ret))
                return fail_at(ctx, line, key, -EINVAL, "the path of the executable, \"%s\", is not valid UTF-8",
                               *ret);
        return 0;
}

static bool has_listen_stream(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type == SOCK_STREAM)
                        return true;
        return false;
}

/* What a worker may be given of rpsupd's capabilities, and whether rpsupd can keep the rest from it. */
static int validate_capabilities(Config *c, ParseContext *ctx) {
        uint64_t effective, permitted, bounding, missing;
        int r;

        /* A capability is raised in the ambient set only if it is in the bounding set: it is added there,
         * unless CapabilityBoundingSet= leaves it out explicitly. */
        missing = c->ambient_capabilities & ~c->capability_bounding_set;
        if (missing && ctx->bounding_line > 0)
                return fail_at(ctx, ctx->ambient_line, "AmbientCapabilities", -EINVAL,
                               "%s is not in CapabilityBoundingSet= (line %u)",
                               capability_to_name(capability_set_first(missing)), ctx->bounding_line);
        c->capability_bounding_set |= c->ambient_capabilities;

        r = capability_get_own(&effective, &permitted, &bounding);
        if (r < 0)
                return fail(ctx, r, "cannot read rpsupd's own capabilities: %s", strerror(-r));
        missing = c->ambient_capabilities & ~permitted;
        if (missing)
                return fail_at(ctx, ctx->ambient_line, "AmbientCapabilities", -EPERM,
                               "rpsupd does not have %s itself, so it cannot hand it on (under systemd, the "
                               "CapabilityBoundingSet= of rpsup@.service must include it)",
                               capability_to_name(capability_set_first(missing)));
        /* Dropping the rest of the bounding set takes CAP_SETPCAP: a root rpsupd that cannot would hand its
         * capabilities on to workers that run as root. A non-root rpsupd's workers cannot gain from the
         * bounding set under no_new_privs; without it, they could (set-user-ID or file-capability
         * programs) as far as rpsupd's own capabilities reach. */
        if ((geteuid() == 0 || (permitted != 0 && !c->no_new_privileges)) && (bounding & ~c->capability_bounding_set) &&
            !(effective & CAPABILITY_MASK(CAP_SETPCAP)))
                return fail(ctx, -EPERM, "rpsupd lacks CAP_SETPCAP, which it needs to keep its capabilities from "
                            "its workers (under systemd, the CapabilityBoundingSet= of rpsup@.service must "
                            "include it)");
        return 0;
}

static int validate(Config *c, ParseContext *ctx) {
        int r;

        ctx->line = 0;
        if (!c->exec_words)
                return fail(ctx, -EINVAL, "[Service] has no ExecStart=; it is required");
        r = resolve_command(ctx, ctx->exec_start_line, "ExecStart", c->exec_words[0], &c->exec_path);
        if (r < 0)
                return r;
        if (c->n_listen == 0)
                return fail(ctx, -EINVAL, "[Socket] has no ListenStream= or ListenDatagram=; at least one is "
                            "required");
        /* A connection probe connects to the first stream listener. */
        if ((c->probe == PROBE_TCP || c->probe == PROBE_HTTP) && !has_listen_stream(c))
                return fail_at(ctx, ctx->probe_line, "ReadyProbe", -EINVAL,
                               "a %s probe connects to the first ListenStream=, and there is none (use exec:COMMAND "
                               "to probe datagram services)", probe_kind_to_string(c->probe));
        if (c->probe == PROBE_EXEC) {
                r = resolve_command(ctx, ctx->probe_line, "ReadyProbe", c->probe_argv[0], &c->probe_exec_path);
                if (r < 0)
                        return r;
        }
        /* A canary is a share of new connections steered to some listeners: handoff has one for all. */
        if (c->canary > 0 && c->strategy == STRATEGY_HANDOFF)
                return fail_at(ctx, ctx->canary_line, "Canary", -EINVAL,
                               "needs listeners per worker (Strategy=drain or migrate); with Strategy=handoff all "
                               "workers accept from one queue");
        if (c->canary > 0 && c->canary < 100 && c->soak == 0)
                return fail_at(ctx, ctx->canary_line, "Canary", -EINVAL,
                               "is a share of new connections during a soak, and SoakSec= is 0");
        /* Policies of rpsup's steering program: per-worker listeners. (Whether the program can load is
         * known when the strategy is chosen: strategy_select().) */
        if (c->steering != STEERING_ROUND_ROBIN && c->strategy == STRATEGY_HANDOFF)
                return fail_at(ctx, ctx->steering_line, "Steering", -EINVAL,
                               "%s needs listeners per worker (Strategy=drain or migrate); with Strategy=handoff all "
                               "workers accept from one queue", steering_policy_to_string(c->steering));
        if (c->steering == STEERING_KERNEL && c->canary > 0 && c->canary < 100)
                return fail_at(ctx, ctx->steering_line, "Steering", -EINVAL,
                               "kernel leaves new connections to the kernel's choice, which cannot share them out "
                               "between generations: it excludes Canary=");

        if (c->user) {
                struct passwd *pw;
                bool numeric;
                uid_t id;
                errno = 0;
                numeric = parse_uid(c->user, &id) >= 0;
                pw = numeric ? getpwuid(id) : getpwnam(c->user);
                if (!pw && !numeric)
                        return fail_at(ctx, ctx->user_line, "User", errno > 0 ? -errno : -ESRCH,
                                       "no such user \"%s\"", c->user);
                if (pw && (!uid_is_valid(pw->pw_uid) || (!c->group && !gid_is_valid(pw->pw_gid))))
                        return fail_at(ctx, ctx->user_line, "User", -EINVAL,
                                       "user \"%s\" has an invalid uid or gid in the user database", c->user);
                c->uid = pw ? pw->pw_uid : id;
                if (pw) {
                        c->user_name = strdup(pw->pw_name);
                        c->home = strdup(pw->pw_dir);
                        c->shell = strdup(pw->pw_shell);
                }
                if (!c->group)
                        c->gid = pw ? pw->pw_gid : (gid_t) id;
        } else
                c->uid = getuid();
        if (c->group) {
                struct group *gr;
                bool numeric;
                uid_t id;
                errno = 0;
                numeric = parse_uid(c->group, &id) >= 0;
                gr = numeric ? getgrgid((gid_t) id) : getgrnam(c->group);
                if (!gr && !numeric)
                        return fail_at(ctx, ctx->group_line, "Group", errno > 0 ? -errno : -ESRCH,
                                       "no such group \"%s\"", c->group);
                if (gr && !gid_is_valid(gr->gr_gid))
                        return fail_at(ctx, ctx->group_line, "Group", -EINVAL,
                                       "group \"%s\" has an invalid gid in the group database", c->group);
                c->gid = gr ? gr->gr_gid : (gid_t) id;
        } else if (!c->user)
                c->gid = getgid();
        /* The worker's supplementary groups, as initgroups() would set them; none for a user the database
         * does not know (a numeric User=). */
        if (c->user_name && geteuid() == 0) {
                int n = 32;
                for (;;) {
                        int want = n;
                        gid_t *a = reallocarray(c->groups, (size_t) n, sizeof(gid_t));
                        if (!a)
                                return -ENOMEM;
                        c->groups = a;
                        if (getgrouplist(c->user_name, c->gid, c->groups, &n) >= 0)
                                break;
                        if (n <= want || n > (int) CONFIG_GROUPS_MAX)
                                return fail_at(ctx, ctx->user_line, "User", -E2BIG,
                                               "cannot list the groups of user \"%s\" (at most %u are supported)",
                                               c->user_name, CONFIG_GROUPS_MAX);
                }
                c->n_groups = (size_t) n;
        }
        if ((c->uid != getuid() || c->gid != getgid()) && geteuid() != 0) {
                ctx->line = ctx->user_line ?: ctx->group_line;
                return fail(ctx, -EPERM, "User=/Group=: switching to %s%s%s needs rpsupd to run as root",
                            c->user ?: "", c->user && c->group ? ":" : "", c->group ?: "");
        }
        return validate_capabilities(c, ctx);
}

static const char *inode_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFDIR:
                return "a directory";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        case S_IFLNK:
                return "a symbolic link";
        default:
                return "of an unknown type";
        }
}

int config_parse_buffer(const char *data, size_t size, const char *path, const char *service, Config **ret,
                        char **ret_error) {
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *text = NULL, *shown_path = NULL;
        ParseContext ctx = {};
        int r;

        *ret_error = NULL;
        /* The path is only quoted in messages, which must be valid UTF-8. */
        shown_path = utf8_sanitize_dup(path, 0);
        if (!shown_path)
                return -ENOMEM;
        ctx.path = shown_path;

        if (size > CONFIG_SIZE_MAX) {
                set_error(ret_error, "%s: larger than %u bytes", shown_path, CONFIG_SIZE_MAX);
                return -EFBIG;
        }
        if (memchr(data, 0, size)) {
                set_error(ret_error, "%s: contains a NUL byte", shown_path);
                return -EINVAL;
        }
        /* It is %i in values, and shown in status replies. */
        if (!utf8_is_valid(service)) {
                set_error(ret_error, "%s: the service name \"%s\" is not valid UTF-8", shown_path, service);
                return -EINVAL;
        }
        /* A byte order mark at the start is skipped, as systemd does. */
        if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
                data += 3;
                size -= 3;
        }

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        *c = (Config) {
                .n_ref = 1,
                .workers = 0,
                .strategy = STRATEGY_AUTO,
                .ready = READY_NOTIFY,
                .ready_timeout = 30 * USEC_PER_SEC,
                .kill_signal = SIGTERM,
                .stop_timeout = 30 * USEC_PER_SEC,
                .watchdog = 0,
                .stall = USEC_INFINITY,
                .drain = USEC_INFINITY,
                .restart = RESTART_ON_FAILURE,
                .no_new_privileges = true,
                .probe = PROBE_NONE,
                .probe_timeout = 2 * USEC_PER_SEC,
                .probe_interval = USEC_PER_SEC,
                .probe_passes = 1,
                .probe_failures = 3,
                .soak = 5 * USEC_PER_SEC,
                .canary = 0,
                .flow_table_size = STEER_FLOWS_DEFAULT,
                .flow_idle = FLOW_IDLE_DEFAULT_USEC,
                .backlog = 4096,
        };
        c->path = strdup(path);
        c->service = strdup(service);
        text = malloc(size + 1);
        if (!c->path || !c->service || !text)
                return -ENOMEM;
        memcpy(text, data, size);
        text[size] = 0;

        r = parse_text(c, &ctx, text);
        if (r >= 0)
                r = validate(c, &ctx);
        if (r < 0) {
                *ret_error = ctx.error ?: strdup("out of memory");
                return r;
        }
        free(ctx.error);

        if (c->workers == 0) {
                long n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
                c->workers = n_cpus > 0 ? (unsigned) MIN(n_cpus, (long) WORKERS_MAX) : 1;
        }
        if (!c->fdname) {
                c->fdname = strdup(fdname_is_valid(service) ? service : "rpsup");
                if (!c->fdname)
                        return -ENOMEM;
        }
        c->source = malloc(size ?: 1);
        if (!c->source)
                return -ENOMEM;
        memcpy(c->source, data, size);
        c->source_size = size;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, const char *service, Config **ret, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t n = 0;
        int r;

        *ret_error = NULL;
        /* rpsupd shows the path in its status, which D-Bus carries as UTF-8 only. */
        if (!utf8_is_valid(path)) {
                set_error(ret_error, "%s: the path is not valid UTF-8", path);
                return -EINVAL;
        }

        /* Nothing here may block: O_NONBLOCK opens a FIFO at once (to be refused below), O_NOCTTY keeps a
         * terminal from becoming ours. Only a regular file is read. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                /* A socket cannot be opened at all: say what it is rather than "No such device". */
                if (r == -ENXIO && stat(path, &st) >= 0 && !S_ISREG(st.st_mode)) {
                        set_error(ret_error, "%s: is %s, not a regular file", path, inode_type_name(st.st_mode));
                        return -EBADFD;
                }
                set_error(ret_error, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                set_error(ret_error, "%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                set_error(ret_error, "%s: is %s, not a regular file", path, inode_type_name(st.st_mode));
                return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
        }

        /* One byte more than the limit tells a file that is too large (it may grow while we read). */
        data = malloc(CONFIG_SIZE_MAX + 1);
        if (!data)
                return -ENOMEM;
        while (n < CONFIG_SIZE_MAX + 1) {
                ssize_t k = read(fd, data + n, CONFIG_SIZE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        set_error(ret_error, "%s: cannot read: %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        return config_parse_buffer(data, n, path, service, ret, ret_error);
}
