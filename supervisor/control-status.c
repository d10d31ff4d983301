/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control-entry.h"
#include "control-shadow.h"
#include "control-status.h"
#include "log.h"
#include "netstat.h"
#include "rpsup-limits.h"
#include "string-util.h"
#include "worker-fdstore.h"

uint64_t to_realtime(usec_t t) {
        usec_t mono, real;

        if (t == 0 || t == USEC_INFINITY)
                return 0;
        mono = now_usec(CLOCK_MONOTONIC);
        real = now_usec(CLOCK_REALTIME);
        return t >= mono ? real + (t - mono) : real - (mono - t);
}

static unsigned ready_workers(Service *s) {
        unsigned n = 0;

        if (!s->live)
                return 0;
        for (size_t i = 0; i < s->live->n_slots; i++)
                n += slot_is_serving(s->live->slots[i]);
        return n;
}

/* The live generation's worker count; before one is live, Workers= of the config. */
static uint32_t target_workers(const StatusView *v) {
        Service *s = v->service;

        return s->live ? (uint32_t) service_live_workers(s) : (v->config ? v->config->workers : 0);
}

/* ---- the one-line summary ---- */

typedef struct StatusCounts {
        unsigned ready, target;  /* of the pending generation, else the live one */
        unsigned draining;       /* workers of retiring generations */
        unsigned looping;        /* slots that failed CRASH_LOOP_FAILURES times in a row */
        unsigned left;           /* workers of any generation */
} StatusCounts;

static StatusCounts status_counts(Service *s, Generation *g) {
        StatusCounts c = {};

        FOREACH_GENERATION(x, s)
                for (size_t i = 0; i < x->n_slots; i++) {
                        Slot *slot = x->slots[i];
                        c.draining += x->state == GENERATION_RETIRING && slot->worker;
                        c.looping += !slot->retiring && slot->consecutive_failures >= CRASH_LOOP_FAILURES;
                        c.left += !!slot->worker;
                }
        for (size_t i = 0; g && i < g->n_slots; i++) {
                Slot *slot = g->slots[i];
                if (slot->retiring)
                        continue;
                c.target++;
                c.ready += slot->worker && slot->worker->state == WORKER_READY;
        }
        return c;
}

int status_line(Service *s, StrategyKind kind, char **ret) {
        Generation *g = s->pending ?: s->live;
        StatusCounts c = status_counts(s, g);
        const char *strategy = strategy_kind_to_string(kind);
        char *line;
        int r;

        if (s->warm && s->live && s->state != SERVICE_STOPPING && s->state != SERVICE_STOPPED) {
                /* A soak: the live generation is on probation, the previous one waits, warm. */
                char canary[32] = "";

                c = status_counts(s, s->live);
                if (s->canary > 0)
                        snprintf(canary, sizeof(canary), ", canary %u %%", s->canary);
                r = asprintf(&line, "Soaking generation %" PRIu64 ": %u/%u workers ready%s, generation %" PRIu64
                             " warm (%s)%s", s->live->id, c.ready, c.target, canary, s->warm->id, strategy,
                             c.looping ? "; a worker is crash-looping" : "");
                if (r < 0)
                        return -ENOMEM;
                *ret = line;
                return 0;
        }
        switch (s->state) {
        case SERVICE_STARTING:
                r = asprintf(&line, "Starting generation %" PRIu64 ": %u/%u workers ready (%s)", g ? g->id : 0,
                             c.ready, c.target, strategy);
                break;
        case SERVICE_RELOADING:
                r = asprintf(&line, "Reloading: generation %" PRIu64 " %u/%u ready, generation %" PRIu64
                             " serving (%s)", g ? g->id : 0, c.ready, c.target, s->live ? s->live->id : 0, strategy);
                break;
        case SERVICE_STOPPING:
                r = asprintf(&line, "Stopping: %u worker%s left", c.left, c.left == 1 ? "" : "s");
                break;
        case SERVICE_STOPPED:
                r = asprintf(&line, "Stopped");
                break;
        case SERVICE_FAILED:
                r = asprintf(&line, "Failed to start");
                break;
        default:
                r = asprintf(&line, "Generation %" PRIu64 " serving: %u/%u workers ready (%s)%s%s%s", g ? g->id : 0,
                             c.ready, c.target, strategy, s->state == SERVICE_SCALING ? ", scaling" : "",
                             c.draining ? "; draining older generations" : "",
                             c.looping ? "; a worker is crash-looping" : "");
        }
        if (r < 0)
                return -ENOMEM;
        *ret = line;
        return 0;
}

/* ---- records ---- */

/* The service's health gates: the configured probe and soak, the soak in progress, and how the last reload
 * ended. */
static int append_health_gates(sd_bus_message *m, const StatusView *v) {
        Service *s = v->service;
        Generation *soaking = s->warm ? s->live : NULL;
        const ReloadRecord *last = &s->last_reload;

        TRY(entry_str(m, "ready_probe", v->config && v->config->probe != PROBE_NONE ? v->config->probe_text : NULL));
        TRY(entry_u64(m, "soak_usec", v->config ? v->config->soak : 0));
        TRY(entry_u64(m, "soak_generation", soaking ? soaking->id : 0));
        TRY(entry_u64(m, "soak_warm_generation", soaking ? s->warm->id : 0));
        TRY(entry_u64(m, "soak_started_usec", soaking ? to_realtime(s->soak_started_at) : 0));
        TRY(entry_u64(m, "soak_deadline_usec", soaking ? to_realtime(s->soak_deadline) : 0));
        TRY(entry_u32(m, "canary_percent", soaking ? s->canary : 0));
        TRY(entry_u64(m, "soak_steered", soaking ? generation_steered(s, soaking) : 0));
        TRY(entry_u64(m, "soak_warm_steered", soaking ? generation_steered(s, s->warm) : 0));
        TRY(entry_str(m, "last_reload_outcome", reload_outcome_to_string(last->outcome)));
        TRY(entry_u64(m, "last_reload_generation", last->generation));
        TRY(entry_u64(m, "last_reload_previous", last->previous));
        TRY(entry_str(m, "last_reload_reason", last->reason));
        TRY(entry_str(m, "last_reload_by", last->by));
        TRY(entry_u64(m, "last_reload_at_usec", to_realtime(last->at)));
        return 0;
}

/* The datagram flow table (drain, migrate with the steering program; else all 0, flows -1). */
static int append_flow_table(sd_bus_message *m, const SteeringStats *st) {
        uint64_t asked = st ? st->flow_hits + st->flow_new : 0;

        TRY(entry_bool(m, "flow_table", st && st->flows_on));
        TRY(entry_u32(m, "flow_table_size", st ? st->flow_max : 0));
        /* The last complete count (a walk of the table, a step per turn of the event loop, started by a
         * status or metrics call) and when it ended (0: none yet). */
        TRY(entry_i64(m, "flow_table_flows", st ? st->flows : -1));
        TRY(entry_u64(m, "flow_table_counted_usec",
                      st && st->flows_counted_at > 0 ? to_realtime(st->flows_counted_at) : 0));
        TRY(entry_u64(m, "flow_table_hits", st ? st->flow_hits : 0));
        TRY(entry_u64(m, "flow_table_new", st ? st->flow_new : 0));
        TRY(entry_u64(m, "flow_table_lost", st ? st->flow_lost : 0));
        /* Of the datagrams looked up, the share that went to a known flow's worker (0 when none was). */
        TRY(entry_double(m, "flow_table_hit_ratio", asked > 0 ? (double) st->flow_hits / (double) asked : 0.0));
        return 0;
}

/* The steering policy: which, since when, set by whom; and under kernel, what the kernel's choice includes
 * (sockets that are not rpsupd's). Without the steering program (handoff, or BPF refused): "none". */
static int append_steering(sd_bus_message *m, const StatusView *v) {
        Service *s = v->service;
        SteeringStats st = { .foreign = -1 };
        bool steered = v->strategy->ops->steering_stats && v->strategy->ops->steering_stats(v->strategy, &st) >= 0;
        char by[32] = "config";
        const char *note = NULL;
        _cleanup_free_ char *text = NULL;

        if (s->steering_by != STEERING_BY_CONFIG)
                snprintf(by, sizeof(by), "uid %u", (unsigned) s->steering_by);
        if (!steered)
                note = "no steering program: the kernel spreads new connections by hash over every listener";
        else if (s->steering == STEERING_KERNEL) {
                if (st.foreign > 0)
                        text = strdup_printf("new connections go by the kernel's choice among every socket of the "
                                             "reuseport group: %" PRIi64 " listener%s not rpsupd's get%s a share, "
                                             "and so do retiring and starting workers", st.foreign,
                                             st.foreign == 1 ? "" : "s", st.foreign == 1 ? "s" : "");
                note = text ?: "new connections go by the kernel's choice among every socket of the reuseport group, "
                               "sockets not rpsupd's and retiring and starting workers' included: no hijack "
                               "protection, no canary, no drain steering";
        } else if (s->steering == STEERING_HASH)
                note = "new connections by their hash over rpsupd's listeners: a client's flow keeps its worker";
        else
                note = "new TCP connections take turns over rpsupd's listeners; datagrams by hash";

        TRY(entry_str(m, "steering", steered ? steering_policy_to_string(s->steering) : "none"));
        TRY(entry_u64(m, "steering_since_usec", steered ? to_realtime(s->steering_since) : 0));
        TRY(entry_str(m, "steering_by", steered ? by : ""));
        TRY(entry_u64(m, "steering_changes", s->steering_changes));
        TRY(entry_str(m, "steering_note", note));
        TRY(entry_u64(m, "steering_kernel_connections", st.kernel));
        TRY(entry_i64(m, "steering_foreign_listeners", steered ? st.foreign : -1));
        TRY(append_flow_table(m, steered ? &st : NULL));
        return 0;
}

/* A shadow policy: which, since when, who set it, and over its window the new connections counted, actual
 * and projected, and the imbalance (max/min) of both over the live generation's serving workers. */
static int append_shadow(sd_bus_message *m, const StatusView *v) {
        Service *s = v->service;
        ShadowSummary sum;
        char by[32] = "";

        shadow_summary(v, &sum);
        if (sum.runs)
                snprintf(by, sizeof(by), "uid %u", (unsigned) s->shadow_by);
        TRY(entry_str(m, "steering_shadow", sum.runs ? steering_policy_to_string(s->shadow) : "off"));
        TRY(entry_u64(m, "steering_shadow_since_usec", sum.runs ? to_realtime(s->shadow_since) : 0));
        TRY(entry_str(m, "steering_shadow_by", by));
        TRY(entry_u64(m, "steering_shadow_connections", sum.actual));
        TRY(entry_u64(m, "steering_shadow_projected", sum.projected));
        TRY(entry_u32(m, "steering_shadow_workers", sum.workers));
        TRY(entry_double(m, "steering_shadow_imbalance_actual", sum.imbalance_actual));
        TRY(entry_double(m, "steering_shadow_imbalance_projected", sum.imbalance_projected));
        return 0;
}

/* Balance: new connections per worker over the last minute (a 5 s ring per slot, balance-ring.c), their
 * imbalance and coefficient of variation over the live generation's serving workers, and next to them the
 * namespace's accept-queue overflows and drops. */
static int append_balance(sd_bus_message *m, const StatusView *v) {
        BalanceSummary sum;
        NetstatCounters net = {};
        bool have_net = netstat_read(&net) >= 0;

        balance_sample(v->balance);
        balance_summary(v->balance, &sum);
        TRY(entry_bool(m, "balance_counted", !sum.uncounted));
        TRY(entry_str(m, "balance_note", sum.uncounted ?: "new connections per worker over the last 60 to 65 s"));
        TRY(entry_u32(m, "balance_workers", (uint32_t) sum.live.n));
        TRY(entry_u64(m, "balance_connections_last_minute", sum.live.total));
        TRY(entry_u64(m, "balance_min_last_minute", sum.live.min));
        TRY(entry_u64(m, "balance_max_last_minute", sum.live.max));
        TRY(entry_double(m, "balance_imbalance", sum.live.imbalance));
        TRY(entry_double(m, "balance_cv", sum.live.cv));
        TRY(entry_i64(m, "listen_overflows", have_net ? (int64_t) net.listen_overflows : -1));
        TRY(entry_i64(m, "listen_drops", have_net ? (int64_t) net.listen_drops : -1));
        return 0;
}

/* The reexecs (rpsupctl reexec, SIGUSR2) of this rpsupd process: counted across its images. */
static int append_reexec(sd_bus_message *m, const ReexecRecord *rx) {
        const ReexecRecord none = {};

        rx = rx ?: &none;
        TRY(entry_u64(m, "reexec_seq", rx->seq));
        TRY(entry_u64(m, "reexecs_done", rx->done));
        TRY(entry_u64(m, "reexecs_failed", rx->failed));
        TRY(entry_bool(m, "reexec_last_failed", rx->last_failed));
        TRY(entry_str(m, "reexec_last_error", rx->last_error));
        TRY(entry_u64(m, "reexec_last_usec", rx->last_usec));
        TRY(entry_u64(m, "reexec_last_at_usec", rx->last_at));
        return 0;
}

int status_append_service(sd_bus_message *m, const StatusView *v) {
        Service *s = v->service;
        _cleanup_free_ char *line = NULL;

        (void) status_line(s, v->strategy->kind, &line);
        TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
        TRY(entry_str(m, "service", v->service_name));
        TRY(entry_str(m, "state", service_state_to_string(s->state)));
        TRY(entry_str(m, "strategy", strategy_kind_to_string(v->strategy->kind)));
        TRY(entry_str(m, "strategy_reason", v->strategy->reason));
        TRY(append_steering(m, v));
        TRY(append_shadow(m, v));
        TRY(entry_u64(m, "live_generation", s->live ? s->live->id : 0));
        TRY(entry_u32(m, "workers", target_workers(v)));
        TRY(entry_u32(m, "ready_workers", ready_workers(s)));
        TRY(entry_u32(m, "generations", (uint32_t) service_count_generations(s)));
        TRY(entry_str(m, "status", line));
        TRY(entry_str(m, "version", RPSUP_VERSION));
        TRY(entry_u32(m, "pid", (uint32_t) getpid()));
        TRY(entry_str(m, "config", v->config_path));
        TRY(entry_str(m, "runtime_directory", v->runtime_dir));
        TRY(entry_str(m, "cgroup", cgroup_tree_path(v->cgroups)));
        TRY(entry_u64(m, "started_usec", v->started_at_realtime));
        TRY(append_reexec(m, v->reexec));
        TRY(entry_u64(m, "reloads_ok", s->counters.reloads_ok));
        TRY(entry_u64(m, "reloads_failed", s->counters.reloads_failed));
        TRY(entry_u64(m, "reloads_refused", s->counters.reloads_refused));
        TRY(entry_u64(m, "reloads_rolled_back", s->counters.reloads_rolled_back));
        TRY(entry_u64(m, "reloads_rolled_back_by_operator", s->counters.reloads_rolled_back_by_operator));
        TRY(entry_u64(m, "probe_failures", s->counters.probe_failures));
        TRY(entry_u64(m, "last_rollback_usec", s->counters.last_rollback_usec));
        TRY(entry_u64(m, "last_reload_usec", s->counters.last_reload_usec));
        TRY(entry_u64(m, "last_reload_own_usec", s->counters.last_reload_own_usec));
        TRY(entry_u64(m, "worker_failures", s->counters.worker_failures));
        TRY(entry_u64(m, "retiring_failures", s->counters.retiring_failures));
        TRY(entry_u64(m, "watchdog_kills", s->counters.watchdog_kills));
        TRY(entry_u64(m, "stop_timeouts", s->counters.stop_timeouts));
        TRY(entry_u64(m, "stall_replacements", s->counters.stall_replacements));
        {
                const Retirement *r = retirements_last_finished(v->retirements);
                TRY(entry_u64(m, "last_retired_generation", r ? r->generation : 0));
                TRY(entry_u64(m, "last_retirement_usec", r ? r->ended - r->began : 0));
                TRY(entry_u64(m, "last_retirement_migrated", r ? r->delta.migrate_req_success : 0));
                TRY(entry_u64(m, "last_retirement_migrate_failed", r ? r->delta.migrate_req_failure : 0));
                TRY(entry_u64(m, "last_retirement_listen_drops", r ? r->delta.listen_drops : 0));
                TRY(entry_u64(m, "last_retirement_listen_overflows", r ? r->delta.listen_overflows : 0));
        }
        TRY(append_health_gates(m, v));
        TRY(append_balance(m, v));
        return sd_bus_message_close_container(m);
}

int status_append_property(sd_bus_message *m, const StatusView *v, const char *property) {
        Service *s = v->service;

        if (streq(property, "Service"))
                return append_text(m, property, v->service_name);
        if (streq(property, "Version"))
                return append_text(m, property, RPSUP_VERSION);
        if (streq(property, "State"))
                return append_text(m, property, service_state_to_string(s->state));
        if (streq(property, "Strategy"))
                return append_text(m, property, strategy_kind_to_string(v->strategy->kind));
        if (streq(property, "Status")) {
                _cleanup_free_ char *line = NULL;
                (void) status_line(s, v->strategy->kind, &line);
                return append_text(m, property, line);
        }
        if (streq(property, "LiveGeneration"))
                return sd_bus_message_append(m, "t", (uint64_t) (s->live ? s->live->id : 0));
        if (streq(property, "Workers"))
                return sd_bus_message_append(m, "u", target_workers(v));
        if (streq(property, "ReadyWorkers"))
                return sd_bus_message_append(m, "u", (uint32_t) ready_workers(s));
        return -ENOENT;
}

int status_append_generations(sd_bus_message *m, const StatusView *v) {
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        FOREACH_GENERATION(g, v->service) {
                usec_t drain = USEC_INFINITY;
                unsigned workers = 0;

                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        if (slot->worker)
                                workers++;
                        if (slot->drain_deadline < drain)
                                drain = slot->drain_deadline;
                        if (slot->worker && slot->worker->state == WORKER_STOPPING &&
                            slot->worker->stop_deadline < drain)
                                drain = slot->worker->stop_deadline;
                }
                TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                TRY(entry_u64(m, "id", g->id));
                TRY(entry_str(m, "state", generation_state_to_string(g->state)));
                TRY(entry_u32(m, "workers", workers));
                TRY(entry_u64(m, "started_usec", to_realtime(g->started_at)));
                TRY(entry_u64(m, "live_usec", to_realtime(g->live_at)));
                TRY(entry_u64(m, "retired_usec", to_realtime(g->retired_at)));
                TRY(entry_u64(m, "drain_deadline_usec", g->state == GENERATION_RETIRING ? to_realtime(drain) : 0));
                TRY(entry_str(m, "failure", g->failure));
                {
                        /* Its processes' CPU time (gone ones included) and memory, where cgroups tell. */
                        uint64_t cpu, mem;
                        if (cgroup_tree_usage(v->cgroups, g->id, &cpu, &mem) >= 0) {
                                TRY(entry_u64(m, "cpu_usec", cpu));
                                if (mem != UINT64_MAX)
                                        TRY(entry_u64(m, "memory_bytes", mem));
                        }
                }
                /* During a soak: new connections steered to the soaking and the warm generation since it
                 * began (the measured canary share). */
                TRY(entry_u64(m, "steered", v->service->warm && (g == v->service->live || g == v->service->warm)
                                                    ? generation_steered(v->service, g) : 0));
                {
                        const Retirement *r = g->state == GENERATION_RETIRING
                                                      ? retirements_get(v->retirements, g->id) : NULL;
                        TRY(entry_u64(m, "kernel_migrated", r ? r->delta.migrate_req_success : 0));
                        TRY(entry_u64(m, "kernel_migrate_failed", r ? r->delta.migrate_req_failure : 0));
                        TRY(entry_u64(m, "kernel_listen_drops", r ? r->delta.listen_drops : 0));
                        TRY(entry_u64(m, "kernel_listen_overflows", r ? r->delta.listen_overflows : 0));
                }
                TRY(sd_bus_message_close_container(m));
        }
        return sd_bus_message_close_container(m);
}

static const char *slot_state(const Slot *slot) {
        if (slot->worker)
                return worker_state_to_string(slot->worker->state);
        if (slot->respawn_at != USEC_INFINITY)
                return "restarting";
        return "empty";
}

int status_append_workers(sd_bus_message *m, const StatusView *v) {
        Strategy *st = v->strategy;
        ShadowSummary shadow;

        shadow_summary(v, &shadow);
        balance_sample(v->balance);
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        FOREACH_GENERATION(g, v->service)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;
                        SlotStats stats = { .accept_queue = -1 };
                        SlotDrainState ds = { .accept_queue = -1, .open_connections = -1 };
                        bool draining = w && w->state == WORKER_DRAINING && slot->retiring;
                        ShadowSlot projection;
                        BalanceSlot balance;

                        (void) st->ops->slot_stats(st, slot, &stats);
                        shadow_slot(v, slot, &stats, &projection);
                        balance_slot(v->balance, slot, v->caller, &balance);
                        /* What a draining worker still has to serve before it is asked to stop. */
                        if (draining && st->ops->slot_drain_state &&
                            st->ops->slot_drain_state(st, slot, w->pid, &ds) < 0)
                                ds = (SlotDrainState) { .accept_queue = -1, .open_connections = -1 };
                        TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                        TRY(entry_u64(m, "generation", g->id));
                        TRY(entry_u32(m, "slot", slot->index));
                        TRY(entry_u32(m, "pid", w ? (uint32_t) w->pid : 0));
                        TRY(entry_str(m, "state", slot_state(slot)));
                        TRY(entry_u64(m, "started_usec", w ? to_realtime(w->started_at) : 0));
                        TRY(entry_u64(m, "ready_usec", w ? to_realtime(w->ready_at) : 0));
                        TRY(entry_u32(m, "restarts", slot->restarts));
                        /* What the slot keeps for its next worker (FDSTORE=1): a slot index's, whatever the
                         * generation. */
                        TRY(entry_u32(m, "stored_fds", (uint32_t) worker_fdstore_count(v->fdstore, slot->index)));
                        TRY(entry_u32(m, "failures", slot->consecutive_failures));
                        TRY(entry_str(m, "last_failure", slot->last_failure));
                        TRY(entry_u32(m, "probe_passes", w ? w->probe_passes : 0));
                        TRY(entry_u32(m, "probe_failures", w ? w->probe_failures : 0));
                        TRY(entry_str(m, "probe_failure", w ? w->probe_failure : NULL));
                        TRY(entry_str(m, "status", w ? w->status_text : NULL));
                        TRY(entry_bool(m, "retiring", slot->retiring));
                        TRY(entry_bool(m, "adopted", w && w->adopted));
                        TRY(entry_i64(m, "accept_queue", stats.accept_queue));
                        TRY(entry_bool(m, "accept_queue_shared", stats.queue_shared));
                        TRY(entry_u64(m, "syns", stats.syns));
                        TRY(entry_i64(m, "connections_last_minute", balance.last_minute));
                        TRY(entry_i64(m, "accept_queue_high_water", balance.queue_high_water));
                        /* In a shadow policy's window: actual and projected new connections, and their
                         * shares of all the slots' (0 without a shadow). */
                        TRY(entry_u64(m, "shadow_actual", projection.actual));
                        TRY(entry_u64(m, "shadow_projected", projection.projected));
                        TRY(entry_double(m, "shadow_actual_share", shadow_share(projection.actual, shadow.actual)));
                        TRY(entry_double(m, "shadow_projected_share",
                                         shadow_share(projection.projected, shadow.projected)));
                        TRY(entry_u64(m, "migrated_accept_queue", stats.migrations[MIGRATION_ACCEPT_QUEUE]));
                        TRY(entry_u64(m, "migrated_request_ack", stats.migrations[MIGRATION_REQUEST_ACK]));
                        TRY(entry_u64(m, "migrated_request_timer", stats.migrations[MIGRATION_REQUEST_TIMER]));
                        TRY(entry_i64(m, "drain_queue", ds.accept_queue));
                        TRY(entry_i64(m, "drain_open_connections", ds.open_connections));
                        TRY(entry_u64(m, "flow_hits", stats.flow_hits));
                        TRY(entry_u64(m, "flow_new", stats.flow_new));
                        /* A draining worker's datagram flows: still reaching it (it is not idle), and since when
                         * they are quiet (-1: no flow seen, or not applicable). */
                        TRY(entry_bool(m, "drain_flows_active", ds.flows && ds.flows_busy));
                        TRY(entry_i64(m, "drain_flows_quiet_usec", ds.flows && ds.flow_quiet != USEC_INFINITY
                                                                           ? (int64_t) ds.flow_quiet : -1));
                        TRY(entry_u64(m, "drain_deadline_usec", draining && slot->drain_deadline != USEC_INFINITY
                                                                        ? to_realtime(slot->drain_deadline) : 0));
                        TRY(sd_bus_message_close_container(m));
                }
        return sd_bus_message_close_container(m);
}

static Slot *find_slot(Service *s, uint64_t id) {
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->id == id)
                                return g->slots[i];
        return NULL;
}

int status_append_listeners(sd_bus_message *m, const StatusView *v) {
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (Listener *l = v->listeners->listeners; l; l = l->next) {
                char addr[SOCKET_ADDRESS_STRING_MAX], owner[96];
                uint32_t depth = 0, backlog = 0;
                bool have_queue = listener_accept_queue(l, &depth, &backlog) >= 0;
                Slot *slot = l->slot_id ? find_slot(v->service, l->slot_id) : NULL;

                if (l->slot_id == 0)
                        snprintf(owner, sizeof(owner), "shared");
                else if (slot)
                        snprintf(owner, sizeof(owner), "generation %" PRIu64 " slot %u", slot->generation->id,
                                 slot->index);
                else
                        /* Its slot is gone: a retired listener kept for handshakes still in flight on it, or
                         * one kept while stopping. */
                        snprintf(owner, sizeof(owner), "retired");
                TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                TRY(entry_str(m, "name", slot ? slot->generation->config->fdname : v->config->fdname));
                TRY(entry_str(m, "address", socket_address_format(&l->address, addr, sizeof(addr))));
                TRY(entry_str(m, "type", socket_type_name(l->address.type)));
                TRY(entry_str(m, "owner", owner));
                TRY(entry_i64(m, "accept_queue", have_queue ? (int64_t) depth : -1));
                TRY(entry_i64(m, "backlog", have_queue ? (int64_t) backlog : -1));
                TRY(entry_str(m, "fdstore_name", l->store_name));
                TRY(entry_bool(m, "socket_unit", l->socket_unit));
                TRY(entry_bool(m, "restored", l->restored));
                TRY(sd_bus_message_close_container(m));
        }
        return sd_bus_message_close_container(m);
}

int status_append_probe(sd_bus_message *m, const ProbeResult *p, uint64_t probed_usec) {
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (StrategyKind k = STRATEGY_HANDOFF; k < _STRATEGY_MAX; k++) {
                TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                TRY(entry_str(m, "name", strategy_kind_to_string(k)));
                TRY(entry_bool(m, "available", p->available[k]));
                TRY(entry_str(m, "reason", p->reason[k]));
                if (k == STRATEGY_HANDOFF) {
                        TRY(entry_str(m, "kernel", p->kernel));
                        TRY(entry_bool(m, "reuseport", p->reuseport));
                        TRY(entry_bool(m, "bpf", p->select_prog));
                        TRY(entry_str(m, "bpf_reason", p->bpf_reason));
                        TRY(entry_i64(m, "tcp_migrate_req", p->migrate_sysctl));
                        TRY(entry_u64(m, "probed_usec", probed_usec));
                }
                TRY(sd_bus_message_close_container(m));
        }
        return sd_bus_message_close_container(m);
}

int status_append_listener_fds(sd_bus_message *m, const StatusView *v) {
        Generation *g = v->service->live;
        Strategy *st = v->strategy;
        int seen[LISTENER_FDS_REPLY_MAX];
        size_t n_seen = 0, n_more = 0;

        if (!g)
                return -EBUSY;
        TRY(sd_bus_message_open_container(m, 'a', "(sh)"));
        for (size_t i = 0; i < g->n_slots; i++) {
                FdList fds = {};
                int r;

                if (g->slots[i]->retiring)
                        continue;
                r = st->ops->slot_fds(st, g->slots[i], &fds);
                if (r < 0)
                        return log_warning_errno(r, "Refusing GetListenerFds: the listeners of worker %u of "
                                                 "generation %" PRIu64 " are not known: %m", g->slots[i]->index,
                                                 g->id);
                for (size_t j = 0; j < fds.n; j++) {
                        bool dup = false;
                        for (size_t k = 0; k < n_seen && !dup; k++)
                                dup = seen[k] == fds.fds[j];
                        if (dup)
                                continue;
                        if (n_seen >= ELEMENTSOF(seen)) {
                                /* Count the rest, for the message: the reply would be incomplete. */
                                n_more++;
                                continue;
                        }
                        seen[n_seen++] = fds.fds[j];
                        TRY(sd_bus_message_append(m, "(sh)", fds.names[j], fds.fds[j]));
                }
        }
        if (n_more > 0)
                return log_warning_errno(-E2BIG, "Refusing GetListenerFds: generation %" PRIu64 " has %zu or more "
                                         "listening sockets, one reply can carry at most %u.", g->id,
                                         n_seen + n_more, LISTENER_FDS_REPLY_MAX);
        return sd_bus_message_close_container(m);
}
