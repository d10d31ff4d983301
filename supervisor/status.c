/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "manager.h"
#include "netstat.h"
#include "probe.h"
#include "rpsup-limits.h"
#include "status.h"
#include "strategy.h"
#include "utf8.h"

/* Monotonic timestamps (what the state machine keeps) as wall-clock microseconds (what people read). */
static uint64_t to_realtime(usec_t t) {
        usec_t mono, real;

        if (t == 0 || t == USEC_INFINITY)
                return 0;
        mono = now_usec(CLOCK_MONOTONIC);
        real = now_usec(CLOCK_REALTIME);
        return t >= mono ? real + (t - mono) : real - (mono - t);
}

static int entry_begin(sd_bus_message *m, const char *key, const char *type) {
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        return sd_bus_message_open_container(m, 'v', type);
}

static int entry_end(sd_bus_message *m) {
        int r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

#define DEFINE_ENTRY(name, ctype, sig)                                                          \
        static int name(sd_bus_message *m, const char *key, ctype v) {                         \
                int r = entry_begin(m, key, sig);                                               \
                if (r < 0)                                                                      \
                        return r;                                                               \
                r = sd_bus_message_append_basic(m, sig[0], &v);                                 \
                return r < 0 ? r : entry_end(m);                                                \
        }

DEFINE_ENTRY(entry_u64, uint64_t, "t")
DEFINE_ENTRY(entry_i64, int64_t, "x")
DEFINE_ENTRY(entry_u32, uint32_t, "u")

static int entry_bool(sd_bus_message *m, const char *key, bool b) {
        int v = b, r = entry_begin(m, key, "b");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 'b', &v);
        return r < 0 ? r : entry_end(m);
}

static int entry_str(sd_bus_message *m, const char *key, const char *s) {
        _cleanup_free_ char *valid = NULL;
        int r;

        /* Text is validated where it enters (worker notifications, the config); should something else slip
         * through, sd-bus would refuse the whole reply for one string that is not UTF-8. */
        if (s && !utf8_is_valid(s)) {
                log_ratelimit(LOG_WARNING, "Status field \"%s\" is not valid UTF-8; sending it with U+FFFD in "
                              "place of the invalid bytes.", key);
                valid = utf8_sanitize_dup(s, 0);
                if (!valid)
                        return -ENOMEM;
                s = valid;
        }
        r = entry_begin(m, key, "s");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 's', s ?: "");
        return r < 0 ? r : entry_end(m);
}

#define TRY(x)                          \
        do {                            \
                int _r_ = (x);          \
                if (_r_ < 0)            \
                        return _r_;     \
        } while (0)

static unsigned ready_workers(Service *s) {
        unsigned n = 0;

        if (!s->live)
                return 0;
        for (size_t i = 0; i < s->live->n_slots; i++)
                n += slot_is_serving(s->live->slots[i]);
        return n;
}

int status_append_service(sd_bus_message *m, Manager *manager) {
        Service *s = manager->service;
        _cleanup_free_ char *line = NULL;

        (void) manager_status_line(manager, &line);
        TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
        TRY(entry_str(m, "service", manager->service_name));
        TRY(entry_str(m, "state", service_state_to_string(s->state)));
        TRY(entry_str(m, "strategy", strategy_kind_to_string(manager->strategy->kind)));
        TRY(entry_str(m, "strategy_reason", manager->strategy->reason));
        TRY(entry_u64(m, "live_generation", s->live ? s->live->id : 0));
        TRY(entry_u32(m, "workers", s->live ? service_live_workers(s) : (manager->config ? manager->config->workers : 0)));
        TRY(entry_u32(m, "ready_workers", ready_workers(s)));
        TRY(entry_u32(m, "generations", (uint32_t) service_count_generations(s)));
        TRY(entry_str(m, "status", line));
        TRY(entry_str(m, "version", RPSUP_VERSION));
        TRY(entry_u32(m, "pid", (uint32_t) getpid()));
        TRY(entry_str(m, "config", manager->config_path));
        TRY(entry_str(m, "runtime_directory", manager->runtime_dir));
        TRY(entry_u64(m, "started_usec", manager->started_at_realtime));
        TRY(entry_u64(m, "reloads_ok", s->counters.reloads_ok));
        TRY(entry_u64(m, "reloads_failed", s->counters.reloads_failed));
        TRY(entry_u64(m, "reloads_refused", s->counters.reloads_refused));
        TRY(entry_u64(m, "last_reload_usec", s->counters.last_reload_usec));
        TRY(entry_u64(m, "last_reload_own_usec", s->counters.last_reload_own_usec));
        TRY(entry_u64(m, "worker_failures", s->counters.worker_failures));
        TRY(entry_u64(m, "retiring_failures", s->counters.retiring_failures));
        TRY(entry_u64(m, "watchdog_kills", s->counters.watchdog_kills));
        TRY(entry_u64(m, "stall_replacements", s->counters.stall_replacements));
        {
                const Retirement *r = retirements_last_finished(&manager->retirements);
                TRY(entry_u64(m, "last_retired_generation", r ? r->generation : 0));
                TRY(entry_u64(m, "last_retirement_usec", r ? r->ended - r->began : 0));
                TRY(entry_u64(m, "last_retirement_migrated", r ? r->delta.migrate_req_success : 0));
                TRY(entry_u64(m, "last_retirement_migrate_failed", r ? r->delta.migrate_req_failure : 0));
                TRY(entry_u64(m, "last_retirement_listen_drops", r ? r->delta.listen_drops : 0));
                TRY(entry_u64(m, "last_retirement_listen_overflows", r ? r->delta.listen_overflows : 0));
        }
        return sd_bus_message_close_container(m);
}

int status_append_generations(sd_bus_message *m, Manager *manager) {
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (Generation *g = manager->service->generations; g; g = g->next) {
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
                        const Retirement *r = g->state == GENERATION_RETIRING
                                                      ? retirements_get(&manager->retirements, g->id) : NULL;
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

int status_append_workers(sd_bus_message *m, Manager *manager) {
        Strategy *st = manager->strategy;

        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (Generation *g = manager->service->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;
                        SlotStats stats = { .accept_queue = -1 };

                        (void) st->ops->slot_stats(st, slot, &stats);
                        TRY(sd_bus_message_open_container(m, 'a', "{sv}"));
                        TRY(entry_u64(m, "generation", g->id));
                        TRY(entry_u32(m, "slot", slot->index));
                        TRY(entry_u32(m, "pid", w ? (uint32_t) w->pid : 0));
                        TRY(entry_str(m, "state", slot_state(slot)));
                        TRY(entry_u64(m, "started_usec", w ? to_realtime(w->started_at) : 0));
                        TRY(entry_u64(m, "ready_usec", w ? to_realtime(w->ready_at) : 0));
                        TRY(entry_u32(m, "restarts", slot->restarts));
                        TRY(entry_u32(m, "failures", slot->failures));
                        TRY(entry_str(m, "last_failure", slot->last_failure));
                        TRY(entry_str(m, "status", w ? w->status_text : NULL));
                        TRY(entry_bool(m, "retiring", slot->retiring));
                        TRY(entry_bool(m, "adopted", w && w->adopted));
                        TRY(entry_i64(m, "accept_queue", stats.accept_queue));
                        TRY(entry_bool(m, "accept_queue_shared", stats.queue_shared));
                        TRY(entry_u64(m, "syns", stats.syns));
                        TRY(entry_u64(m, "migrated_accept_queue", stats.migrations[MIGRATION_ACCEPT_QUEUE]));
                        TRY(entry_u64(m, "migrated_request_ack", stats.migrations[MIGRATION_REQUEST_ACK]));
                        TRY(entry_u64(m, "migrated_request_timer", stats.migrations[MIGRATION_REQUEST_TIMER]));
                        TRY(sd_bus_message_close_container(m));
                }
        return sd_bus_message_close_container(m);
}

static Slot *find_slot(Service *s, uint64_t id) {
        for (Generation *g = s->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->id == id)
                                return g->slots[i];
        return NULL;
}

int status_append_listeners(sd_bus_message *m, Manager *manager) {
        TRY(sd_bus_message_open_container(m, 'a', "a{sv}"));
        for (Listener *l = manager->listeners->listeners; l; l = l->next) {
                char addr[SOCKET_ADDRESS_STRING_MAX], owner[96];
                uint32_t depth = 0, backlog = 0;
                bool have_queue = listener_accept_queue(l, &depth, &backlog) >= 0;
                Slot *slot = l->slot_id ? find_slot(manager->service, l->slot_id) : NULL;

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
                TRY(entry_str(m, "name", slot ? slot->generation->config->fdname : manager->config->fdname));
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

int status_append_listener_fds(sd_bus_message *m, Manager *manager) {
        Generation *g = manager->service->live;
        Strategy *st = manager->strategy;
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

/* ---- Prometheus ---- */

static void metric_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text exposition format 0.0.4 has it: UTF-8, with backslash, double quote and
 * newline escaped. A service name can hold them (systemd's %i keeps escapes such as \x2d). */
static char *label_value(const char *s) {
        _cleanup_free_ char *valid = utf8_sanitize_dup(s ?: "", 0);
        char *buf, *o;

        if (!valid)
                return NULL;
        buf = o = malloc(strlen(valid) * 2 + 1);
        if (!buf)
                return NULL;
        for (const char *p = valid; *p; p++) {
                if (*p == '\\' || *p == '"' || *p == '\n')
                        *o++ = '\\';
                *o++ = *p == '\n' ? 'n' : *p;
        }
        *o = 0;
        return buf;
}

typedef struct SlotSample {
        const Slot *slot;
        SlotStats stats;
} SlotSample;

/* Every slot of every generation with what the kernel says about it, read once for all the families. */
static int slot_samples(Manager *manager, SlotSample **ret, size_t *ret_n) {
        Strategy *st = manager->strategy;
        SlotSample *samples;
        size_t n = 0;

        for (Generation *g = manager->service->generations; g; g = g->next)
                n += g->n_slots;
        samples = calloc(MAX(n, 1u), sizeof(SlotSample));
        if (!samples)
                return -ENOMEM;
        n = 0;
        for (Generation *g = manager->service->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++) {
                        samples[n] = (SlotSample) { .slot = g->slots[i], .stats = { .accept_queue = -1 } };
                        (void) st->ops->slot_stats(st, g->slots[i], &samples[n].stats);
                        n++;
                }
        *ret = samples;
        *ret_n = n;
        return 0;
}

int status_metrics(Manager *manager, char **ret) {
        Service *s = manager->service;
        Strategy *st = manager->strategy;
        _cleanup_free_ char *svc = label_value(manager->service_name);
        _cleanup_free_ SlotSample *samples = NULL;
        size_t n_samples = 0;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        unsigned by_state[_WORKER_STATE_MAX] = {};
        NetstatCounters net = {};

        if (!svc || slot_samples(manager, &samples, &n_samples) < 0)
                return -ENOMEM;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        metric_header(f, "rpsup_info", "gauge", "The service and how it hands listeners over.");
        fprintf(f, "rpsup_info{service=\"%s\",strategy=\"%s\",version=\"%s\"} 1\n", svc,
                strategy_kind_to_string(st->kind), RPSUP_VERSION);

        metric_header(f, "rpsup_live_generation", "gauge", "The generation that takes new connections.");
        fprintf(f, "rpsup_live_generation{service=\"%s\"} %" PRIu64 "\n", svc, s->live ? s->live->id : 0);

        metric_header(f, "rpsup_generations", "gauge", "Generations by state.");
        for (GenerationState gs = 0; gs < _GENERATION_STATE_MAX; gs++) {
                unsigned n = 0;
                for (Generation *g = s->generations; g; g = g->next)
                        n += g->state == gs;
                fprintf(f, "rpsup_generations{service=\"%s\",state=\"%s\"} %u\n", svc,
                        generation_state_to_string(gs), n);
        }

        for (Generation *g = s->generations; g; g = g->next)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->worker)
                                by_state[g->slots[i]->worker->state]++;
        metric_header(f, "rpsup_workers", "gauge", "Worker processes by state.");
        for (WorkerState ws = 0; ws < _WORKER_STATE_MAX; ws++)
                fprintf(f, "rpsup_workers{service=\"%s\",state=\"%s\"} %u\n", svc, worker_state_to_string(ws),
                        by_state[ws]);
        metric_header(f, "rpsup_workers_target", "gauge", "Workers the live generation should have.");
        fprintf(f, "rpsup_workers_target{service=\"%s\"} %u\n", svc, service_live_workers(s));

        metric_header(f, "rpsup_reloads_total", "counter", "Reloads, by result.");
        fprintf(f, "rpsup_reloads_total{service=\"%s\",result=\"ok\"} %" PRIu64 "\n", svc, s->counters.reloads_ok);
        fprintf(f, "rpsup_reloads_total{service=\"%s\",result=\"rolled_back\"} %" PRIu64 "\n", svc,
                s->counters.reloads_failed);
        fprintf(f, "rpsup_reloads_total{service=\"%s\",result=\"refused\"} %" PRIu64 "\n", svc,
                s->counters.reloads_refused);
        metric_header(f, "rpsup_last_reload_seconds", "gauge",
                      "Time from the reload request until the new generation took all new connections.");
        fprintf(f, "rpsup_last_reload_seconds{service=\"%s\"} %.6f\n", svc,
                (double) s->counters.last_reload_usec / 1e6);
        metric_header(f, "rpsup_last_reload_own_seconds", "gauge",
                      "The part of the last reload that was rpsupd's own work (not the workers' start-up).");
        fprintf(f, "rpsup_last_reload_own_seconds{service=\"%s\"} %.6f\n", svc,
                (double) s->counters.last_reload_own_usec / 1e6);
        metric_header(f, "rpsup_scales_total", "counter", "Scale operations, by result.");
        fprintf(f, "rpsup_scales_total{service=\"%s\",result=\"ok\"} %" PRIu64 "\n", svc, s->counters.scales_ok);
        fprintf(f, "rpsup_scales_total{service=\"%s\",result=\"rolled_back\"} %" PRIu64 "\n", svc,
                s->counters.scales_failed);
        metric_header(f, "rpsup_worker_starts_total", "counter", "Worker processes started.");
        fprintf(f, "rpsup_worker_starts_total{service=\"%s\"} %" PRIu64 "\n", svc, s->counters.worker_starts);
        metric_header(f, "rpsup_worker_failures_total", "counter",
                      "Workers that crashed, exited early, missed their watchdog or stalled.");
        fprintf(f, "rpsup_worker_failures_total{service=\"%s\"} %" PRIu64 "\n", svc, s->counters.worker_failures);
        metric_header(f, "rpsup_worker_retiring_failures_total", "counter",
                      "Workers asked to stop that did not end as asked (another signal, a core dump, an error exit).");
        fprintf(f, "rpsup_worker_retiring_failures_total{service=\"%s\"} %" PRIu64 "\n", svc,
                s->counters.retiring_failures);
        metric_header(f, "rpsup_watchdog_kills_total", "counter", "Workers replaced for missing WatchdogSec=.");
        fprintf(f, "rpsup_watchdog_kills_total{service=\"%s\"} %" PRIu64 "\n", svc, s->counters.watchdog_kills);
        metric_header(f, "rpsup_stall_replacements_total", "counter",
                      "Workers replaced because their accept queue stopped moving.");
        fprintf(f, "rpsup_stall_replacements_total{service=\"%s\"} %" PRIu64 "\n", svc,
                s->counters.stall_replacements);

        metric_header(f, "rpsup_listener_accept_queue", "gauge", "Connections waiting in a listener's accept queue.");
        for (Listener *l = manager->listeners->listeners; l; l = l->next) {
                char addr[SOCKET_ADDRESS_STRING_MAX];
                _cleanup_free_ char *address = NULL;
                uint32_t depth, backlog;
                if (listener_accept_queue(l, &depth, &backlog) < 0)
                        continue;
                address = label_value(socket_address_format(&l->address, addr, sizeof(addr)));
                if (!address) {
                        fclose(f);
                        free(buf);
                        return -ENOMEM;
                }
                fprintf(f, "rpsup_listener_accept_queue{service=\"%s\",address=\"%s\",slot_id=\"%" PRIu64 "\"} %u\n",
                        svc, address, l->slot_id, depth);
        }

        /* Each family's samples in one group under its HELP and TYPE: parsers file samples that come after
         * another family's header under a family of their own. */
        metric_header(f, "rpsup_worker_accept_queue", "gauge", "Connections waiting for a worker.");
        for (size_t i = 0; i < n_samples; i++) {
                const SlotSample *x = &samples[i];
                if (x->stats.accept_queue >= 0 && !x->stats.queue_shared)
                        fprintf(f, "rpsup_worker_accept_queue{service=\"%s\",generation=\"%" PRIu64
                                "\",slot=\"%u\"} %" PRIi64 "\n", svc, x->slot->generation->id, x->slot->index,
                                x->stats.accept_queue);
        }
        metric_header(f, "rpsup_worker_syns_total", "counter", "New connections steered to a worker slot.");
        for (size_t i = 0; i < n_samples && st->kind != STRATEGY_HANDOFF; i++)
                fprintf(f, "rpsup_worker_syns_total{service=\"%s\",generation=\"%" PRIu64 "\",slot=\"%u\"} %" PRIu64
                        "\n", svc, samples[i].slot->generation->id, samples[i].slot->index, samples[i].stats.syns);
        metric_header(f, "rpsup_worker_migrations_total", "counter",
                      "Connections the kernel migrated into a worker slot's listener, by kind.");
        for (size_t i = 0; i < n_samples && st->kind != STRATEGY_HANDOFF; i++) {
                static const char *const kinds[_MIGRATION_KIND_MAX] = {
                        [MIGRATION_ACCEPT_QUEUE] = "accept_queue",
                        [MIGRATION_REQUEST_ACK] = "request_ack",
                        [MIGRATION_REQUEST_TIMER] = "request_timer",
                };
                for (MigrationKind k = 0; k < _MIGRATION_KIND_MAX; k++)
                        fprintf(f, "rpsup_worker_migrations_total{service=\"%s\",generation=\"%" PRIu64
                                "\",slot=\"%u\",kind=\"%s\"} %" PRIu64 "\n", svc, samples[i].slot->generation->id,
                                samples[i].slot->index, kinds[k], samples[i].stats.migrations[k]);
        }

        {
                const Retirement *r = retirements_last_finished(&manager->retirements);
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

        if (netstat_read(&net) >= 0) {
                metric_header(f, "rpsup_kernel_listen_overflows_total", "counter",
                              "TcpExtListenOverflows of rpsupd's network namespace: accept queues that were full.");
                fprintf(f, "rpsup_kernel_listen_overflows_total{service=\"%s\"} %" PRIu64 "\n", svc,
                        net.listen_overflows);
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

        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}
