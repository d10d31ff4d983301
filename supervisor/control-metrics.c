/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control-metrics.h"
#include "control-shadow.h"
#include "prometheus-label.h"
#include "rpsup-limits.h"
#include "netstat.h"
#include "worker-fdstore.h"

static void metric_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct SlotSample {
        const Slot *slot;
        SlotStats stats;
} SlotSample;

/* Every slot of every generation with what the kernel says about it, read once for all the families. */
static int slot_samples(const StatusView *v, SlotSample **ret, size_t *ret_n) {
        Strategy *st = v->strategy;
        SlotSample *samples;
        size_t n = 0;

        FOREACH_GENERATION(g, v->service)
                n += g->n_slots;
        samples = calloc(MAX(n, 1u), sizeof(SlotSample));
        if (!samples)
                return -ENOMEM;
        n = 0;
        FOREACH_GENERATION(g, v->service)
                for (size_t i = 0; i < g->n_slots; i++) {
                        samples[n] = (SlotSample) { .slot = g->slots[i], .stats = { .accept_queue = -1 } };
                        (void) st->ops->slot_stats(st, g->slots[i], &samples[n].stats);
                        n++;
                }
        *ret = samples;
        *ret_n = n;
        return 0;
}

/* The service, its generations and workers by state. */
static void write_service(FILE *f, const StatusView *v, const char *svc) {
        Service *s = v->service;
        unsigned by_state[_WORKER_STATE_MAX] = {};

        metric_header(f, "rpsup_info", "gauge", "The service and how it hands listeners over.");
        fprintf(f, "rpsup_info{service=\"%s\",strategy=\"%s\",version=\"%s\"} 1\n", svc,
                strategy_kind_to_string(v->strategy->kind), RPSUP_VERSION);

        metric_header(f, "rpsup_live_generation", "gauge", "The generation that takes new connections.");
        fprintf(f, "rpsup_live_generation{service=\"%s\"} %" PRIu64 "\n", svc, s->live ? s->live->id : 0);

        metric_header(f, "rpsup_generations", "gauge", "Generations by state.");
        for (GenerationState gs = 0; gs < _GENERATION_STATE_MAX; gs++) {
                unsigned n = 0;
                FOREACH_GENERATION(g, s)
                        n += g->state == gs;
                fprintf(f, "rpsup_generations{service=\"%s\",state=\"%s\"} %u\n", svc,
                        generation_state_to_string(gs), n);
        }

        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->worker)
                                by_state[g->slots[i]->worker->state]++;
        metric_header(f, "rpsup_workers", "gauge", "Worker processes by state.");
        for (WorkerState ws = 0; ws < _WORKER_STATE_MAX; ws++)
                fprintf(f, "rpsup_workers{service=\"%s\",state=\"%s\"} %u\n", svc, worker_state_to_string(ws),
                        by_state[ws]);
        metric_header(f, "rpsup_workers_target", "gauge", "Workers the live generation should have.");
        fprintf(f, "rpsup_workers_target{service=\"%s\"} %u\n", svc, service_live_workers(s));

        /* Where the service's cgroups tell: each generation's CPU time and memory. */
        if (!v->cgroups)
                return;
        uint64_t cpu[GENERATIONS_MAX + 1], mem[GENERATIONS_MAX + 1];
        size_t n = 0;
        bool any_memory = false;
        FOREACH_GENERATION(g, s) {
                if (n >= ELEMENTSOF(cpu))
                        break;
                if (cgroup_tree_usage(v->cgroups, g->id, &cpu[n], &mem[n]) < 0)
                        cpu[n] = mem[n] = UINT64_MAX;
                any_memory = any_memory || mem[n] != UINT64_MAX;
                n++;
        }
        metric_header(f, "rpsup_generation_cpu_seconds_total", "counter",
                      "CPU time of a generation's processes, those gone included (its cgroup's cpu.stat).");
        n = 0;
        FOREACH_GENERATION(g, s) {
                if (n >= ELEMENTSOF(cpu))
                        break;
                if (cpu[n] != UINT64_MAX)
                        fprintf(f, "rpsup_generation_cpu_seconds_total{service=\"%s\",generation=\"%" PRIu64 "\"} %.6f\n",
                                svc, g->id, (double) cpu[n] / 1e6);
                n++;
        }
        if (!any_memory)
                return;
        metric_header(f, "rpsup_generation_memory_bytes", "gauge",
                      "Memory of a generation's processes (its cgroup's memory.current).");
        n = 0;
        FOREACH_GENERATION(g, s) {
                if (n >= ELEMENTSOF(cpu))
                        break;
                if (mem[n] != UINT64_MAX)
                        fprintf(f, "rpsup_generation_memory_bytes{service=\"%s\",generation=\"%" PRIu64 "\"} %" PRIu64 "\n",
                                svc, g->id, mem[n]);
                n++;
        }
}

/* The service's counters: reloads, scales, worker starts and failures. */
static void write_counters(FILE *f, const ServiceCounters *c, const char *svc) {
        const struct {
                const char *result;
                uint64_t n;
        } reloads[] = {
                { "promoted", c->reloads_ok },
                { "failed", c->reloads_failed },
                { "rolled_back", c->reloads_rolled_back },
                { "rolled_back_by_operator", c->reloads_rolled_back_by_operator },
                { "refused", c->reloads_refused },
        };

        metric_header(f, "rpsup_reloads_total", "counter",
                      "Reloads, by result: promoted (the new generation took over), failed (it never became "
                      "ready), rolled_back (it failed during its soak), rolled_back_by_operator, refused.");
        for (size_t i = 0; i < ELEMENTSOF(reloads); i++)
                fprintf(f, "rpsup_reloads_total{service=\"%s\",result=\"%s\"} %" PRIu64 "\n", svc,
                        reloads[i].result, reloads[i].n);
        metric_header(f, "rpsup_last_reload_seconds", "gauge",
                      "Time from the reload request until the new generation took all new connections (its soak included).");
        fprintf(f, "rpsup_last_reload_seconds{service=\"%s\"} %.6f\n", svc, (double) c->last_reload_usec / 1e6);
        metric_header(f, "rpsup_last_reload_own_seconds", "gauge",
                      "The part of the last reload that was rpsupd's own work (not the workers' start-up).");
        fprintf(f, "rpsup_last_reload_own_seconds{service=\"%s\"} %.6f\n", svc,
                (double) c->last_reload_own_usec / 1e6);
        metric_header(f, "rpsup_scales_total", "counter", "Scale operations, by result.");
        fprintf(f, "rpsup_scales_total{service=\"%s\",result=\"ok\"} %" PRIu64 "\n", svc, c->scales_ok);
        fprintf(f, "rpsup_scales_total{service=\"%s\",result=\"rolled_back\"} %" PRIu64 "\n", svc,
                c->scales_failed);
        metric_header(f, "rpsup_worker_starts_total", "counter", "Worker processes started.");
        fprintf(f, "rpsup_worker_starts_total{service=\"%s\"} %" PRIu64 "\n", svc, c->worker_starts);
        metric_header(f, "rpsup_worker_failures_total", "counter",
                      "Workers that crashed, exited early, missed their watchdog or stalled.");
        fprintf(f, "rpsup_worker_failures_total{service=\"%s\"} %" PRIu64 "\n", svc, c->worker_failures);
        metric_header(f, "rpsup_worker_retiring_failures_total", "counter",
                      "Workers asked to stop that did not end as asked (another signal, a core dump, an error exit).");
        fprintf(f, "rpsup_worker_retiring_failures_total{service=\"%s\"} %" PRIu64 "\n", svc, c->retiring_failures);
        metric_header(f, "rpsup_watchdog_kills_total", "counter", "Workers replaced for missing WatchdogSec=.");
        fprintf(f, "rpsup_watchdog_kills_total{service=\"%s\"} %" PRIu64 "\n", svc, c->watchdog_kills);
        metric_header(f, "rpsup_stop_timeouts_total", "counter",
                      "Workers that did not exit within StopTimeoutSec= of KillSignal and were sent SIGKILL.");
        fprintf(f, "rpsup_stop_timeouts_total{service=\"%s\"} %" PRIu64 "\n", svc, c->stop_timeouts);
        metric_header(f, "rpsup_stall_replacements_total", "counter",
                      "Workers replaced because their accept queue stopped moving.");
        fprintf(f, "rpsup_stall_replacements_total{service=\"%s\"} %" PRIu64 "\n", svc, c->stall_replacements);
}

/* The steering policy (1 for the one that runs, 0 for the others), its changes, and under kernel what the
 * program left to the kernel and who else listens in the groups. Nothing without the steering program. */
static void write_steering(FILE *f, const StatusView *v, const char *svc) {
        Service *s = v->service;
        SteeringStats st = { .foreign = -1 };

        if (!v->strategy->ops->steering_stats || v->strategy->ops->steering_stats(v->strategy, &st) < 0)
                return;
        metric_header(f, "rpsup_steering_policy", "gauge",
                      "The steering policy of new connections: 1 for the one that runs (Steering=, rpsupctl steer).");
        for (SteeringPolicy p = 0; p < _STEERING_POLICY_MAX; p++)
                fprintf(f, "rpsup_steering_policy{service=\"%s\",policy=\"%s\"} %d\n", svc,
                        steering_policy_to_string(p), p == s->steering);
        metric_header(f, "rpsup_steering_policy_changes_total", "counter",
                      "Steering policy changes (rpsupctl steer, or a reload that changed Steering=).");
        fprintf(f, "rpsup_steering_policy_changes_total{service=\"%s\"} %" PRIu64 "\n", svc, s->steering_changes);
        metric_header(f, "rpsup_steering_kernel_connections_total", "counter",
                      "New connections left to the kernel's own reuseport selection (steering policy kernel).");
        fprintf(f, "rpsup_steering_kernel_connections_total{service=\"%s\"} %" PRIu64 "\n", svc, st.kernel);
        if (st.foreign >= 0) {
                metric_header(f, "rpsup_steering_foreign_listeners", "gauge",
                              "TCP listeners in the service's reuseport groups that are not rpsupd's (under steering "
                              "policy kernel they get new connections).");
                fprintf(f, "rpsup_steering_foreign_listeners{service=\"%s\"} %" PRIi64 "\n", svc, st.foreign);
        }
}

/* Health gates: the soak in progress, the canary's share and what it measured, probes and rollbacks. */
static void write_soak(FILE *f, const StatusView *v, const char *svc) {
        Service *s = v->service;
        Generation *soaking = s->warm ? s->live : NULL;

        metric_header(f, "rpsup_soak_deadline_seconds", "gauge",
                      "When the soak in progress ends (Unix time); 0: no soak.");
        fprintf(f, "rpsup_soak_deadline_seconds{service=\"%s\"} %.3f\n", svc,
                soaking ? (double) to_realtime(s->soak_deadline) / 1e6 : 0.0);
        metric_header(f, "rpsup_canary_percent", "gauge",
                      "Percent of new connections for the soaking generation; 0: no canary (all, or no soak).");
        fprintf(f, "rpsup_canary_percent{service=\"%s\"} %u\n", svc, soaking ? s->canary : 0);
        metric_header(f, "rpsup_steered_connections_total", "counter",
                      "During a soak: new connections steered to the soaking and the warm generation since it began.");
        if (soaking && v->strategy->kind != STRATEGY_HANDOFF) {
                fprintf(f, "rpsup_steered_connections_total{service=\"%s\",generation=\"%" PRIu64
                        "\",state=\"soaking\"} %" PRIu64 "\n", svc, soaking->id, generation_steered(s, soaking));
                fprintf(f, "rpsup_steered_connections_total{service=\"%s\",generation=\"%" PRIu64
                        "\",state=\"warm\"} %" PRIu64 "\n", svc, s->warm->id, generation_steered(s, s->warm));
        }
        metric_header(f, "rpsup_probe_failures_total", "counter", "Readiness probe attempts (ReadyProbe=) that failed.");
        fprintf(f, "rpsup_probe_failures_total{service=\"%s\"} %" PRIu64 "\n", svc, s->counters.probe_failures);
        metric_header(f, "rpsup_last_rollback_seconds", "gauge",
                      "The last automatic rollback, rpsupd's part: from the failure's event to new connections steered back.");
        fprintf(f, "rpsup_last_rollback_seconds{service=\"%s\"} %.6f\n", svc,
                (double) s->counters.last_rollback_usec / 1e6);
}

static int write_listeners(FILE *f, ListenerSet *set, const char *svc) {
        metric_header(f, "rpsup_listener_accept_queue", "gauge", "Connections waiting in a listener's accept queue.");
        for (Listener *l = set->listeners; l; l = l->next) {
                char addr[SOCKET_ADDRESS_STRING_MAX];
                _cleanup_free_ char *address = NULL;
                uint32_t depth, backlog;
                if (listener_accept_queue(l, &depth, &backlog) < 0)
                        continue;
                address = prometheus_label_value(socket_address_format(&l->address, addr, sizeof(addr)));
                if (!address)
                        return -ENOMEM;
                fprintf(f, "rpsup_listener_accept_queue{service=\"%s\",address=\"%s\",slot_id=\"%" PRIu64 "\"} %u\n",
                        svc, address, l->slot_id, depth);
        }
        return 0;
}

/* Each family's samples in one group under its HELP and TYPE: parsers file samples that come after another
 * family's header under a family of their own. */
static void write_slots(FILE *f, const SlotSample *samples, size_t n_samples, StrategyKind kind, const char *svc) {
        static const char *const kinds[_MIGRATION_KIND_MAX] = {
                [MIGRATION_ACCEPT_QUEUE] = "accept_queue",
                [MIGRATION_REQUEST_ACK] = "request_ack",
                [MIGRATION_REQUEST_TIMER] = "request_timer",
        };

        metric_header(f, "rpsup_worker_accept_queue", "gauge", "Connections waiting for a worker.");
        for (size_t i = 0; i < n_samples; i++) {
                const SlotSample *x = &samples[i];
                if (x->stats.accept_queue >= 0 && !x->stats.queue_shared)
                        fprintf(f, "rpsup_worker_accept_queue{service=\"%s\",generation=\"%" PRIu64
                                "\",slot=\"%u\"} %" PRIi64 "\n", svc, x->slot->generation->id, x->slot->index,
                                x->stats.accept_queue);
        }
        metric_header(f, "rpsup_worker_syns_total", "counter", "New connections steered to a worker slot.");
        for (size_t i = 0; i < n_samples && kind != STRATEGY_HANDOFF; i++)
                fprintf(f, "rpsup_worker_syns_total{service=\"%s\",generation=\"%" PRIu64 "\",slot=\"%u\"} %" PRIu64
                        "\n", svc, samples[i].slot->generation->id, samples[i].slot->index, samples[i].stats.syns);
        metric_header(f, "rpsup_worker_migrations_total", "counter",
                      "Connections the kernel migrated into a worker slot's listener, by kind.");
        for (size_t i = 0; i < n_samples && kind != STRATEGY_HANDOFF; i++)
                for (MigrationKind k = 0; k < _MIGRATION_KIND_MAX; k++)
                        fprintf(f, "rpsup_worker_migrations_total{service=\"%s\",generation=\"%" PRIu64
                                "\",slot=\"%u\",kind=\"%s\"} %" PRIu64 "\n", svc, samples[i].slot->generation->id,
                                samples[i].slot->index, kinds[k], samples[i].stats.migrations[k]);
}

/* What each slot keeps for its next worker (FDSTORE=1): slots that keep nothing are not listed. */
static int write_fdstore(FILE *f, const StatusView *v, const char *svc) {
        _cleanup_free_ unsigned *slots = NULL;
        _cleanup_free_ size_t *counts = NULL;
        size_t n = 0;
        int r;

        r = worker_fdstore_slots(v->fdstore, &slots, &counts, &n);
        metric_header(f, "rpsup_worker_stored_fds", "gauge",
                      "File descriptors a worker slot keeps for its next worker (FDSTORE=1).");
        for (size_t i = 0; i < n; i++)
                fprintf(f, "rpsup_worker_stored_fds{service=\"%s\",slot=\"%u\"} %zu\n", svc, slots[i], counts[i]);
        return r;
}

static void write_imbalance(FILE *f, const char *svc, const char *kind, double x) {
        if (x == SHADOW_IMBALANCE_UNBOUNDED)
                fprintf(f, "rpsup_steering_shadow_imbalance{service=\"%s\",kind=\"%s\"} +Inf\n", svc, kind);
        else
                fprintf(f, "rpsup_steering_shadow_imbalance{service=\"%s\",kind=\"%s\"} %.4f\n", svc, kind, x);
}

/* A shadow policy (rpsupctl steer --shadow): which runs (none: every sample 0), the connections one would
 * have sent each worker (a counter, as rpsup_worker_syns_total counts the actual ones), and while one runs,
 * both shares over its window and the imbalance of both. Nothing without the steering program. */
static void write_shadow(FILE *f, const StatusView *v, const SlotSample *samples, size_t n_samples,
                         const char *svc) {
        Service *s = v->service;
        SteeringStats st = { .foreign = -1 };
        ShadowSummary sum;

        if (!v->strategy->ops->steering_stats || v->strategy->ops->steering_stats(v->strategy, &st) < 0)
                return;
        shadow_summary(v, &sum);
        metric_header(f, "rpsup_steering_shadow", "gauge",
                      "The shadow policy (rpsupctl steer --shadow): 1 for the one computed but not enforced.");
        for (SteeringPolicy p = 0; p < _STEERING_POLICY_MAX; p++)
                if (p != STEERING_KERNEL)
                        fprintf(f, "rpsup_steering_shadow{service=\"%s\",policy=\"%s\"} %d\n", svc,
                                steering_policy_to_string(p), sum.runs && p == s->shadow);
        /* As rpsup_worker_syns_total: from the slot's listeners' creation; it grows only while a shadow runs. */
        metric_header(f, "rpsup_worker_connections_projected_total", "counter",
                      "New connections a shadow policy would have steered to a worker slot.");
        for (size_t i = 0; i < n_samples; i++)
                fprintf(f, "rpsup_worker_connections_projected_total{service=\"%s\",generation=\"%" PRIu64
                        "\",slot=\"%u\"} %" PRIu64 "\n", svc, samples[i].slot->generation->id,
                        samples[i].slot->index, samples[i].stats.projected);
        if (!sum.runs)
                return;
        metric_header(f, "rpsup_steering_shadow_start_time_seconds", "gauge",
                      "When the shadow policy's window began (set, set again, or the policy changed).");
        fprintf(f, "rpsup_steering_shadow_start_time_seconds{service=\"%s\"} %.3f\n", svc,
                (double) to_realtime(s->shadow_since) / 1e6);
        metric_header(f, "rpsup_steering_shadow_imbalance", "gauge",
                      "Max/min of new connections over the live generation's serving workers in the shadow "
                      "policy's window: as steered (actual) and as the shadow policy would have (projected).");
        write_imbalance(f, svc, "actual", sum.imbalance_actual);
        write_imbalance(f, svc, "projected", sum.imbalance_projected);
        metric_header(f, "rpsup_worker_shadow_share", "gauge",
                      "A worker slot's share of new connections in the shadow policy's window, actual and "
                      "projected.");
        for (size_t i = 0; i < n_samples; i++) {
                ShadowSlot x;

                shadow_slot(v, samples[i].slot, &samples[i].stats, &x);
                fprintf(f, "rpsup_worker_shadow_share{service=\"%s\",generation=\"%" PRIu64 "\",slot=\"%u\","
                        "kind=\"actual\"} %.6f\n", svc, samples[i].slot->generation->id, samples[i].slot->index,
                        shadow_share(x.actual, sum.actual));
                fprintf(f, "rpsup_worker_shadow_share{service=\"%s\",generation=\"%" PRIu64 "\",slot=\"%u\","
                        "kind=\"projected\"} %.6f\n", svc, samples[i].slot->generation->id,
                        samples[i].slot->index, shadow_share(x.projected, sum.projected));
        }
}

/* The datagram flow table (FlowTableSize=): its size, the flows in it, what it steered, and per worker the
 * datagrams it steered to flows the worker had served. Nothing without the steering program. */
static void write_flows(FILE *f, const StatusView *v, const SlotSample *samples, size_t n_samples, const char *svc) {
        SteeringStats st = { .foreign = -1, .flows = -1 };
        uint64_t asked;

        if (!v->strategy->ops->steering_stats || v->strategy->ops->steering_stats(v->strategy, &st) < 0)
                return;
        asked = st.flow_hits + st.flow_new; /* a lost flow's datagram is entered again: counted in new */
        metric_header(f, "rpsup_flow_table_enabled", "gauge",
                      "1 while datagrams of known flows go to the worker that served them (FlowTableSize= > 0, "
                      "steering policy not kernel).");
        fprintf(f, "rpsup_flow_table_enabled{service=\"%s\"} %d\n", svc, st.flows_on);
        metric_header(f, "rpsup_flow_table_size", "gauge",
                      "Flows the flow table can hold (its size when it was created; least recently seen forgotten "
                      "first).");
        fprintf(f, "rpsup_flow_table_size{service=\"%s\"} %" PRIu32 "\n", svc, st.flow_max);
        if (st.flows >= 0) {
                metric_header(f, "rpsup_flow_table_flows", "gauge",
                              "Flows in the flow table at the last complete count (a walk of the table, a step per "
                              "turn of rpsupd's event loop, started by a scrape at most every 2 s).");
                fprintf(f, "rpsup_flow_table_flows{service=\"%s\"} %" PRIi64 "\n", svc, st.flows);
        }
        metric_header(f, "rpsup_flow_table_hits_total", "counter",
                      "Datagrams of a known flow steered to the worker that served it.");
        fprintf(f, "rpsup_flow_table_hits_total{service=\"%s\"} %" PRIu64 "\n", svc, st.flow_hits);
        metric_header(f, "rpsup_flow_table_new_total", "counter",
                      "Flows entered in the flow table (their first datagram, steered by the policy).");
        fprintf(f, "rpsup_flow_table_new_total{service=\"%s\"} %" PRIu64 "\n", svc, st.flow_new);
        metric_header(f, "rpsup_flow_table_lost_total", "counter",
                      "Datagrams of a known flow whose worker's listener was gone: steered afresh and entered again "
                      "(counted in rpsup_flow_table_new_total too).");
        fprintf(f, "rpsup_flow_table_lost_total{service=\"%s\"} %" PRIu64 "\n", svc, st.flow_lost);
        metric_header(f, "rpsup_flow_table_hit_ratio", "gauge",
                      "Of the datagrams looked up in the flow table, the share that went to a known flow's worker "
                      "(0 when none was).");
        fprintf(f, "rpsup_flow_table_hit_ratio{service=\"%s\"} %.6f\n", svc,
                asked > 0 ? (double) st.flow_hits / (double) asked : 0.0);
        metric_header(f, "rpsup_worker_flow_hits_total", "counter",
                      "Datagrams the flow table steered to a worker slot (of flows it had served).");
        for (size_t i = 0; i < n_samples; i++)
                fprintf(f, "rpsup_worker_flow_hits_total{service=\"%s\",generation=\"%" PRIu64 "\",slot=\"%u\"} %"
                        PRIu64 "\n", svc, samples[i].slot->generation->id, samples[i].slot->index,
                        samples[i].stats.flow_hits);
}

static void write_last_retirement(FILE *f, const Retirement *r, const char *svc) {
        metric_header(f, "rpsup_last_retirement_seconds", "gauge",
                      "How long the last retired generation took to be gone.");
        fprintf(f, "rpsup_last_retirement_seconds{service=\"%s\"} %.3f\n", svc,
                r ? (double) (r->ended - r->began) / 1e6 : 0.0);
        metric_header(f, "rpsup_last_retirement_kernel", "gauge",
                      "The kernel's TcpExt counters over the last retirement: migrated, migrate_failed, "
                      "listen_drops, listen_overflows.");
        fprintf(f, "rpsup_last_retirement_kernel{service=\"%s\",counter=\"migrated\"} %" PRIu64 "\n", svc,
                r ? r->delta.migrate_req_success : 0);
        fprintf(f, "rpsup_last_retirement_kernel{service=\"%s\",counter=\"migrate_failed\"} %" PRIu64 "\n",
                svc, r ? r->delta.migrate_req_failure : 0);
        fprintf(f, "rpsup_last_retirement_kernel{service=\"%s\",counter=\"listen_drops\"} %" PRIu64 "\n",
                svc, r ? r->delta.listen_drops : 0);
        fprintf(f, "rpsup_last_retirement_kernel{service=\"%s\",counter=\"listen_overflows\"} %" PRIu64
                "\n", svc, r ? r->delta.listen_overflows : 0);
}

static void write_ratio(FILE *f, const char *name, const char *svc, double x) {
        if (x == BALANCE_IMBALANCE_UNBOUNDED)
                fprintf(f, "%s{service=\"%s\"} +Inf\n", name, svc);
        else
                fprintf(f, "%s{service=\"%s\"} %.4f\n", name, svc, x);
}

/* Balance (balance.c): per worker, new connections over the last minute and the deepest accept queue sampled
 * since the caller's last scrape (this one resets the caller's only), and over the live generation's serving
 * workers the imbalance and coefficient of variation of the per-minute counts. The counts only where the program counts them
 * (drain, migrate; not under steering policy kernel). */
_Static_assert(BALANCE_SCRAPERS_MAX == 8, "rpsup_worker_accept_queue_high_water's HELP names the number");

static void write_balance(FILE *f, const StatusView *v, const SlotSample *samples, size_t n_samples,
                          const char *svc) {
        BalanceSummary sum;

        balance_summary(v->balance, &sum);
        if (!sum.uncounted) {
                metric_header(f, "rpsup_worker_connections_last_minute", "gauge",
                              "New connections steered to a worker slot over the last minute (60 to 65 s).");
                for (size_t i = 0; i < n_samples; i++) {
                        BalanceSlot x;

                        balance_slot(v->balance, samples[i].slot, v->caller, &x);
                        if (x.last_minute >= 0)
                                fprintf(f, "rpsup_worker_connections_last_minute{service=\"%s\",generation=\"%"
                                        PRIu64 "\",slot=\"%u\"} %" PRIi64 "\n", svc, samples[i].slot->generation->id,
                                        samples[i].slot->index, x.last_minute);
                }
                metric_header(f, "rpsup_balance_imbalance", "gauge",
                              "Max/min of the live generation's serving workers' new connections over the last "
                              "minute: 1 is even, +Inf when a worker got none while another got some, 0 when none "
                              "got any.");
                write_ratio(f, "rpsup_balance_imbalance", svc, sum.live.imbalance);
                metric_header(f, "rpsup_balance_cv", "gauge",
                              "Coefficient of variation (standard deviation over mean) of the live generation's "
                              "serving workers' new connections over the last minute: 0 is even.");
                write_ratio(f, "rpsup_balance_cv", svc, sum.live.cv);
        }
        metric_header(f, "rpsup_worker_accept_queue_high_water", "gauge",
                      "The deepest a worker slot's own accept queue was seen since this uid's last scrape "
                      "(sampled). Kept per scraping uid: a scrape resets only its own uid's marks. A uid that "
                      "has not scraped, or whose marks went to a ninth scraping uid (8 are kept, the least "
                      "recent goes), gets those since the slot was first seen.");
        for (size_t i = 0; i < n_samples; i++) {
                BalanceSlot x;

                balance_slot(v->balance, samples[i].slot, v->caller, &x);
                if (x.queue_high_water >= 0)
                        fprintf(f, "rpsup_worker_accept_queue_high_water{service=\"%s\",generation=\"%" PRIu64
                                "\",slot=\"%u\"} %" PRIi64 "\n", svc, samples[i].slot->generation->id,
                                samples[i].slot->index, x.queue_high_water);
        }
}

/* The network namespace's TcpExt counters, when /proc tells them. */
static void write_kernel(FILE *f, const char *svc) {
        NetstatCounters net = {};

        if (netstat_read(&net) < 0)
                return;
        metric_header(f, "rpsup_kernel_listen_overflows_total", "counter",
                      "TcpExtListenOverflows of rpsupd's network namespace: accept queues that were full.");
        fprintf(f, "rpsup_kernel_listen_overflows_total{service=\"%s\"} %" PRIu64 "\n", svc, net.listen_overflows);
        metric_header(f, "rpsup_kernel_listen_drops_total", "counter",
                      "TcpExtListenDrops of rpsupd's network namespace: SYNs or connections dropped.");
        fprintf(f, "rpsup_kernel_listen_drops_total{service=\"%s\"} %" PRIu64 "\n", svc, net.listen_drops);
        metric_header(f, "rpsup_kernel_migrate_req_total", "counter",
                      "TcpExtTCPMigrateReqSuccess/Failure of rpsupd's network namespace.");
        fprintf(f, "rpsup_kernel_migrate_req_total{service=\"%s\",result=\"success\"} %" PRIu64 "\n", svc,
                net.migrate_req_success);
        fprintf(f, "rpsup_kernel_migrate_req_total{service=\"%s\",result=\"failure\"} %" PRIu64 "\n", svc,
                net.migrate_req_failure);
}

int control_metrics(const StatusView *v, char **ret) {
        _cleanup_free_ char *svc = prometheus_label_value(v->service_name), *buf = NULL;
        _cleanup_free_ SlotSample *samples = NULL;
        size_t n_samples = 0, size = 0;
        FILE *f;
        int r;

        if (!svc || slot_samples(v, &samples, &n_samples) < 0)
                return -ENOMEM;
        balance_sample(v->balance);
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        write_service(f, v, svc);
        write_counters(f, &v->service->counters, svc);
        write_soak(f, v, svc);
        write_steering(f, v, svc);
        r = write_listeners(f, v->listeners, svc);
        write_slots(f, samples, n_samples, v->strategy->kind, svc);
        if (r >= 0)
                r = write_fdstore(f, v, svc);
        write_shadow(f, v, samples, n_samples, svc);
        write_flows(f, v, samples, n_samples, svc);
        write_last_retirement(f, retirements_last_finished(v->retirements), svc);
        write_balance(f, v, samples, n_samples, svc);
        write_kernel(f, svc);

        if (fclose(f) != 0 || r < 0)
                return -ENOMEM;
        /* Scraped: the caller's next high-water marks are of the time from now (others' stay). */
        balance_scraped(v->balance, v->caller);
        *ret = TAKE_PTR(buf);
        return 0;
}
