/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsupctl: the operator's command for rpsupd. It talks to rpsupd only through the control interface
 * (protocol/): a direct D-Bus connection to the "control" socket in the service's runtime directory. */

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-bus.h>

#include "fds.h"
#include "json-util.h"
#include "log.h"
#include "parse-util.h"
#include "probe.h"
#include "records.h"
#include "reload-lines.h"
#include "rpsup-protocol.h"
#include "table.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,      /* the operation failed; the service is unchanged */
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3, /* no rpsupd answers */
};

static const char *arg_runtime_dir;
static bool arg_json;
static bool arg_wait;
static bool arg_no_soak;
static unsigned arg_canary; /* 0: the config's Canary= */
static const char *arg_shadow; /* steer --shadow POLICY|off */

static void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE |
                                                             JSON_C_TO_STRING_SPACED));
}

/* Reports a failure: on stderr, and with --json also as a JSON document on stdout. */
static int fail(int code, const char *error_name, const char *fmt, ...) _printf_(3, 4);
static int fail(int code, const char *error_name, const char *fmt, ...) {
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "rpsupctl: %s\n", msg);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object *e = json_object_new_object();
                json_object_object_add(e, "name", json_object_new_string(error_name ?: "io.rpsup.Error.Failed"));
                json_object_object_add(e, "message", json_object_new_string(msg));
                json_object_object_add(e, "exit_code", json_object_new_int(code));
                json_object_object_add(o, "error", e);
                print_json(o);
        }
        return code;
}

static int connect_service(const char *name, sd_bus **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = rpsup_control_path(arg_runtime_dir, name, &path);
        if (r == -EINVAL)
                return fail(EXIT_USAGE, NULL, "\"%s\" is not a service name", name);
        if (r < 0)
                return fail(EXIT_FAILED, NULL, "out of memory");
        r = rpsup_connect(path, ret);
        if (r == -ECONNREFUSED)
                return fail(EXIT_UNREACHABLE, NULL, "rpsupd of \"%s\" is not running: nothing listens on %s, a "
                            "socket left by an rpsupd that ended", name, path);
        if (r < 0)
                return fail(EXIT_UNREACHABLE, NULL, "cannot reach rpsupd of \"%s\" at %s: %s (is rpsup@%s running?)",
                            name, path, strerror(-r), name);
        return EXIT_OK;
}

static int call_failed(const char *what, const char *name, int r, const sd_bus_error *e) {
        /* A connection that breaks mid-call means rpsupd went away. */
        if (r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE)
                return fail(EXIT_UNREACHABLE, e && e->name ? e->name : NULL, "%s of \"%s\": rpsupd went away: %s", what,
                            name, strerror(-r));
        return fail(EXIT_FAILED, e && e->name ? e->name : NULL, "%s of \"%s\" failed: %s", what, name,
                    e && e->message ? e->message : strerror(-r));
}

/* ---- status ---- */

/* max/min: "1.34"; "-" before any connection; "unbounded" when a worker got none while another got some. */
static const char *format_imbalance(char *buf, size_t l, double x) {
        if (x < 0)
                snprintf(buf, l, "unbounded (a worker got none)");
        else if (x == 0)
                snprintf(buf, l, "-");
        else
                snprintf(buf, l, "%.2f", x);
        return buf;
}

/* New connections per worker over the last minute and how even they are, with the namespace's accept-queue
 * overflows and drops next to them. */
static void print_balance(json_object *status) {
        char imbalance[64], kernel[128] = "";

        if (record_int(status, "listen_overflows") >= 0)
                snprintf(kernel, sizeof(kernel), "; namespace: %" PRIi64 " listen overflows, %" PRIi64 " listen drops",
                         record_int(status, "listen_overflows"), record_int(status, "listen_drops"));
        if (!record_bool(status, "balance_counted")) {
                printf("    Balance: %s%s\n", record_str(status, "balance_note"), kernel);
                return;
        }
        printf("    Balance: %" PRIi64 " new connections in the last minute over %" PRIi64 " workers (%" PRIi64 "..%"
               PRIi64 " each), imbalance %s, CV %.3f%s\n", record_int(status, "balance_connections_last_minute"),
               record_int(status, "balance_workers"), record_int(status, "balance_min_last_minute"),
               record_int(status, "balance_max_last_minute"),
               format_imbalance(imbalance, sizeof(imbalance), record_double(status, "balance_imbalance")),
               record_double(status, "balance_cv"), kernel);
}

static void print_summary(json_object *status) {
        char age[FORMAT_TIMESPAN_MAX + 16], span[FORMAT_TIMESPAN_MAX], line[1024];
        uint64_t now = now_usec(CLOCK_REALTIME);

        printf("%s: %s\n", record_str(status, "service"), record_str(status, "status"));
        printf("   Strategy: %s (%s)\n", record_str(status, "strategy"), record_str(status, "strategy_reason"));
        if (!isempty(record_str(status, "steering")) && !streq(record_str(status, "steering"), "none")) {
                const char *by = record_str(status, "steering_by");

                printf("   Steering: %s, set by %s%s %s: %s\n", record_str(status, "steering"),
                       streq(by, "config") ? "the config (Steering=)" : by,
                       streq(by, "config") ? "" : " (rpsupctl steer)",
                       format_relative(age, sizeof(age), (uint64_t) record_int(status, "steering_since_usec")),
                       record_str(status, "steering_note"));
        }
        if (!isempty(record_str(status, "steering_shadow")) && !streq(record_str(status, "steering_shadow"), "off")) {
                char actual[32], projected[32];

                printf("     Shadow: %s since %s by %s: %" PRIi64 " new connections, imbalance (max/min over %" PRIi64
                       " workers) actual %s, projected %s\n", record_str(status, "steering_shadow"),
                       format_relative(age, sizeof(age), (uint64_t) record_int(status, "steering_shadow_since_usec")),
                       record_str(status, "steering_shadow_by"), record_int(status, "steering_shadow_connections"),
                       record_int(status, "steering_shadow_workers"),
                       format_imbalance(actual, sizeof(actual), record_double(status, "steering_shadow_imbalance_actual")),
                       format_imbalance(projected, sizeof(projected),
                                        record_double(status, "steering_shadow_imbalance_projected")));
        }
        if (!isempty(record_str(status, "steering")) && !streq(record_str(status, "steering"), "none")) {
                uint64_t counted_at = (uint64_t) record_int(status, "flow_table_counted_usec");
                char flows[96] = "?", counted[64] = "just now";

                /* The last complete count (a walk of the table, a step per turn of rpsupd's loop). */
                if (counted_at + USEC_PER_SEC < now)
                        format_relative(counted, sizeof(counted), counted_at);
                if (record_int(status, "flow_table_flows") >= 0)
                        snprintf(flows, sizeof(flows), "%" PRIi64 " (counted %s)",
                                 record_int(status, "flow_table_flows"), counted);
                printf("      Flows: %s, %s of %" PRIi64 " in the table; %" PRIi64 " datagrams to their worker (%.1f %% "
                       "hits), %" PRIi64 " new, %" PRIi64 " whose worker was gone\n",
                       record_bool(status, "flow_table") ? "sticky" : "off", flows,
                       record_int(status, "flow_table_size"), record_int(status, "flow_table_hits"),
                       100.0 * record_double(status, "flow_table_hit_ratio"), record_int(status, "flow_table_new"),
                       record_int(status, "flow_table_lost"));
        }
        printf("      State: %s, pid %" PRIi64 ", up %s\n", record_str(status, "state"), record_int(status, "pid"),
               format_age(age, sizeof(age), (uint64_t) record_int(status, "started_usec")));
        printf("    Reloads: %s", format_reload_counts(line, sizeof(line), status));
        if (record_int(status, "last_reload_usec") > 0)
                printf(" (last took %s)",
                       format_timespan(span, sizeof(span), (usec_t) record_int(status, "last_reload_usec"), USEC_PER_MSEC));
        printf("\n");
        if (format_last_reload_line(line, sizeof(line), status, now))
                printf("%s\n", line);
        if (format_soak_line(line, sizeof(line), status, now, !streq(record_str(status, "strategy"), "handoff")))
                printf("       %s\n", line);
        printf("   Failures: %" PRIi64 " worker failures, %" PRIi64 " failures while retiring, %" PRIi64
               " watchdog kills, %" PRIi64 " stall replacements", record_int(status, "worker_failures"),
               record_int(status, "retiring_failures"), record_int(status, "watchdog_kills"),
               record_int(status, "stall_replacements"));
        if (record_int(status, "stop_timeouts") > 0)
                printf(", %" PRIi64 " did not stop within StopTimeoutSec=", record_int(status, "stop_timeouts"));
        if (!isempty(record_str(status, "ready_probe")))
                printf(", %" PRIi64 " failed probes", record_int(status, "probe_failures"));
        printf("\n");
        print_balance(status);
        printf("     Config: %s\n", record_str(status, "config"));
        if (record_int(status, "last_retired_generation") > 0)
                printf("  Last gone: generation %" PRIi64 " after %s; meanwhile the kernel migrated %" PRIi64
                       " (%" PRIi64 " failed), %" PRIi64 " listen drops, %" PRIi64 " overflows\n",
                       record_int(status, "last_retired_generation"),
                       format_timespan(span, sizeof(span), (usec_t) record_int(status, "last_retirement_usec"),
                                       USEC_PER_MSEC),
                       record_int(status, "last_retirement_migrated"), record_int(status, "last_retirement_migrate_failed"),
                       record_int(status, "last_retirement_listen_drops"),
                       record_int(status, "last_retirement_listen_overflows"));

}

static void print_generations(json_object *status, json_object *generations) {
        char rel[FORMAT_TIMESPAN_MAX + 16];
        Table *t;

        printf("\n");
        t = table_new(7, "GENERATION", "STATE", "WORKERS", "CPU", "STARTED", "LIVE SINCE", "DRAIN DEADLINE / FAILURE");
        for (size_t i = 0; t && i < json_object_array_length(generations); i++) {
                json_object *g = json_object_array_get_idx(generations, i);
                char id[32], n[32], cpu[FORMAT_TIMESPAN_MAX], started[FORMAT_TIMESPAN_MAX + 16],
                        deadline[FORMAT_TIMESPAN_MAX + 16];
                const char *state = record_str(g, "state");
                json_object *usec;
                /* Where the service's cgroups tell: its processes' CPU time, gone ones included. */
                if (json_object_object_get_ex(g, "cpu_usec", &usec))
                        format_timespan(cpu, sizeof(cpu), (uint64_t) json_object_get_int64(usec), USEC_PER_MSEC);
                else
                        snprintf(cpu, sizeof(cpu), "-");
                snprintf(id, sizeof(id), "%" PRIi64, record_int(g, "id"));
                snprintf(n, sizeof(n), "%" PRIi64, record_int(g, "workers"));
                format_relative(started, sizeof(started), (uint64_t) record_int(g, "started_usec"));
                format_relative(rel, sizeof(rel), (uint64_t) record_int(g, "live_usec"));
                if (streq(state, "failed"))
                        snprintf(deadline, sizeof(deadline), "%s", record_str(g, "failure"));
                else if (streq(state, "soaking"))
                        format_relative(deadline, sizeof(deadline), (uint64_t) record_int(status, "soak_deadline_usec"));
                else
                        format_relative(deadline, sizeof(deadline), (uint64_t) record_int(g, "drain_deadline_usec"));
                table_add(t, id, state, n, cpu, started, rel, deadline);
        }
        if (t)
                table_print(t);
        t = table_free(t);

}

/* Why a retiring worker is still there: "4 connections open, queue 0, stopped at the latest in 12s". */
static const char *format_drain(char *buf, size_t l, json_object *w) {
        char open[64], queue[64], deadline[FORMAT_TIMESPAN_MAX + 16];
        int64_t n = record_int(w, "drain_open_connections");

        if (n >= 0)
                snprintf(open, sizeof(open), "%" PRIi64 " connection%s open", n, n == 1 ? "" : "s");
        else
                snprintf(open, sizeof(open), "connections unknown");
        if (record_int(w, "drain_queue") >= 0)
                snprintf(queue, sizeof(queue), "queue %" PRIi64, record_int(w, "drain_queue"));
        else
                snprintf(queue, sizeof(queue), "queue unknown");
        format_relative(deadline, sizeof(deadline), (uint64_t) record_int(w, "drain_deadline_usec"));
        if (record_bool(w, "drain_flows_active")) {
                /* Datagram flows still reach it (the flow table keeps them with their worker). */
                char quiet[FORMAT_TIMESPAN_MAX + 8] = "just now";
                int64_t q = record_int(w, "drain_flows_quiet_usec");

                if (q >= (int64_t) USEC_PER_MSEC) {
                        format_timespan(quiet, FORMAT_TIMESPAN_MAX, (usec_t) q, USEC_PER_MSEC);
                        strcat(quiet, " ago");
                }
                snprintf(buf, l, "flows active (last datagram %s), %s, %s, stopped at the latest %s", quiet, open,
                         queue, deadline);
                return buf;
        }
        snprintf(buf, l, "%s, %s, stopped at the latest %s", open, queue, deadline);
        return buf;
}

/* A worker row's first columns: generation, slot (* when retiring), pid (- when none). */
static void worker_ids(json_object *w, char gen[static 32], char slot[static 32], char pid[static 32]) {
        snprintf(gen, 32, "%" PRIi64, record_int(w, "generation"));
        snprintf(slot, 32, "%" PRIi64 "%s", record_int(w, "slot"), record_bool(w, "retiring") ? "*" : "");
        if (record_int(w, "pid") > 0)
                snprintf(pid, 32, "%" PRIi64, record_int(w, "pid"));
        else
                snprintf(pid, 32, "-");
}

/* What slots keep for their next worker (FDSTORE=1), once per slot index; nothing when none keeps any. */
static void print_stored_fds(json_object *workers) {
        int64_t shown = -1;
        size_t n = json_object_array_length(workers);
        bool any = false;

        /* Slot indices ascending, each once (every generation's worker of an index shows the same count). */
        for (;;) {
                int64_t next = -1, count = 0;
                for (size_t i = 0; i < n; i++) {
                        json_object *w = json_object_array_get_idx(workers, i);
                        int64_t slot = record_int(w, "slot");
                        if (record_int(w, "stored_fds") > 0 && slot > shown && (next < 0 || slot < next)) {
                                next = slot;
                                count = record_int(w, "stored_fds");
                        }
                }
                if (next < 0)
                        break;
                printf("%s%" PRIi64 ": %" PRIi64, any ? ", " : "Stored fds (FDSTORE=1) by slot: ", next, count);
                any = true;
                shown = next;
        }
        if (any)
                printf("\n");
}

static void print_workers(json_object *status, json_object *workers) {
        bool shared = false, steered;
        Table *t;

        printf("\n");
        steered = !streq(record_str(status, "strategy"), "handoff");
        t = steered ? table_new(11, "GEN", "SLOT", "PID", "STATE", "UPTIME", "RESTARTS", "QUEUE", "QUEUE MAX", "SYNS",
                                "1 MIN", "STATUS")
                    : table_new(8, "GEN", "SLOT", "PID", "STATE", "UPTIME", "RESTARTS", "QUEUE", "STATUS");
        for (size_t i = 0; t && i < json_object_array_length(workers); i++) {
                json_object *w = json_object_array_get_idx(workers, i);
                char gen[32], slot[32], pid[32], restarts[32], queue[32], syns[32], up[FORMAT_TIMESPAN_MAX + 16];
                char high[32] = "-", minute[32] = "-";
                char probe[512];
                const char *st = record_str(w, "status");
                worker_ids(w, gen, slot, pid);
                snprintf(restarts, sizeof(restarts), "%" PRIi64, record_int(w, "restarts"));
                if (record_int(w, "accept_queue") >= 0)
                        snprintf(queue, sizeof(queue), "%" PRIi64, record_int(w, "accept_queue"));
                else
                        snprintf(queue, sizeof(queue), "-");
                snprintf(syns, sizeof(syns), "%" PRIi64, record_int(w, "syns"));
                if (record_int(w, "accept_queue_high_water") >= 0)
                        snprintf(high, sizeof(high), "%" PRIi64, record_int(w, "accept_queue_high_water"));
                if (record_int(w, "connections_last_minute") >= 0)
                        snprintf(minute, sizeof(minute), "%" PRIi64, record_int(w, "connections_last_minute"));
                shared = shared || record_bool(w, "accept_queue_shared");
                format_age(up, sizeof(up), (uint64_t) record_int(w, "started_usec"));
                if (isempty(st))
                        st = record_str(w, "last_failure");
                if (record_int(w, "probe_failures") > 0) {
                        snprintf(probe, sizeof(probe), "probe failed %" PRIi64 "x: %s", record_int(w, "probe_failures"),
                                 record_str(w, "probe_failure"));
                        st = probe;
                }
                if (streq(record_str(w, "state"), "draining") && record_int(w, "drain_deadline_usec") > 0)
                        st = format_drain(probe, sizeof(probe), w);
                if (steered)
                        table_add(t, gen, slot, pid, record_str(w, "state"), up, restarts, queue, high, syns, minute, st);
                else
                        table_add(t, gen, slot, pid, record_str(w, "state"), up, restarts, queue, st);
        }
        if (t)
                table_print(t);
        t = table_free(t);
        if (shared)
                printf("QUEUE: the accept queue all workers share (handoff). *: retiring.\n");
        else if (steered)
                printf("QUEUE: connections waiting in the worker's own listener; QUEUE MAX: the most seen since the "
                       "last metrics scrape. SYNS: new connections steered to it; 1 MIN: in the last minute. *: "
                       "retiring.\n");
        print_stored_fds(workers);
}

/* While a shadow policy runs: each worker's share of new connections in its window, as steered and as the
 * shadow policy would have steered them. */
static void print_shadow(json_object *status, json_object *workers) {
        Table *t;

        if (isempty(record_str(status, "steering_shadow")) || streq(record_str(status, "steering_shadow"), "off"))
                return;
        printf("\n");
        t = table_new(5, "GEN", "SLOT", "PID", "ACTUAL", "PROJECTED");
        for (size_t i = 0; t && i < json_object_array_length(workers); i++) {
                json_object *w = json_object_array_get_idx(workers, i);
                char gen[32], slot[32], pid[32], actual[64], projected[64];

                if (record_int(w, "shadow_actual") == 0 && record_int(w, "shadow_projected") == 0 &&
                    record_int(w, "pid") <= 0)
                        continue;
                worker_ids(w, gen, slot, pid);
                snprintf(actual, sizeof(actual), "%.1f %% (%" PRIi64 ")", 100.0 * record_double(w, "shadow_actual_share"),
                         record_int(w, "shadow_actual"));
                snprintf(projected, sizeof(projected), "%.1f %% (%" PRIi64 ")",
                         100.0 * record_double(w, "shadow_projected_share"), record_int(w, "shadow_projected"));
                table_add(t, gen, slot, pid, actual, projected);
        }
        if (t)
                table_print(t);
        t = table_free(t);
        printf("ACTUAL: the worker's share of new connections since the shadow began; PROJECTED: what shadow "
               "policy %s would have given it.\n", record_str(status, "steering_shadow"));
}

static void print_listeners(json_object *listeners) {
        unsigned retired = 0;
        Table *t;

        printf("\n");
        t = table_new(6, "LISTENER", "TYPE", "OWNER", "QUEUE", "BACKLOG", "ORIGIN");
        for (size_t i = 0; t && i < json_object_array_length(listeners); i++) {
                json_object *l = json_object_array_get_idx(listeners, i);
                char queue[32], backlog[32];
                if (streq(record_str(l, "owner"), "retired")) {
                        retired++;
                        continue;
                }
                if (record_int(l, "accept_queue") >= 0) {
                        snprintf(queue, sizeof(queue), "%" PRIi64, record_int(l, "accept_queue"));
                        snprintf(backlog, sizeof(backlog), "%" PRIi64, record_int(l, "backlog"));
                } else {
                        snprintf(queue, sizeof(queue), "-");
                        snprintf(backlog, sizeof(backlog), "-");
                }
                table_add(t, record_str(l, "address"), record_str(l, "type"), record_str(l, "owner"), queue, backlog,
                          record_bool(l, "socket_unit") ? "socket unit" :
                          record_bool(l, "restored") ? "fd store" : "bound by rpsupd");
        }
        if (t)
                table_print(t);
        table_free(t);
        if (retired > 0)
                printf("...and %u retired listener%s, no longer listening, kept open until the handshakes that were "
                       "in flight on %s have moved on.\n", retired, retired == 1 ? "" : "s",
                       retired == 1 ? "it" : "them");
}

static void print_status(json_object *status, json_object *generations, json_object *workers, json_object *listeners) {
        print_summary(status);
        print_generations(status, generations);
        print_workers(status, workers);
        print_shadow(status, workers);
        print_listeners(listeners);
}

static int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_json_ json_object *status = NULL, *generations = NULL, *workers = NULL, *listeners = NULL;
        int r, code;

        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        if ((r = records_call(bus, "GetStatus", false, &e, &status)) < 0 ||
            (r = records_call(bus, "ListGenerations", true, &e, &generations)) < 0 ||
            (r = records_call(bus, "ListWorkers", true, &e, &workers)) < 0 ||
            (r = records_call(bus, "ListListeners", true, &e, &listeners)) < 0)
                return call_failed("status", argv[1], r, &e);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_get(status));
                json_object_object_add(o, "generations", json_object_get(generations));
                json_object_object_add(o, "workers", json_object_get(workers));
                json_object_object_add(o, "listeners", json_object_get(listeners));
                print_json(o);
        } else
                print_status(status, generations, workers, listeners);
        return EXIT_OK;
}

/* ---- operations ---- */

static int fail_count(const char *arg) {
        return fail(EXIT_USAGE, NULL, "\"%s\" is not a worker count: count must be a positive number", arg);
}

static int verb_scale(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        unsigned n;
        int r, code;

        if (parse_uint(argv[2], &n) < 0 || n == 0)
                return fail_count(argv[2]);
        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        /* rpsupd bounds the operation itself (ReadyTimeoutSec=): no client-side timeout. */
        (void) sd_bus_set_method_call_timeout(bus, UINT64_MAX);
        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "Scale", &e, &reply, "u", n);
        if (r < 0)
                return call_failed("scale", argv[1], r, &e);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_new_string(argv[1]));
                json_object_object_add(o, "workers", json_object_new_int64(n));
                print_json(o);
        } else
                printf("%s: %u worker%s ready.\n", argv[1], n, n == 1 ? "" : "s");
        return EXIT_OK;
}

/* steer NAME POLICY, steer NAME --shadow POLICY|off, or both (the policy first: setting it restarts the
 * shadow's window anyway). */
static int verb_steer(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        const char *policy = argc > 2 ? argv[2] : NULL;
        int r, code;

        if (!policy && !arg_shadow)
                return fail(EXIT_USAGE, NULL, "steer takes a policy (round-robin, hash or kernel), --shadow POLICY "
                            "or --shadow off");
        /* rpsupd checks the name (after the caller's right to ask): one list of policies, its own. */
        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        if (policy) {
                r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "SetSteering", &e, &reply, "s",
                                       policy);
                if (r < 0)
                        return call_failed("steer", argv[1], r, &e);
        }
        if (arg_shadow) {
                r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "SetShadowSteering", &e, NULL,
                                       "s", arg_shadow);
                if (r < 0)
                        return call_failed("steer --shadow", argv[1], r, &e);
        }
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_new_string(argv[1]));
                if (policy)
                        json_object_object_add(o, "steering", json_object_new_string(policy));
                if (arg_shadow)
                        json_object_object_add(o, "shadow", json_object_new_string(arg_shadow));
                print_json(o);
                return EXIT_OK;
        }
        if (policy)
                printf("%s: steering policy %s.\n", argv[1], policy);
        if (arg_shadow && streq(arg_shadow, "off"))
                printf("%s: no shadow policy.\n", argv[1]);
        else if (arg_shadow)
                printf("%s: shadow policy %s: new connections are counted where it would send them, from now on "
                       "(rpsupctl status %s).\n", argv[1], arg_shadow, argv[1]);
        return EXIT_OK;
}

static int call_reload_with_options(sd_bus *bus, sd_bus_error *e, sd_bus_message **reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "ReloadWithOptions");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "wait", "b", (int) arg_wait);
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "soak", "b", (int) !arg_no_soak);
        if (r >= 0 && arg_canary > 0)
                r = sd_bus_message_append(m, "{sv}", "canary", "u", (uint32_t) arg_canary);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, UINT64_MAX, e, reply);
}

static int verb_reload(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        uint64_t generation = 0;
        usec_t begin = now_usec(CLOCK_MONOTONIC);
        char span[FORMAT_TIMESPAN_MAX];
        int r, code;

        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        /* A reload waits through the soak (SoakSec=), which rpsupd bounds: no client-side timeout. */
        (void) sd_bus_set_method_call_timeout(bus, UINT64_MAX);
        if (arg_no_soak || arg_canary > 0)
                r = call_reload_with_options(bus, &e, &reply);
        else
                /* Without options, the method every rpsupd has. */
                r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "Reload", &e, &reply, "b",
                                       arg_wait);
        if (r >= 0)
                r = sd_bus_message_read(reply, "t", &generation);
        if (r < 0)
                return call_failed("reload", argv[1], r, &e);
        format_timespan(span, sizeof(span), now_usec(CLOCK_MONOTONIC) - begin, USEC_PER_MSEC);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_new_string(argv[1]));
                json_object_object_add(o, "generation", json_object_new_uint64(generation));
                json_object_object_add(o, "duration_usec", json_object_new_uint64(now_usec(CLOCK_MONOTONIC) - begin));
                print_json(o);
        } else
                printf("%s: generation %" PRIu64 " takes all new connections (%s)%s.\n", argv[1], generation, span,
                       arg_wait ? "; the previous generation has exited" : "; the previous one drains");
        return EXIT_OK;
}

/* promote, rollback: end the soak in progress one way or the other. */
static int soak_decision(const char *name, const char *method, bool promote) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        uint64_t generation = 0;
        int r, code;

        code = connect_service(name, &bus);
        if (code != EXIT_OK)
                return code;
        (void) sd_bus_set_method_call_timeout(bus, UINT64_MAX);
        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, method, &e, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "t", &generation);
        if (r < 0)
                return call_failed(promote ? "promote" : "rollback", name, r, &e);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_new_string(name));
                json_object_object_add(o, "generation", json_object_new_uint64(generation));
                print_json(o);
        } else if (promote)
                printf("%s: generation %" PRIu64 " promoted: it takes all new connections; the previous one "
                       "retires.\n", name, generation);
        else
                printf("%s: rolled back: generation %" PRIu64 " takes all new connections again.\n", name,
                       generation);
        return EXIT_OK;
}

static int verb_promote(int argc, char *argv[]) {
        return soak_decision(argv[1], "Promote", true);
}

static int verb_rollback(int argc, char *argv[]) {
        return soak_decision(argv[1], "Rollback", false);
}

/* ---- reexec ---- */

/* GetStatus over a connection of its own; < 0 while rpsupd does not answer (it is between two images). */
static int reexec_status(const char *name, json_object **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = rpsup_control_path(arg_runtime_dir, name, &path);
        if (r < 0)
                return r;
        r = rpsup_connect(path, &bus);
        if (r < 0)
                return r;
        return records_call(bus, "GetStatus", false, &e, ret);
}

/* reexec NAME: rpsupd answers with the attempt's number, then executes its binary. The outcome is read from
 * GetStatus once rpsupd answers again: the same pid (a reexec keeps it) with reexec_seq at that number. A
 * connection rpsupd accepted before the exec breaks (retried); one made during it waits in the control
 * socket's queue until the new image (or the old one, back after a refusal) accepts it. */
static int verb_reexec(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_json_ json_object *before = NULL;
        usec_t begin = now_usec(CLOCK_MONOTONIC), deadline = usec_add(begin, 60 * USEC_PER_SEC);
        uint64_t seq = 0;
        int64_t pid;
        int r, code;

        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        r = records_call(bus, "GetStatus", false, &e, &before);
        if (r >= 0)
                r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "Reexec", &e, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "t", &seq);
        if (r < 0)
                return call_failed("reexec", argv[1], r, &e);
        pid = record_int(before, "pid");
        bus = sd_bus_close_unref(bus);

        for (;;) {
                _cleanup_json_ json_object *st = NULL;
                char span[FORMAT_TIMESPAN_MAX];

                r = reexec_status(argv[1], &st);
                if (r >= 0 && record_int(st, "pid") != pid)
                        return fail(EXIT_UNREACHABLE, NULL, "reexec of \"%s\": rpsupd (pid %" PRIi64 ") is gone; pid %"
                                    PRIi64 " answers now (systemd restarted the service?)", argv[1], pid,
                                    record_int(st, "pid"));
                if (r >= 0 && (uint64_t) record_int(st, "reexec_seq") >= seq) {
                        usec_t took = (usec_t) record_int(st, "reexec_last_usec");
                        bool failed = record_bool(st, "reexec_last_failed");

                        if (failed)
                                return fail(EXIT_FAILED, "io.rpsup.Error.Failed", "reexec of \"%s\" failed: %s", argv[1],
                                            record_str(st, "reexec_last_error") ?: "no reason given");
                        format_timespan(span, sizeof(span), took, USEC_PER_MSEC);
                        if (arg_json) {
                                _cleanup_json_ json_object *o = json_object_new_object();
                                json_object_object_add(o, "service", json_object_new_string(argv[1]));
                                json_object_object_add(o, "pid", json_object_new_int64(pid));
                                json_object_object_add(o, "attempt", json_object_new_uint64(seq));
                                json_object_object_add(o, "duration_usec", json_object_new_uint64(took));
                                json_object_object_add(o, "answered_usec",
                                                       json_object_new_uint64(now_usec(CLOCK_MONOTONIC) - begin));
                                print_json(o);
                        } else
                                printf("%s: rpsupd (pid %" PRIi64 ") executed its binary again and took over (%s).\n",
                                       argv[1], pid, span);
                        return EXIT_OK;
                }
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return fail(EXIT_UNREACHABLE, NULL, "reexec of \"%s\": rpsupd did not report the outcome "
                                    "within 60 s%s", argv[1], r < 0 ? " (it does not answer)" : "");
                (void) usleep(10 * 1000);
        }
}

static int verb_metrics(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        const char *text;
        int r, code;

        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "GetMetrics", &e, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return call_failed("metrics", argv[1], r, &e);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "service", json_object_new_string(argv[1]));
                json_object_object_add(o, "prometheus", json_object_new_string(text));
                print_json(o);
        } else
                fputs(text, stdout);
        return EXIT_OK;
}

static int verb_fds(int argc, char *argv[]) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_json_ json_object *report = NULL;
        int r, code;

        code = connect_service(argv[1], &bus);
        if (code != EXIT_OK)
                return code;
        r = fds_collect(bus, &e, &report);
        if (r < 0)
                return call_failed("fds", argv[1], r, &e);
        if (arg_json)
                print_json(report);
        else
                fds_print(report);
        return EXIT_OK;
}

/* ---- host-wide ---- */

static int verb_list(int argc, char *argv[]) {
        _cleanup_json_ json_object *all = json_object_new_array();
        struct dirent **names = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int n;

        n = scandir(arg_runtime_dir, &names, NULL, alphasort);
        if (n < 0 && errno == ENOENT)
                return fail(EXIT_UNREACHABLE, NULL, "%s does not exist: no rpsupd has run there since boot (or "
                            "see --runtime-dir and $RPSUP_RUNTIME_DIR)", arg_runtime_dir);
        if (n < 0)
                return fail(EXIT_FAILED, NULL, "cannot read %s: %m", arg_runtime_dir);
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                _cleanup_free_ char *path = NULL;
                struct stat st;
                _cleanup_json_ json_object *o = json_object_new_object(), *status = NULL;
                _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
                int r;

                if (name[0] == '.' || rpsup_control_path(arg_runtime_dir, name, &path) < 0 || stat(path, &st) < 0 ||
                    !S_ISSOCK(st.st_mode)) {
                        free(names[i]);
                        continue;
                }
                json_object_object_add(o, "service", json_object_new_string(name));
                r = rpsup_connect(path, &bus);
                if (r >= 0)
                        r = records_call(bus, "GetStatus", false, NULL, &status);
                if (r >= 0) {
                        json_object_object_add(o, "reachable", json_object_new_boolean(true));
                        json_object_object_add(o, "state", json_object_new_string(record_str(status, "state")));
                        json_object_object_add(o, "strategy", json_object_new_string(record_str(status, "strategy")));
                        json_object_object_add(o, "live_generation",
                                               json_object_new_int64(record_int(status, "live_generation")));
                        json_object_object_add(o, "workers", json_object_new_int64(record_int(status, "workers")));
                        json_object_object_add(o, "ready_workers",
                                               json_object_new_int64(record_int(status, "ready_workers")));
                } else {
                        json_object_object_add(o, "reachable", json_object_new_boolean(false));
                        /* Refused: the socket of an rpsupd that ended without removing it (killed). */
                        json_object_object_add(o, "state", json_object_new_string(r == -ECONNREFUSED ? "not running" :
                                                                                  "unreachable"));
                        json_object_object_add(o, "error", json_object_new_string(strerror(-r)));
                }
                json_object_array_add(all, TAKE_PTR(o));
                free(names[i]);
        }
        free(names);

        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object_object_add(o, "services", TAKE_PTR(all));
                print_json(o);
                return EXIT_OK;
        }
        t = table_new(6, "SERVICE", "STATE", "STRATEGY", "GENERATION", "WORKERS", "READY");
        for (size_t i = 0; t && i < json_object_array_length(all); i++) {
                json_object *o = json_object_array_get_idx(all, i);
                char gen[32], w[32], rdy[32];
                if (!record_bool(o, "reachable")) {
                        table_add(t, record_str(o, "service"), record_str(o, "state"), NULL, NULL, NULL, NULL);
                        continue;
                }
                snprintf(gen, sizeof(gen), "%" PRIi64, record_int(o, "live_generation"));
                snprintf(w, sizeof(w), "%" PRIi64, record_int(o, "workers"));
                snprintf(rdy, sizeof(rdy), "%" PRIi64, record_int(o, "ready_workers"));
                table_add(t, record_str(o, "service"), record_str(o, "state"), record_str(o, "strategy"), gen, w, rdy);
        }
        if (t && json_object_array_length(all) > 0)
                table_print(t);
        else
                printf("No rpsup services under %s.\n", arg_runtime_dir);
        return EXIT_OK;
}

static int verb_probe(int argc, char *argv[]) {
        ProbeResult p;
        _cleanup_(table_freep) Table *t = NULL;

        probe_run(&p);
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();
                json_object *a = json_object_new_array();
                json_object_object_add(o, "kernel", json_object_new_string(p.kernel));
                json_object_object_add(o, "reuseport", json_object_new_boolean(p.reuseport));
                json_object_object_add(o, "bpf", json_object_new_boolean(p.select_prog));
                json_object_object_add(o, "bpf_reason", json_object_new_string(p.bpf_reason));
                json_object_object_add(o, "migrate_program", json_object_new_boolean(p.migrate_prog));
                json_object_object_add(o, "tcp_migrate_req", json_object_new_int(p.migrate_sysctl));
                for (StrategyKind k = STRATEGY_HANDOFF; k < _STRATEGY_MAX; k++) {
                        json_object *s = json_object_new_object();
                        json_object_object_add(s, "name", json_object_new_string(strategy_kind_to_string(k)));
                        json_object_object_add(s, "available", json_object_new_boolean(p.available[k]));
                        json_object_object_add(s, "reason", json_object_new_string(p.reason[k]));
                        json_object_array_add(a, s);
                }
                json_object_object_add(o, "strategies", a);
                json_object_object_add(o, "auto", json_object_new_string(p.reason[STRATEGY_AUTO]));
                print_json(o);
                return EXIT_OK;
        }
        printf("Kernel:          %s\n", p.kernel);
        printf("SO_REUSEPORT:    %s\n", p.reuseport ? "yes" : "no");
        printf("BPF steering:    %s%s%s\n", p.select_prog ? "yes" : "no", p.select_prog ? "" : " - ",
               p.select_prog ? "" : p.bpf_reason);
        printf("BPF migration:   %s\n", p.migrate_prog ? "yes" : "no");
        printf("tcp_migrate_req: %s\n", p.migrate_sysctl < 0 ? "missing (kernel < 5.14)" :
                                        p.migrate_sysctl ? "1" : "0");
        printf("\n");
        t = table_new(3, "STRATEGY", "AVAILABLE", "WHY");
        for (StrategyKind k = STRATEGY_HANDOFF; t && k < _STRATEGY_MAX; k++)
                table_add(t, strategy_kind_to_string(k), p.available[k] ? "yes" : "no", p.reason[k]);
        if (t)
                table_print(t);
        printf("\nStrategy=auto picks %s for TCP services (UDP cannot migrate; Unix sockets use handoff).\n",
               p.reason[STRATEGY_AUTO]);
        return EXIT_OK;
}

/* ---- main ---- */

static void help(void) {
        printf("rpsupctl [OPTIONS] COMMAND ...\n\n"
               "Control rpsupd, the socket supervisor.\n\n"
               "Commands:\n"
               "  list                 Services on this host\n"
               "  status NAME          Strategy, generations, workers and listeners\n"
               "  scale NAME N         Run N workers; returns when they are ready\n"
               "  reload NAME          Start a new generation and move all new connections to it;\n"
               "                       returns once it takes them and its soak is over (exit 1 if it\n"
               "                       was rolled back)\n"
               "  promote NAME         End the soak in progress now: the new generation takes over\n"
               "  rollback NAME        End the soak in progress now: back to the previous generation\n"
               "  steer NAME POLICY    How new connections pick a worker, from now on: round-robin,\n"
               "                       hash or kernel\n"
               "  steer NAME --shadow POLICY|off\n"
               "                       Also count where round-robin or hash would send each new\n"
               "                       connection, without sending it there (status shows both); off\n"
               "                       stops it\n"
               "  probe                What this kernel and these privileges allow, per strategy\n"
               "  metrics NAME         Prometheus text exposition\n"
               "  reexec NAME          rpsupd executes its binary as it is on disk now, in the same\n"
               "                       process, and takes over its listeners and workers (exit 1 if\n"
               "                       the new binary refused: the running one goes on)\n"
               "  fds NAME             Every copy of the service's listening sockets and who holds it:\n"
               "                       rpsupd, the fd store, workers, anyone else (flagged unexpected)\n\n"
               "Options:\n"
               "     --runtime-dir DIR Where services' runtime directories are (default: $RPSUP_RUNTIME_DIR\n"
               "                       or %s)\n"
               "     --json            Print one JSON document\n"
               "     --wait            reload: also wait until the previous generation has exited\n"
               "     --no-soak         reload: no soak (SoakSec=) this time\n"
               "     --canary PERCENT  reload: the new generation gets PERCENT %% of new connections\n"
               "                       during its soak, the previous one the rest\n"
               "     --shadow POLICY   steer: a shadow policy (round-robin, hash) or off\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n\n"
               "Exit status: 0 done, 1 failed (the service is unchanged), 2 usage, 3 rpsupd not reachable.\n",
               RPSUP_RUNTIME_PARENT_DEFAULT);
}

static const struct {
        const char *name;
        int args; /* including the command */
        int (*run)(int argc, char *argv[]);
} verbs[] = {
        { "list", 1, verb_list },       { "status", 2, verb_status },   { "scale", 3, verb_scale },
        { "reload", 2, verb_reload },   { "probe", 1, verb_probe },     { "metrics", 2, verb_metrics },
        { "promote", 2, verb_promote }, { "rollback", 2, verb_rollback }, { "steer", 3, verb_steer },
        { "fds", 2, verb_fds },         { "reexec", 2, verb_reexec },
};

/* getopt would take "-1" for an option: a negative number is no argument of any command, and the one number
 * a command takes is scale's worker count. Arguments of options are skipped; "--" ends the options. */
static int check_negative_numbers(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (streq(a, "--"))
                        break;
                if (streq(a, "--runtime-dir") || streq(a, "--canary") || streq(a, "--shadow")) {
                        i++;
                        continue;
                }
                if (a[0] == '-' && a[1] >= '0' && a[1] <= '9')
                        return fail_count(a);
        }
        return EXIT_OK;
}

int main(int argc, char *argv[]) {
        enum { ARG_RUNTIME_DIR = 0x100, ARG_JSON, ARG_WAIT, ARG_NO_SOAK, ARG_CANARY, ARG_SHADOW, ARG_VERSION };
        static const struct option options[] = {
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "json", no_argument, NULL, ARG_JSON },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "no-soak", no_argument, NULL, ARG_NO_SOAK },
                { "canary", required_argument, NULL, ARG_CANARY },
                { "shadow", required_argument, NULL, ARG_SHADOW },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        log_setup("rpsupctl");
        c = check_negative_numbers(argc, argv);
        if (c != EXIT_OK)
                return c;
        arg_runtime_dir = getenv("RPSUP_RUNTIME_DIR");
        if (isempty(arg_runtime_dir))
                arg_runtime_dir = RPSUP_RUNTIME_PARENT_DEFAULT;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_WAIT:
                        arg_wait = true;
                        break;
                case ARG_NO_SOAK:
                        arg_no_soak = true;
                        break;
                case ARG_CANARY:
                        if (parse_canary(optarg, &arg_canary) < 0)
                                return fail(EXIT_USAGE, NULL, "--canary %s: not a percentage between 1 and 100",
                                            optarg);
                        break;
                case ARG_SHADOW:
                        arg_shadow = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_VERSION:
                        printf("rpsupctl %s\n", RPSUP_VERSION);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                fprintf(stderr, "rpsupctl: no command given. See rpsupctl --help.\n");
                return EXIT_USAGE;
        }
        if (!streq(argv[optind], "reload")) {
                const char *option = arg_wait ? "--wait" : arg_no_soak ? "--no-soak" : arg_canary > 0 ? "--canary" : NULL;

                /* scale --wait: scale-out returns once the new workers are ready already; scale-in once the
                 * removed workers take no new connections, and they then drain (status shows them). */
                if (option)
                        return fail(EXIT_USAGE, NULL, "%s is an option of \"reload\" only%s", option,
                                    streq(option, "--wait") && streq(argv[optind], "scale") ?
                                    ": \"scale\" returns once the new workers are ready, or once the workers it "
                                    "removes take no new connections (\"status\" shows them draining)" : "");
        }
        if (arg_shadow && !streq(argv[optind], "steer"))
                return fail(EXIT_USAGE, NULL, "--shadow is an option of \"steer\" only");
        if (arg_no_soak && arg_canary > 0)
                return fail(EXIT_USAGE, NULL, "--canary runs during the soak: it cannot go with --no-soak");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(verbs[i].name, argv[optind]))
                        continue;
                /* steer NAME --shadow POLICY: the policy argument is optional then. */
                if (argc - optind != verbs[i].args &&
                    !(arg_shadow && streq(verbs[i].name, "steer") && argc - optind == verbs[i].args - 1)) {
                        fprintf(stderr, "rpsupctl: \"%s\" takes %d argument%s. See rpsupctl --help.\n", verbs[i].name,
                                verbs[i].args - 1, verbs[i].args == 2 ? "" : "s");
                        return EXIT_USAGE;
                }
                return verbs[i].run(argc - optind, argv + optind);
        }
        fprintf(stderr, "rpsupctl: unknown command \"%s\". See rpsupctl --help.\n", argv[optind]);
        return EXIT_USAGE;
}
