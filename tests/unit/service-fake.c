/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "service-fake.h"

/* ---- fakes ---- */

Fake fake;

static usec_t fake_now(void *userdata) {
        return fake.now;
}

static int fake_spawn(void *userdata, Worker *w) {
        if (fake.spawn_error) {
                int r = fake.spawn_error;
                fake.spawn_error = 0;
                return r;
        }
        w->pid = ++fake.next_pid;
        fake.spawns++;
        return 0;
}

static int fake_kill(void *userdata, Worker *w, int sig) {
        assert_true(fake.n_kills < MAX_EVENTS);
        fake.kills[fake.n_kills].pid = w->pid;
        fake.kills[fake.n_kills].sig = sig;
        fake.n_kills++;
        return 0;
}

static void fake_watch_queues(void *userdata) {
        fake.watch_queues++;
}

static int fake_probe(void *userdata, Worker *w) {
        if (fake.probe_error) {
                int r = fake.probe_error;
                fake.probe_error = 0;
                return r;
        }
        assert_true(fake.probes < MAX_EVENTS);
        fake.probed[fake.probes++] = w->pid;
        return 0;
}

const ServiceHost fake_host = {
        .now = fake_now,
        .spawn = fake_spawn,
        .kill = fake_kill,
        .watch_queues = fake_watch_queues,
};

const ServiceHost fake_host_probing = {
        .now = fake_now,
        .spawn = fake_spawn,
        .kill = fake_kill,
        .watch_queues = fake_watch_queues,
        .probe = fake_probe,
};

static int fake_generation_open(Strategy *st, Generation *g, char **ret_error) {
        if (fake.generation_open_error) {
                *ret_error = strdup("cannot listen on 127.0.0.1:1: Address already in use");
                return fake.generation_open_error;
        }
        fake.generations_open++;
        return 0;
}
static void fake_generation_close(Strategy *st, Generation *g) {
        fake.generations_open--;
}
static int fake_slot_open(Strategy *st, Slot *slot, char **ret_error) {
        fake.slots_open++;
        return 0;
}
static void fake_slot_close(Strategy *st, Slot *slot) {
        fake.slots_open--;
}
static int fake_slot_fds(Strategy *st, Slot *slot, FdList *ret) {
        return 0;
}
static int fake_steer(Strategy *st, Service *s) {
        fake.steers++;
        fake.n_serving = 0;
        fake.n_warm = 0;
        fake.canary = s->canary;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        if (slot_is_serving(g->slots[i]))
                                fake.serving[fake.n_serving++] = g->slots[i]->worker->pid;
                        if (s->canary > 0 && slot_is_warm(g->slots[i]))
                                fake.warm[fake.n_warm++] = g->slots[i]->worker->pid;
                }
        return 0;
}
static usec_t fake_retire(Strategy *st, Slot *slot) {
        fake.retired++;
        return fake.retire_delay;
}
static int fake_slot_stats(Strategy *st, Slot *slot, SlotStats *ret) {
        if (!fake.stats_known || slot->index >= WORKERS_MAX)
                return -EOPNOTSUPP;
        *ret = fake.stats[slot->index];
        return 0;
}

static int fake_slot_drain_state(Strategy *st, Slot *slot, pid_t pid, SlotDrainState *ret) {
        if (!fake.drain_known || slot->index >= WORKERS_MAX)
                return -EOPNOTSUPP;
        fake.drain_checks++;
        *ret = fake.drain[slot->index];
        return 0;
}

static void fake_abandon(Strategy *st, Slot *slot) {
        fake.abandoned++;
}

static bool fake_can_weigh(Strategy *st) {
        return st->kind != STRATEGY_HANDOFF;
}

static const StrategyOps fake_ops = {
        .generation_open = fake_generation_open,
        .generation_close = fake_generation_close,
        .slot_open = fake_slot_open,
        .slot_close = fake_slot_close,
        .slot_fds = fake_slot_fds,
        .steer = fake_steer,
        .retire = fake_retire,
        .slot_stats = fake_slot_stats,
        .can_weigh = fake_can_weigh,
        .slot_drain_state = fake_slot_drain_state,
        .abandon = fake_abandon,
};

Strategy fake_strategy = { .kind = STRATEGY_DRAIN, .ops = &fake_ops };

void op_done(Service *s, int r, const char *message, void *userdata) {
        fake.done_calls++;
        fake.done_r = r;
        snprintf(fake.done_message, sizeof(fake.done_message), "%s", message ?: "");
}

Config *config_new(unsigned workers) {
        Config *c = calloc(1, sizeof(Config));

        assert_non_null(c);
        *c = (Config) {
                .n_ref = 1,
                .workers = workers,
                .strategy = STRATEGY_DRAIN,
                .ready = READY_NOTIFY,
                .ready_timeout = 10 * USEC_PER_SEC,
                .kill_signal = SIGTERM,
                .stop_timeout = 5 * USEC_PER_SEC,
                .restart = RESTART_ON_FAILURE,
                .stall = USEC_INFINITY,
                .drain = USEC_INFINITY,
                .backlog = 128,
        };
        c->exec_path = strdup("/usr/bin/worker");
        return c;
}

/* ---- helpers ---- */

Service *setup_service_with(const ServiceHost *host) {
        Service *s = NULL;

        memset(&fake, 0, sizeof(fake));
        fake.now = 1000 * USEC_PER_SEC;
        fake.next_pid = 100;
        assert_int_equal(service_new("web", host, NULL, &fake_strategy, &s), 0);
        return s;
}

Service *setup_service(void) {
        return setup_service_with(&fake_host);
}

void advance(Service *s, usec_t t) {
        /* Step through deadlines the way the daemon's timer does. */
        usec_t end = fake.now + t;

        for (;;) {
                usec_t next = service_next_deadline(s);
                if (next > end)
                        break;
                if (next > fake.now)
                        fake.now = next;
                service_tick(s);
        }
        fake.now = end;
}

Generation *generation_by_id(Service *s, uint64_t id) {
        FOREACH_GENERATION(g, s)
                if (g->id == id)
                        return g;
        return NULL;
}

void ready_all(Service *s, Generation *g) {
        /* Copy first: readiness can change the generation's slots (it may go live). */
        Worker *ws[WORKERS_MAX];
        size_t n = 0;

        for (size_t i = 0; i < g->n_slots; i++)
                if (g->slots[i]->worker && g->slots[i]->worker->state == WORKER_STARTING)
                        ws[n++] = g->slots[i]->worker;
        for (size_t i = 0; i < n; i++)
                service_worker_ready(s, ws[i]);
}

unsigned kills_with(int sig) {
        unsigned n = 0;

        for (unsigned i = 0; i < fake.n_kills; i++)
                n += fake.kills[i].sig == sig;
        return n;
}

bool killed(pid_t pid, int sig) {
        for (unsigned i = 0; i < fake.n_kills; i++)
                if (fake.kills[i].pid == pid && fake.kills[i].sig == sig)
                        return true;
        return false;
}

void exit_worker(Service *s, Worker *w, int code, int status) {
        service_worker_exited(s, w, code, status);
}

Worker *find_signalled(Service *s) {
        Worker *d;

        LIST_FOREACH(d, &s->departing, departing_link)
                if (d->state == WORKER_STOPPING || d->state == WORKER_KILLED)
                        return d;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Worker *w = g->slots[i]->worker;
                        if (w && (w->state == WORKER_STOPPING || w->state == WORKER_KILLED))
                                return w;
                }
        return NULL;
}

/* Every worker that was signalled exits, as a well-behaved process would. */
void exit_signalled(Service *s) {
        Worker *w;

        while ((w = find_signalled(s)))
                exit_worker(s, w, CLD_EXITED, 0);
}

Service *start_running(unsigned workers) {
        Service *s = setup_service();
        Config *c = config_new(workers);

        assert_int_equal(service_start(s, c, op_done, NULL), 0);
        config_unref(c);
        ready_all(s, s->pending);
        assert_int_equal(fake.done_calls, 1);
        assert_int_equal(fake.done_r, 0);
        fake.done_calls = 0;
        return s;
}

void teardown(Service *s) {
        service_free(s);
        assert_int_equal(fake.slots_open, 0);
        assert_int_equal(fake.generations_open, 0);
}
