/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What rpsupd reports about a service: the Prometheus text of "rpsupctl metrics" and the records that
 * "rpsupctl --json status" prints. The service is rebuilt from the input the way a restarted rpsupd takes
 * one over (adopted generations, slots and workers, then service_resume()), with a fake ServiceHost and a
 * fake Strategy, from a config read by the real parser; then the input drives the workers as rpsupd's
 * event loop would: notification datagrams through notify_parse() and the same dispatch as the manager's,
 * exits, failed execs and time passing. Whatever the workers sent (STATUS= text above all), the metrics
 * must be valid exposition text (prometheus-check.c) and every record must make it through sd-bus, through
 * rpsupctl's record reader (ctl/records.c) and out as JSON that parses back to the same document.
 *
 * Input, in order: service name \0, FileDescriptorName= \0, a byte with the number of addresses, then
 * each address \0 (ListenStream=, or ListenDatagram= when it starts with 'u'); bytes for the strategy and
 * its retire delay; the kernel's statistics for four slots; generations and their slots (a byte each);
 * counters; a byte for the retired listeners and the last retirement; a byte for a shadow policy (whether
 * one runs, which, its window's age and who set it, and which slots' counts are its window's base: then a
 * base above the counts, as after counters that were reset, too); the health gates (reload outcome
 * counters, the last reload's record with its reason and who decided, a soak and its canary, probe
 * failures of the workers); then events until the input is used up: a byte choosing the worker and the
 * kind of event, then the event's bytes or datagram. The soak and the probe results are set after the
 * events, as a snapshot: the state machine makes them itself. */

#include <signal.h>
#include <sys/wait.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "control-metrics.h"
#include "control-status.h"
#include "fuzz.h"
#include "listener.h"
#include "worker-notify.h"
#include "prometheus-check.h"
#include "records.h"
#include "rpsup-limits.h"
#include "service.h"
#include "steer-shared.h"
#include "strategy.h"
#include "utf8.h"

#define FUZZ_GENERATIONS_MAX 4
#define FUZZ_SLOTS_MAX 4
#define FUZZ_EVENTS_MAX 64
#define FUZZ_ADDRESSES_MAX 3

/* ---- fakes ---- */

static struct {
        usec_t now;
        pid_t next_pid;
        usec_t retire_delay;
        SlotStats stats[4]; /* by slot id; accept_queue -2: the strategy cannot tell */
} fake;

static usec_t fake_now(void *userdata) {
        return fake.now;
}

static int fake_spawn(void *userdata, Worker *w) {
        w->pid = ++fake.next_pid;
        return 0;
}

static int fake_kill(void *userdata, Worker *w, int sig) {
        return 0;
}

static const ServiceHost fake_host = {
        .now = fake_now,
        .spawn = fake_spawn,
        .kill = fake_kill,
};

static int fake_generation_open(Strategy *st, Generation *g, char **ret_error) {
        return 0;
}
static void fake_generation_close(Strategy *st, Generation *g) {
}
static int fake_slot_open(Strategy *st, Slot *slot, char **ret_error) {
        return 0;
}
static void fake_slot_close(Strategy *st, Slot *slot) {
}
static int fake_slot_fds(Strategy *st, Slot *slot, FdList *ret) {
        return 0;
}
static int fake_steer(Strategy *st, Service *s) {
        return 0;
}
static usec_t fake_retire(Strategy *st, Slot *slot) {
        return fake.retire_delay;
}
static int fake_slot_stats(Strategy *st, Slot *slot, SlotStats *ret) {
        const SlotStats *x = &fake.stats[slot->id % ELEMENTSOF(fake.stats)];

        if (x->accept_queue == -2)
                return -EOPNOTSUPP;
        *ret = *x;
        return 0;
}

static int fake_steering_stats(Strategy *st, SteeringStats *ret) {
        /* The steering program runs with drain and migrate. */
        if (st->kind == STRATEGY_HANDOFF)
                return -EOPNOTSUPP;
        /* The flow table's figures, from what the input gave the slots (no input of their own). */
        *ret = (SteeringStats) {
                .foreign = -1,
                .flows_on = fake.stats[0].syns & 1,
                .flow_max = (uint32_t) (fake.stats[1].syns % (STEER_FLOWS_MAX + 1)),
                .flows = (int64_t) (fake.stats[2].syns % (STEER_FLOWS_MAX + 2)) - 1,
                .flows_counted_at = fake.stats[2].probes,
                .flow_hits = fake.stats[0].syns,
                .flow_new = fake.stats[1].migrations[MIGRATION_REQUEST_TIMER],
                .flow_lost = fake.stats[3].syns,
        };
        return 0;
}

/* The steering program runs with drain and migrate: the balance figures count per worker there. */
static bool fake_can_weigh(Strategy *st) {
        return st->kind != STRATEGY_HANDOFF;
}

static const StrategyOps fake_ops = {
        .can_weigh = fake_can_weigh,
        .generation_open = fake_generation_open,
        .generation_close = fake_generation_close,
        .slot_open = fake_slot_open,
        .slot_close = fake_slot_close,
        .slot_fds = fake_slot_fds,
        .steer = fake_steer,
        .retire = fake_retire,
        .slot_stats = fake_slot_stats,
        .steering_stats = fake_steering_stats,
};

/* A shadow policy, set as a restarted rpsupd takes one over; the base of every other slot is its counts
 * now, or (bit 7) above them. */
static void apply_shadow(Service *s, uint8_t b) {
        unsigned k = 0;

        if (!(b & 1))
                return;
        service_adopt_shadow(s, b & 2 ? STEERING_HASH : STEERING_ROUND_ROBIN, fake.now - ((b >> 2) & 7) * USEC_PER_SEC,
                             (uid_t) (b >> 5));
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++, k++) {
                        const SlotStats *x = &fake.stats[g->slots[i]->id % ELEMENTSOF(fake.stats)];

                        if (k % 2 == 0)
                                service_adopt_slot_shadow(g->slots[i], x->syns / 2 + (b >> 7) * x->syns,
                                                          x->projected / 3 + (b >> 7) * x->projected);
                }
}

static void op_done(Service *s, int r, const char *message, void *userdata) {
}

/* ---- health gates ---- */

typedef struct GatesInput {
        uint8_t soak;          /* bit 0: a soak runs; the rest: the canary */
        uint8_t deadline;      /* seconds from now */
        uint64_t steered;      /* what the fake strategy counts for the two generations' slots */
        char *probe_failures[FUZZ_SLOTS_MAX];
} GatesInput;

static void read_gates(FuzzFields *f, Service *s, GatesInput *ret) {
        ReloadRecord *last = &s->last_reload;

        s->counters.reloads_rolled_back = fuzz_byte(f);
        s->counters.reloads_rolled_back_by_operator = fuzz_byte(f);
        s->counters.probe_failures = fuzz_byte(f) & 1 ? fuzz_u64(f) : 0;
        s->counters.last_rollback_usec = fuzz_byte(f) * USEC_PER_MSEC;
        last->outcome = (ReloadOutcome) (fuzz_byte(f) % _RELOAD_OUTCOME_MAX);
        last->generation = fuzz_byte(f);
        last->previous = fuzz_byte(f);
        last->at = fake.now;
        /* Text from a worker's failure and an operator's name: anything at all. (service_resume() may
         * have recorded one: a soak it could not resume.) */
        free(last->reason);
        free(last->by);
        last->reason = fuzz_next(f);
        last->by = fuzz_next(f);
        ret->soak = fuzz_byte(f);
        ret->deadline = fuzz_byte(f);
        ret->steered = fuzz_byte(f) & 1 ? fuzz_u64(f) : 0;
        for (size_t i = 0; i < FUZZ_SLOTS_MAX; i++)
                ret->probe_failures[i] = fuzz_next(f);
}

/* A soak of the live generation against the oldest other generation that has workers, and what the probes
 * of the live workers said last. */
static void apply_gates(Service *s, GatesInput *in) {
        Generation *warm = NULL;

        for (size_t i = 0; s->live && i < s->live->n_slots && i < FUZZ_SLOTS_MAX; i++) {
                Worker *w = s->live->slots[i]->worker;
                if (!w)
                        continue;
                free(w->probe_failure);
                w->probe_failure = TAKE_PTR(in->probe_failures[i]);
                w->probe_failures = w->probe_failure ? (unsigned) strlen(w->probe_failure) % 4 : 0;
                w->probe_passes = w->probe_failure ? 0 : 1;
        }
        FOREACH_GENERATION(g, s)
                if (!warm && g != s->live && g->state != GENERATION_FAILED)
                        warm = g;
        if (!(in->soak & 1) || !s->live || !warm)
                return;
        s->live->state = GENERATION_SOAKING;
        warm->state = GENERATION_WARM;
        s->warm = warm;
        s->canary = (in->soak >> 1) % 101;
        s->soak_started_at = fake.now;
        s->soak_deadline = fake.now + in->deadline * USEC_PER_SEC;
        fake.stats[0].syns += in->steered;
}

static void gates_done(GatesInput *in) {
        for (size_t i = 0; i < FUZZ_SLOTS_MAX; i++)
                free(in->probe_failures[i]);
}

/* ---- what stays across runs ---- */

static int tcp_listener = -EBADF; /* one real listening socket: the accept queue metrics need TCP_INFO */
static sd_bus *bus;
static uint64_t cookie;
static sd_event *event; /* the balance figures' timer and watch (never run: each status takes a sample) */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int pair[2];

        fuzz_setup_logging();

        tcp_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (tcp_listener < 0 || bind(tcp_listener, (struct sockaddr *) &sin, sizeof(sin)) < 0 ||
            listen(tcp_listener, 16) < 0) {
                perror("a loopback listener");
                abort();
        }

        /* Messages need a bus that has started; it never talks to anyone: the records are sealed and read
         * back in place. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0 || sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, pair[0], pair[0]) < 0 || sd_bus_start(bus) < 0) {
                fprintf(stderr, "Cannot set up a bus object for the records.\n");
                abort();
        }
        if (sd_event_new(&event) < 0)
                abort();
        return 0;
}

/* ---- building the service ---- */

/* What rpsupd accepts as a service name (main.c). */
static bool service_name_acceptable(const char *name) {
        return name && name[0] && name[0] != '.' && !strchr(name, '/');
}

/* The config, through the real reader: the addresses and FileDescriptorName= are the operator's. If they
 * are refused, a plain config with the same service name; NULL when even that is (rpsupd would not start). */
static Config *load_config(const char *path, const char *service, const char *fdname, char **addresses,
                           size_t n_addresses) {
        Config *c = NULL;

        for (int attempt = 0; attempt < 2 && !c; attempt++) {
                _cleanup_free_ char *text = NULL, *error = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&text, &size);

                if (!f)
                        abort();
                fputs("[Service]\nExecStart=/bin/true --serve %i\n[Socket]\n", f);
                if (attempt == 0) {
                        for (size_t i = 0; i < n_addresses; i++)
                                fprintf(f, "%s=%s\n", addresses[i][0] == 'u' ? "ListenDatagram" : "ListenStream",
                                        addresses[i] + (addresses[i][0] == 'u'));
                        if (!isempty(fdname))
                                fprintf(f, "FileDescriptorName=%s\n", fdname);
                }
                if (attempt == 1 || n_addresses == 0)
                        fputs("ListenStream=127.0.0.1:8080\n", f);
                if (fclose(f) != 0)
                        abort();
                (void) config_parse_buffer(text, size, path, service, &c, &error);
        }
        return c;
}

static void build_service(FuzzFields *f, Service *s, Config *c) {
        unsigned n_generations = fuzz_byte(f) % (FUZZ_GENERATIONS_MAX + 1);
        uint64_t id = 0, slot_id = 0;
        bool have_live = false;

        for (unsigned i = 0; i < n_generations; i++) {
                uint8_t b = fuzz_byte(f);
                GenerationState state = (GenerationState) (b % _GENERATION_STATE_MAX);
                unsigned n_slots = (b >> 2) % (FUZZ_SLOTS_MAX + 1);
                Generation *g;

                /* One live generation at most, as a state file can only say. */
                if (state == GENERATION_LIVE && have_live)
                        state = GENERATION_RETIRING;
                have_live = have_live || state == GENERATION_LIVE;
                id += 1 + (b >> 5);
                g = service_adopt_generation(s, id, state, c);
                if (!g)
                        continue;
                for (unsigned j = 0; j < n_slots; j++) {
                        uint8_t flags = fuzz_byte(f);
                        Slot *slot = service_adopt_slot(s, g, j, ++slot_id, flags & 1);
                        if (!slot)
                                continue;
                        slot->restarts = flags >> 4;
                        slot->consecutive_failures = (flags >> 2) & 3;
                        if (flags & 2)
                                (void) service_adopt_worker(s, slot, ++fake.next_pid,
                                                            (WorkerState) ((flags >> 5) % _WORKER_STATE_MAX), fake.now);
                }
        }
        s->next_generation_id = id + 1;
        s->next_slot_id = slot_id + 1;
        (void) service_resume(s, op_done, NULL);
}

static Worker *pick_worker(Service *s, unsigned k) {
        Worker *all[FUZZ_GENERATIONS_MAX * FUZZ_SLOTS_MAX * 4];
        size_t n = 0;

        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->worker && n < ELEMENTSOF(all))
                                all[n++] = g->slots[i]->worker;
        return n > 0 ? all[k % n] : NULL;
}

/* A datagram from a worker, handled as the manager's notify handler does. */
static void worker_notify(Service *s, Worker *w, const char *datagram) {
        _cleanup_free_ char *buf = NULL;
        size_t n = strlen(datagram);
        NotifyMessage m;

        if (n > NOTIFY_MESSAGE_MAX)
                return;
        buf = malloc(n + 1);
        if (!buf)
                abort();
        memcpy(buf, datagram, n);
        if (notify_parse(buf, n, &m) < 0)
                return;
        service_worker_notify(s, w, &m);
}

static void run_events(FuzzFields *f, Service *s) {
        for (unsigned i = 0; i < FUZZ_EVENTS_MAX && f->p < f->end; i++) {
                uint8_t b = fuzz_byte(f);
                Worker *w = pick_worker(s, b >> 2);

                switch (b & 3) {
                case 0: {
                        _cleanup_free_ char *datagram = fuzz_next(f);
                        if (w && datagram)
                                worker_notify(s, w, datagram);
                        break;
                }
                case 1: {
                        static const int codes[] = { CLD_EXITED, CLD_KILLED, CLD_DUMPED };
                        uint8_t c = fuzz_byte(f), status = fuzz_byte(f);
                        if (w)
                                service_worker_exited(s, w, codes[c % ELEMENTSOF(codes)], status);
                        break;
                }
                case 2: {
                        uint8_t e = fuzz_byte(f);
                        if (w && !w->exec_done)
                                service_worker_exec_done(s, w, e % 2 ? 0 : e / 2 + 1);
                        break;
                }
                case 3: {
                        usec_t next;
                        fake.now += (usec_t) fuzz_byte(f) * 250 * USEC_PER_MSEC;
                        next = service_next_deadline(s);
                        if (next <= fake.now)
                                service_tick(s);
                        break;
                }
                }
        }
}

/* ---- the listeners rpsupd would hold for that config ---- */

static Listener *listener_add(Listener **list, const ListenSpec *spec, uint64_t slot_id) {
        Listener *l = calloc(1, sizeof(Listener));
        uint32_t h = socket_address_hash(&spec->address);

        if (!l)
                abort();
        *l = (Listener) {
                .n_ref = 1,
                .fd = spec->address.type == SOCK_STREAM && socket_address_is_inet(&spec->address) ? tcp_listener
                                                                                                  : -EBADF,
                .address = spec->address,
                .slot_id = slot_id,
                .reuseport = slot_id != 0,
                .next = *list,
        };
        if ((slot_id == 0 ? asprintf(&l->store_name, "L.%08" PRIx32, h)
                          : asprintf(&l->store_name, "S%" PRIu64 ".%08" PRIx32, slot_id, h)) < 0)
                abort();
        *list = l;
        return l;
}

static void listeners_build(ListenerSet *set, const Config *c, Service *s, StrategyKind kind, uint8_t retired) {
        for (size_t i = 0; i < c->n_listen; i++) {
                if (kind == STRATEGY_HANDOFF) {
                        listener_add(&set->listeners, &c->listen[i], 0);
                        continue;
                }
                FOREACH_GENERATION(g, s)
                        for (size_t j = 0; j < g->n_slots; j++)
                                listener_add(&set->listeners, &c->listen[i], g->slots[j]->id);
                /* Kept for handshakes in flight after its slot was gone. */
                if (retired & (1u << i))
                        listener_add(&set->listeners, &c->listen[i], s->next_slot_id + 100 + i);
        }
}

static void listeners_free(ListenerSet *set) {
        while (set->listeners) {
                Listener *l = set->listeners;
                set->listeners = l->next;
                free(l->store_name);
                free(l);
        }
}

/* ---- the checks ---- */

typedef int (*AppendFunc)(sd_bus_message *m, const StatusView *v);

static json_object *record(const StatusView *v, AppendFunc append, bool array, const char *method) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        json_object *o = NULL;
        int r;

        r = sd_bus_message_new_signal(bus, &msg, "/io/rpsup/Fuzz", "io.rpsup.Fuzz", "Reply");
        fuzz_check(r >= 0, "cannot create a message: %s", strerror(-r));
        r = append(msg, v);
        fuzz_check(r >= 0, "%s: the reply cannot be built (%s): \"rpsupctl status\" would fail", method,
                   strerror(-r));
        r = sd_bus_message_seal(msg, ++cookie, 0);
        fuzz_check(r >= 0, "%s: cannot seal the reply: %s", method, strerror(-r));
        r = sd_bus_message_rewind(msg, true);
        fuzz_check(r >= 0, "%s: cannot rewind the reply: %s", method, strerror(-r));
        r = array ? records_read_array(msg, &o) : records_read_dict(msg, &o);
        fuzz_check(r >= 0, "%s: rpsupctl cannot read the reply: %s", method, strerror(-r));
        return o;
}

static void check_json(const StatusView *v) {
        json_object *o = json_object_new_object(), *back;
        enum json_tokener_error error;
        const char *text;

        /* As "rpsupctl --json status" puts it together and prints it. */
        json_object_object_add(o, "service", record(v, status_append_service, false, "GetStatus"));
        json_object_object_add(o, "generations", record(v, status_append_generations, true, "ListGenerations"));
        json_object_object_add(o, "workers", record(v, status_append_workers, true, "ListWorkers"));
        json_object_object_add(o, "listeners", record(v, status_append_listeners, true, "ListListeners"));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE |
                                                         JSON_C_TO_STRING_SPACED);
        fuzz_check(text, "no JSON text");
        if (fuzz_print)
                fprintf(stderr, "%s\n", text);
        fuzz_check(utf8_is_valid(text), "the JSON text is not UTF-8:\n%s", text);
        back = json_tokener_parse_verbose(text, &error);
        fuzz_check(back, "the JSON text does not parse (%s):\n%s", json_tokener_error_desc(error), text);
        fuzz_check(json_object_equal(o, back), "the JSON text parses to another document:\n%s", text);
        json_object_put(back);
        json_object_put(o);
}

static void check_metrics(const StatusView *v) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        int r;

        r = control_metrics(v, &text);
        fuzz_check(r >= 0, "control_metrics() failed: %s", strerror(-r));
        if (fuzz_print)
                fprintf(stderr, "%s", text);
        r = prometheus_check(text, &error);
        fuzz_check(r >= 0, "the metrics are not valid exposition text: %s\n%s", error, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzFields f = fuzz_fields(data, size);
        _cleanup_free_ char *name = NULL, *fdname = NULL, *path = NULL, *runtime_dir = NULL;
        char *addresses[FUZZ_ADDRESSES_MAX] = {};
        size_t n_addresses;
        Strategy strategy = { .ops = &fake_ops, .reason = (char *) "chosen by the fuzzer" };
        ListenerSet set = {};
        Service *s = NULL;
        Config *c;
        uint8_t retired, shadow;
        Retirements retirements = {};
        GatesInput gates = {};
        Balance *balance = NULL;
        StatusView v;

        if (size > 8192)
                return -1;
        fake.now = 1000 * USEC_PER_SEC;
        fake.next_pid = 100;

        name = fuzz_next(&f);
        if (!service_name_acceptable(name)) {
                free(name);
                name = strdup("web");
                if (!name)
                        abort();
        }
        fdname = fuzz_next(&f);
        n_addresses = fuzz_byte(&f) % (FUZZ_ADDRESSES_MAX + 1);
        for (size_t i = 0; i < n_addresses; i++) {
                addresses[i] = fuzz_next(&f);
                if (!addresses[i] || strchr(addresses[i], '\n')) {
                        free(addresses[i]);
                        addresses[i] = strdup("127.0.0.1:8080");
                        if (!addresses[i])
                                abort();
                }
        }
        /* As main.c names the config of a service. */
        if (asprintf(&path, "/etc/rpsup/%s.conf", name) < 0)
                abort();
        c = load_config(path, name, fdname, addresses, n_addresses);
        for (size_t i = 0; i < n_addresses; i++)
                free(addresses[i]);
        if (!c)
                return 0;

        strategy.kind = STRATEGY_HANDOFF + fuzz_byte(&f) % (_STRATEGY_MAX - STRATEGY_HANDOFF);
        fake.retire_delay = (usec_t) fuzz_byte(&f) * 100 * USEC_PER_MSEC;
        /* One statement per read: the order in which the input is consumed must be fixed. */
        for (size_t i = 0; i < ELEMENTSOF(fake.stats); i++) {
                uint8_t b = fuzz_byte(&f);
                SlotStats *x = &fake.stats[i];

                *x = (SlotStats) { .queue_shared = strategy.kind == STRATEGY_HANDOFF };
                x->accept_queue = b < 16 ? (int64_t) b - 2 : (int64_t) (fuzz_u64(&f) >> 1);
                x->syns = b & 1 ? fuzz_u64(&f) : b;
                x->migrations[MIGRATION_ACCEPT_QUEUE] = b >> 4;
                x->migrations[MIGRATION_REQUEST_ACK] = b & 0xf;
                x->migrations[MIGRATION_REQUEST_TIMER] = b & 2 ? fuzz_u64(&f) : 0;
                x->projected = x->syns / 8 * (b & 7 ? b & 7 : 16);
                x->flow_hits = b & 4 ? x->syns : 0;
                x->flow_new = x->migrations[MIGRATION_REQUEST_TIMER];
        }

        fuzz_check(service_new(name, &fake_host, NULL, &strategy, &s) >= 0, "service_new() failed");
        build_service(&f, s, c);
        s->counters.reloads_ok = fuzz_byte(&f);
        s->counters.reloads_failed = fuzz_byte(&f);
        s->counters.worker_failures = fuzz_byte(&f) & 1 ? fuzz_u64(&f) : 0;
        s->counters.last_reload_usec = fuzz_u64(&f);
        s->counters.last_reload_own_usec = fuzz_byte(&f) * USEC_PER_MSEC;
        retired = fuzz_byte(&f);
        shadow = fuzz_byte(&f);
        read_gates(&f, s, &gates);
        run_events(&f, s);
        apply_gates(s, &gates);
        gates_done(&gates);
        apply_shadow(s, shadow);

        listeners_build(&set, c, s, strategy.kind, retired);
        if (asprintf(&runtime_dir, "/run/rpsup/%s", name) < 0)
                abort();
        /* A finished retirement, for the last_retirement figures. */
        retirements.list[0] = (Retirement) {
                .generation = 1, .began = USEC_PER_SEC, .ended = USEC_PER_SEC + (retired << 10),
                .delta = { .listen_drops = retired & 1, .migrate_req_success = retired >> 1 },
        };
        retirements.n = 1;
        /* The balance figures: the slots as they are now are seen first (a slot that serves counts from
         * its counter now; one that does not, from 0), then each status and metrics takes a sample. */
        fuzz_check(balance_new(&(BalanceHost) { .event = event, .service = s, .strategy = &strategy }, &balance) >= 0,
                   "balance_new() failed");
        balance_sync(balance);
        v = (StatusView) {
                .service_name = name,
                .config_path = c->path,
                .runtime_dir = runtime_dir,
                .started_at_realtime = 1700000000 * USEC_PER_SEC,
                .config = c,
                .service = s,
                .strategy = &strategy,
                .listeners = &set,
                .retirements = &retirements,
                .balance = balance,
        };

        check_metrics(&v);
        check_json(&v);

        balance_free(balance);
        service_free(s);
        listeners_free(&set);
        config_unref(c);
        return 0;
}
