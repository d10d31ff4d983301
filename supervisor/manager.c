/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "balance.h"
#include "cgroup-tree.h"
#include "control-status.h"
#include "control.h"
#include "fd-util.h"
#include "listener.h"
#include "log.h"
#include "manager.h"
#include "readiness-probe.h"
#include "reexec.h"
#include "retirement.h"
#include "rpsup-limits.h"
#include "rpsup-protocol.h"
#include "service.h"
#include "stall-watch.h"
#include "steer-shared.h"
#include "strategy-select.h"
#include "strategy.h"
#include "string-util.h"
#include "systemd-fdstore.h"
#include "systemd-notify.h"
#include "takeover-state.h"
#include "takeover.h"
#include "worker-fdstore.h"
#include "worker-notify.h"
#include "worker-process.h"

/* The fields are for this file only: the modules around the manager get handlers, a view or a host struct. */
struct Manager {
        sd_event *event;
        char *service_name;
        char *config_path;
        char *runtime_dir;
        Config *config;          /* as last loaded (start or reload) */

        InheritedFds inherited;
        CgroupTree *cgroups;     /* the service's cgroups; NULL where there are none */
        ListenerSet *listeners;
        Strategy *strategy;
        Service *service;
        NotifyServer *notify;
        ControlServer *control;
        QueueWatch *queue_watch;
        Balance *balance;        /* per-worker balance figures: samples only while connections come */
        WorkerHost workers;      /* what worker-process.c starts and watches workers with */
        ProbeRunner *probes;     /* ReadyProbe= attempts */
        WorkerFdStore *fdstore;  /* what workers keep with FDSTORE=1, per slot */

        Retirements retirements;

        sd_event_source *deadline_timer;
        sd_event_source *publish_event; /* deferred: STATUS=, state file */
        sd_event_source *sigterm, *sigint, *sighup, *sigusr2;
        sd_event_source *reexec_event;  /* deferred: the exec, once the caller has its answer */

        bool stopping;
        bool stopped;            /* every worker is gone */
        bool ready_sent;
        bool reloading;          /* RELOADING=1 sent, READY=1 due when the reload is over */
        int exit_code;
        usec_t started_at_realtime;
};

static void manager_changed(Manager *m);
static void manager_reload(Manager *m, const ReloadOptions *o, ServiceDone done, void *userdata);
static void manager_scale(Manager *m, unsigned n, ServiceDone done, void *userdata);
static void manager_stop(Manager *m);
static int manager_reexec(Manager *m, uint64_t *ret_seq, char **ret_error);

/* ---- the service's host ---- */

static usec_t host_now(void *userdata) {
        return now_usec(CLOCK_MONOTONIC);
}

static int host_spawn(void *userdata, Worker *w) {
        Manager *m = userdata;

        return worker_process_spawn(&m->workers, w);
}

static int host_kill(void *userdata, Worker *w, int sig) {
        return worker_process_kill(w, sig);
}

static void host_forget(void *userdata, Worker *w) {
        Manager *m = userdata;

        probe_runner_cancel(m->probes, w);
        worker_process_forget(w);
}

static int host_probe(void *userdata, Worker *w) {
        Manager *m = userdata;

        return m->probes ? probe_runner_start(m->probes, w) : -EOPNOTSUPP;
}

static void on_probed(void *userdata, Worker *w, int r, const char *what) {
        Manager *m = userdata;

        service_worker_probed(m->service, w, r, what);
        manager_changed(m);
}

static void host_changed(void *userdata) {
        manager_changed(userdata);
}

static void host_watch_queues(void *userdata) {
        Manager *m = userdata;

        if (m->queue_watch)
                queue_watch_arm(m->queue_watch);
}

static void host_generation_retiring(void *userdata, Generation *g) {
        Manager *m = userdata;

        retirements_begin(&m->retirements, g->id);
}

static void host_generation_gone(void *userdata, Generation *g) {
        Manager *m = userdata;
        const Retirement *r = retirements_end(&m->retirements, g->id);
        char span[FORMAT_TIMESPAN_MAX];

        /* Whatever its workers left (double-forked daemons, children) goes with it. */
        cgroup_tree_generation_gone(m->cgroups, g->id);

        if (!r) {
                log_info("Generation %" PRIu64 " is gone.", g->id);
                return;
        }
        format_timespan(span, sizeof(span), r->ended - r->began, USEC_PER_MSEC);
        log_info("Generation %" PRIu64 " is gone after %s. Meanwhile the kernel migrated %" PRIu64 " connection%s "
                 "(%" PRIu64 " failed), and counted %" PRIu64 " listen drops and %" PRIu64 " accept-queue overflows.",
                 g->id, span, r->delta.migrate_req_success, r->delta.migrate_req_success == 1 ? "" : "s",
                 r->delta.migrate_req_failure, r->delta.listen_drops, r->delta.listen_overflows);
}

static const ServiceHost service_host = {
        .now = host_now,
        .spawn = host_spawn,
        .kill = host_kill,
        .forget = host_forget,
        .changed = host_changed,
        .watch_queues = host_watch_queues,
        .probe = host_probe,
        .generation_retiring = host_generation_retiring,
        .generation_gone = host_generation_gone,
};

/* ---- the control interface's handlers ---- */

static void control_view(void *userdata, StatusView *ret) {
        Manager *m = userdata;

        *ret = (StatusView) {
                .service_name = m->service_name,
                .config_path = m->config_path,
                .runtime_dir = m->runtime_dir,
                .started_at_realtime = m->started_at_realtime,
                .config = m->config,
                .service = m->service,
                .strategy = m->strategy,
                .listeners = m->listeners,
                .retirements = &m->retirements,
                .balance = m->balance,
                .cgroups = m->cgroups,
                .reexec = reexec_record(),
                .fdstore = m->fdstore,
        };
}

static void control_reload(void *userdata, const ReloadOptions *o, ServiceDone done, void *done_userdata) {
        manager_reload(userdata, o, done, done_userdata);
}

static void control_promote(void *userdata, const char *by, ServiceDone done, void *done_userdata) {
        Manager *m = userdata;

        service_promote(m->service, by, done, done_userdata);
        manager_changed(m);
}

static void control_rollback(void *userdata, const char *by, ServiceDone done, void *done_userdata) {
        Manager *m = userdata;

        service_rollback(m->service, by, done, done_userdata);
        manager_changed(m);
}

static void control_scale(void *userdata, unsigned n, ServiceDone done, void *done_userdata) {
        manager_scale(userdata, n, done, done_userdata);
}

static int control_steer(void *userdata, SteeringPolicy policy, uid_t by, char **ret_error) {
        Manager *m = userdata;
        int r;

        r = service_steer(m->service, policy, by, ret_error);
        manager_changed(m);
        return r;
}

static int control_steer_shadow(void *userdata, SteeringPolicy shadow, uid_t by, char **ret_error) {
        Manager *m = userdata;
        int r;

        r = service_steer_shadow(m->service, shadow, by, ret_error);
        manager_changed(m);
        return r;
}

static int control_reexec(void *userdata, uint64_t *ret_seq, char **ret_error) {
        return manager_reexec(userdata, ret_seq, ret_error);
}

static const ControlHandlers control_handlers = {
        .reexec = control_reexec,
        .view = control_view,
        .steer = control_steer,
        .steer_shadow = control_steer_shadow,
        .reload = control_reload,
        .scale = control_scale,
        .promote = control_promote,
        .rollback = control_rollback,
};

/* ---- publishing state ---- */

/* Returns whether the state file could be written (a reexec needs it). */
static int publish_now(Manager *m) {
        _cleanup_free_ char *line = NULL, *msg = NULL, *state_path = NULL;
        int r;

        if (m->reloading && m->service->state != SERVICE_RELOADING && !m->service->warm) {
                /* The reload is over (new generation live, or rolled back), its soak too. */
                (void) systemd_notify("READY=1", -EBADF);
                m->reloading = false;
        }
        if (status_line(m->service, m->strategy->kind, &line) >= 0 && asprintf(&msg, "STATUS=%s", line) >= 0)
                (void) systemd_notify(msg, -EBADF);

        if (asprintf(&state_path, "%s/%s", m->runtime_dir, RPSUP_STATE_FILE) < 0)
                r = -ENOMEM;
        else if (m->service->state == SERVICE_STOPPED || m->service->state == SERVICE_FAILED) {
                (void) unlink(state_path);
                r = 0;
        } else
                r = state_save(state_path, m->service, worker_process_start_time);
        if (r < 0)
                log_ratelimit(LOG_WARNING, "Failed to write %s, a restarted rpsupd could not take over the "
                              "workers: %s", state_path ?: RPSUP_STATE_FILE, strerror(-r));
        /* Workers started since the last write wait before execve() until it names them. They go on even if it
         * failed: the service must run; the warning says what a crash would cost. */
        worker_process_release_held(&m->workers);
        return r;
}

static void sync_stall_watch(Manager *m);

/* Once per turn of the loop, whatever changed in it: the watches follow the serving listeners, the balance
 * figures and the workers' fd stores follow the slots, then STATUS= and the state file. Per change instead,
 * a reload or a scale-out of n workers would cost rpsupd n² system calls. */
static int on_publish(sd_event_source *source, void *userdata) {
        Manager *m = userdata;

        sync_stall_watch(m);
        balance_sync(m->balance);
        worker_fdstore_prune(m->fdstore, m->service);
        worker_fdstore_listeners_changed(m->fdstore);
        (void) publish_now(m);
        return 0;
}

/* STATUS= and the state file: written once, when this turn of the event loop is done. */
static void schedule_publish(Manager *m) {
        if (m->publish_event)
                (void) sd_event_source_set_enabled(m->publish_event, SD_EVENT_ONESHOT);
}

static void host_worker_started(void *userdata) {
        /* The state file is written once for all the workers started in this turn of the loop, then they
         * are released. */
        schedule_publish(userdata);
}

/* The single timer follows the earliest deadline of the service. */
static void rearm_deadline(Manager *m) {
        usec_t next = service_next_deadline(m->service);

        if (next == USEC_INFINITY)
                (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(m->deadline_timer, next);
                (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_ONESHOT);
        }
}

/* The stall watch follows the serving workers' listeners. */
static void sync_stall_watch(Manager *m) {
        if (m->queue_watch)
                queue_watch_sync(m->queue_watch);
}

/* The service changed: the deadline follows it now, the rest once this turn of the loop is done. */
static void manager_changed(Manager *m) {
        rearm_deadline(m);
        schedule_publish(m);
}

/* A queue is not empty: sampling began, with a deadline of its own, and the watches rest meanwhile. Nothing
 * that is published changed. */
static void host_queues_busy(void *userdata) {
        Manager *m = userdata;

        rearm_deadline(m);
        sync_stall_watch(m);
}

static int on_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        service_tick(m->service);
        manager_changed(m);
        return 0;
}

/* ---- notifications from workers ---- */

static void on_worker_notify(pid_t pid, const NotifyMessage *msg, void *userdata) {
        Manager *m = userdata;
        Worker *w = service_find_worker(m->service, pid);

        if (!w) {
                log_ratelimit(LOG_DEBUG, "Ignoring a notification from pid %d, which is not a worker%s.", (int) pid,
                              msg->n_fds > 0 ? " (closing the fds it sent)" : "");
                return;
        }
        worker_fdstore_notify(m->fdstore, w, msg);
        service_worker_notify(m->service, w, msg);
        manager_changed(m);
}

/* ---- operations ---- */

typedef struct ReloadCall {
        Manager *manager;
        ServiceDone done;
        void *userdata;
} ReloadCall;

static void reload_done(Service *s, int r, const char *message, void *userdata) {
        ReloadCall *c = userdata;

        if (r >= 0)
                log_info("Reload done: generation %" PRIu64 " serves.", s->live ? s->live->id : 0);
        if (c->done)
                c->done(s, r, message, c->userdata);
        manager_changed(c->manager);
        free(c);
}

/* The new config, if it may replace the running one: a reload refused here changes nothing. */
static int reload_config(Manager *m, Config **ret, char **ret_error) {
        _cleanup_(config_unrefp) Config *c = NULL;
        int r;

        r = config_load(m->config_path, m->service_name, &c, ret_error);
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = strdup(strerror(-r));
                return -EBADMSG;
        }
        r = strategy_check_reload(m->strategy, c, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static void manager_reload(Manager *m, const ReloadOptions *o, ServiceDone done, void *userdata) {
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        ReloadCall *call;
        char buf[64];
        int r;

        if (m->stopping) {
                log_warning("Reload refused: the service is stopping.");
                if (done)
                        done(m->service, -ESHUTDOWN, "the service is stopping", userdata);
                return;
        }
        r = reload_config(m, &c, &error);
        if (r < 0) {
                log_error("Reload refused, nothing changed: %s", error ?: strerror(-r));
                m->service->counters.reloads_refused++;
                if (done)
                        done(m->service, r, error ?: strerror(-r), userdata);
                return;
        }

        call = calloc(1, sizeof(ReloadCall));
        if (!call) {
                log_oom();
                if (done)
                        done(m->service, -ENOMEM, "out of memory", userdata);
                return;
        }
        *call = (ReloadCall) { .manager = m, .done = done, .userdata = userdata };

        snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
        (void) systemd_notify(buf, -EBADF);
        m->reloading = true;

        r = service_reload(m->service, c, o, reload_done, call);
        if (r >= 0) {
                config_unref(m->config);
                m->config = TAKE_PTR(c);
        }
        manager_changed(m);
}

static void manager_scale(Manager *m, unsigned n, ServiceDone done, void *userdata) {
        service_scale(m->service, n, done, userdata);
        manager_changed(m);
}

static void stop_done(Service *s, int r, const char *message, void *userdata) {
        Manager *m = userdata;

        if (m->strategy->ops->stopped)
                m->strategy->ops->stopped(m->strategy);
        m->stopped = true;
        /* The last word (state file, STATUS=) now: the loop ends before deferred work would run. */
        (void) publish_now(m);
        (void) sd_event_exit(m->event, m->exit_code);
}

static void manager_stop(Manager *m) {
        if (m->stopping) {
                /* Asked again: what still drains is asked to stop now (rpsupd in a terminal, ^C twice). */
                service_stop_now(m->service);
                return;
        }
        m->stopping = true;
        /* The listeners stay open and in the fd store: an rpsupd started after this one takes them over
         * with whatever is queued on them. */
        m->listeners->keep = true;
        (void) systemd_notify("STOPPING=1", -EBADF);
        service_stop(m->service, stop_done, m);
        manager_changed(m);
}

/* ---- reexec ---- */

/* The new image reads the config on disk, as any restart does: one that does not load (edited, not reloaded)
 * would make it go back, so the reexec is refused here, with the parser's message. (Should it still happen,
 * a change in between, the old image takes over with the config it runs with: reexec_load_config().) */
static int reexec_config_refusal(Manager *m, char **ret_error) {
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load(m->config_path, m->service_name, &c, &error);
        if (r < 0) {
                *ret_error = strdup_printf("the config on disk does not load, the new image would not start with "
                                           "it: %s", error ?: strerror(-r));
                return -EBADMSG;
        }
        return 0;
}

/* Why a reexec cannot be done now, or NULL. What the state file cannot carry is refused: an operation whose
 * caller waits for its answer (start, reload and its soak, scale, reload --wait), and a stop. */
static int reexec_refusal(Manager *m, char **ret_error) {
        const char *why = reexec_unavailable();
        Service *s = m->service;

        if (m->stopping) {
                *ret_error = strdup("the service is stopping");
                return -ESHUTDOWN;
        }
        if (m->reexec_event && sd_event_source_get_enabled(m->reexec_event, NULL) > 0) {
                *ret_error = strdup("a reexec is in progress already");
                return -EALREADY;
        }
        if (why) {
                *ret_error = strdup(why);
                return -EOPNOTSUPP;
        }
        if (s->warm && s->live) {
                *ret_error = strdup_printf("generation %" PRIu64 " is soaking, and its reload waits for the outcome: "
                                           "promote or roll it back first", s->live->id);
                return -EBUSY;
        }
        if (s->op || s->state != SERVICE_RUNNING) {
                *ret_error = strdup_printf("the service is %s: a reexec waits until the operation in progress (whose "
                                           "caller waits for its answer) is over", service_state_to_string(s->state));
                return -EBUSY;
        }
        FOREACH_GENERATION(g, s)
                if (!STAILQ_EMPTY(&g->waiters)) {
                        *ret_error = strdup_printf("a \"reload --wait\" waits for generation %" PRIu64 " to exit; "
                                                   "retry when it has", g->id);
                        return -EBUSY;
                }
        return reexec_config_refusal(m, ret_error);
}

static int on_reexec(sd_event_source *source, void *userdata) {
        _cleanup_free_ char *error = NULL;
        Manager *m = userdata;
        char buf[64];
        uint64_t seq;
        int r;

        r = reexec_refusal(m, &error);
        if (r < 0 && r != -EALREADY) {
                /* Something began between the call and now (a reload in the same turn of the loop): the attempt
                 * is recorded as failed, so that whoever waits for its outcome learns it. */
                reexec_abandon(error ?: strerror(-r));
                return 0;
        }
        /* The state file names everything now, and every message to systemd is out (fds stored meanwhile). */
        r = publish_now(m);
        if (r < 0) {
                _cleanup_free_ char *why = strdup_printf("the state file cannot be written (%s): the new image could "
                                                         "not take the workers over", strerror(-r));
                reexec_abandon(why ?: "the state file cannot be written");
                return 0;
        }
        snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
        (void) systemd_notify(buf, -EBADF);
        systemd_notify_flush(USEC_PER_SEC);
        seq = reexec_record()->seq;
        r = reexec_exec(m->runtime_dir, STEER_ABI, m->config);
        /* Still here: execve() failed, nothing changed (logged and recorded; what failed before the attempt
         * was recorded is recorded now, so that rpsupctl reexec learns the outcome). */
        if (reexec_record()->seq == seq)
                reexec_abandon(strerror(-r));
        (void) systemd_notify("READY=1", -EBADF);
        manager_changed(m);
        return 0;
}

static int manager_reexec(Manager *m, uint64_t *ret_seq, char **ret_error) {
        int r;

        r = reexec_refusal(m, ret_error);
        if (r < 0) {
                log_warning("Reexec refused: %s.", *ret_error ?: strerror(-r));
                return r;
        }
        /* The answer goes out first; the exec follows in the next turn of the loop. */
        r = sd_event_source_set_enabled(m->reexec_event, SD_EVENT_ONESHOT);
        if (r < 0) {
                *ret_error = strdup_printf("cannot schedule it: %s", strerror(-r));
                return r;
        }
        if (ret_seq)
                *ret_seq = reexec_record()->seq + 1;
        return 0;
}

/* ---- signals ---- */

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        switch (si->ssi_signo) {
        case SIGHUP:
                log_info("SIGHUP: reloading.");
                manager_reload(m, &(ReloadOptions) {}, NULL, NULL); /* every outcome is logged where it is decided */
                break;
        case SIGUSR2: {
                _cleanup_free_ char *error = NULL;
                log_info("SIGUSR2: executing rpsupd's binary again (reexec).");
                (void) manager_reexec(m, NULL, &error); /* logged */
                break;
        }
        case SIGTERM:
        case SIGINT:
                log_info("%s: stopping.", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                manager_stop(m);
                break;
        }
        return 0;
}

/* ---- start-up ---- */

static int runtime_directory(const char *service, char **ret) {
        const char *e = getenv("RUNTIME_DIRECTORY");
        char *d;

        if (!isempty(e)) {
                /* Several directories are separated by ':'; ours is the first. */
                d = strndup(e, strcspn(e, ":"));
                unsetenv("RUNTIME_DIRECTORY");
        } else {
                const char *parent = getenv("RPSUP_RUNTIME_DIR");
                if (isempty(parent))
                        parent = RPSUP_RUNTIME_PARENT_DEFAULT;
                if (asprintf(&d, "%s/%s", parent, service) < 0)
                        d = NULL;
                if (d) {
                        /* Create the parent (for RPSUP_RUNTIME_DIR) and the service's own. */
                        (void) mkdir(parent, 0755);
                        if (mkdir(d, 0755) < 0 && errno != EEXIST) {
                                int r = -errno;
                                free(d);
                                return r;
                        }
                }
        }
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static void start_done(Service *s, int r, const char *message, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *line = NULL, *msg = NULL;

        if (r == -ESHUTDOWN) {
                /* Asked to stop before the first generation was ready: a stop, not a failure. */
                log_info("The start was cut short by the stop.");
                return;
        }
        if (r < 0) {
                /* Why was logged where the start failed. */
                log_debug("Start failed: %s", message ?: strerror(-r));
                m->exit_code = EXIT_FAILURE;
                manager_stop(m);
                return;
        }
        if (m->ready_sent)
                return;
        m->ready_sent = true;
        if (status_line(m->service, m->strategy->kind, &line) >= 0 && asprintf(&msg, "READY=1\nSTATUS=%s", line) >= 0)
                (void) systemd_notify(msg, -EBADF);
        else
                (void) systemd_notify("READY=1", -EBADF);
}

/* The runtime directory, systemd's fds and the listener set over them. */
static int setup_runtime(Manager *m) {
        int r;

        r = runtime_directory(m->service_name, &m->runtime_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create the runtime directory of %s: %m", m->service_name);

        r = inherited_fds_take(&m->inherited);
        if (r < 0)
                return log_error_errno(r, "Failed to take the file descriptors passed by systemd: %m");
        if (r > 0)
                log_info("Received %d file descriptor%s from systemd.", r, r == 1 ? "" : "s");

        r = listener_set_new(&m->inherited, &m->listeners);
        if (r < 0)
                return log_oom();
        return 0;
}

/* What an earlier rpsupd left: whether to take it over (its state file and its listeners are there); else
 * its workers and whatever else is left in our control group are ended. */
static int load_predecessor(Manager *m, SavedState *saved, bool *ret_adopt) {
        _cleanup_free_ char *state_path = NULL;
        bool adopt;
        int r;

        if (asprintf(&state_path, "%s/%s", m->runtime_dir, RPSUP_STATE_FILE) < 0)
                return log_oom();
        r = state_load(state_path, saved);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Ignoring %s, which cannot be read: %m", state_path);
        adopt = r >= 0 && m->inherited.n > 0;
        if (r >= 0 && !adopt)
                /* Workers of an rpsupd whose listeners are gone cannot be supervised: end them. */
                takeover_end_orphans(saved, m->config);
        if (!adopt)
                takeover_end_cgroup_leftovers(m->config);
        *ret_adopt = adopt;
        return 0;
}

/* The workers' notification socket and the control socket, from the fd store or new (and then stored). */
static int setup_sockets(Manager *m) {
        _cleanup_free_ char *notify_path = NULL, *control_path = NULL;
        int fd, r;

        if (asprintf(&notify_path, "%s/%s", m->runtime_dir, RPSUP_NOTIFY_SOCKET) < 0 ||
            asprintf(&control_path, "%s/%s", m->runtime_dir, RPSUP_CONTROL_SOCKET) < 0)
                return log_oom();

        fd = inherited_fds_claim(&m->inherited, "notify");
        r = notify_server_new(m->event, notify_path, fd, on_worker_notify, m, &m->notify);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the workers' notification socket %s: %m", notify_path);
        if (fd < 0)
                (void) fdstore_add(notify_server_fd(m->notify), "notify");

        fd = inherited_fds_claim(&m->inherited, "control");
        r = control_server_new(m->event, &control_handlers, m, control_path, fd, &m->control);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the control socket %s: %m", control_path);
        if (fd < 0)
                (void) fdstore_add(control_server_fd(m->control), "control");
        /* Without systemd to keep it for the next rpsupd, the socket goes when this one exits. */
        if (fd < 0 && !systemd_notify_available() && control_server_remove_at_exit(m->control, control_path) < 0)
                log_warning("The control socket %s will be left behind when rpsupd exits.", control_path);
        return 0;
}

static int setup_timers(Manager *m) {
        int r;

        r = sd_event_add_time(m->event, &m->deadline_timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC,
                              on_deadline, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(m->event, &m->publish_event, on_publish, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->publish_event, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to set up timers: %m");
        return 0;
}

/* The service with its workers' host; what it supervises comes next (adopted, resumed, started). */
static int setup_service(Manager *m) {
        int r;

        m->workers = (WorkerHost) {
                .event = m->event,
                .service_name = m->service_name,
                .notify_socket = notify_server_path(m->notify),
                .strategy = m->strategy,
                .cgroups = m->cgroups,
                .fdstore = m->fdstore,
                .started = host_worker_started,
                .userdata = m,
        };
        r = service_new(m->service_name, &service_host, m, m->strategy, &m->service);
        if (r < 0)
                return log_oom();
        m->workers.service = m->service;
        r = probe_runner_new(&(ProbeHost) {
                                     .event = m->event,
                                     .strategy = m->strategy,
                                     .service_name = m->service_name,
                                     .done = on_probed,
                                     .userdata = m,
                             }, &m->probes);
        if (r < 0)
                return log_oom();
        r = queue_watch_new(&(StallWatchHost) {
                                    .event = m->event,
                                    .service = m->service,
                                    .strategy = m->strategy,
                                    .busy = host_queues_busy,
                                    .userdata = m,
                            }, &m->queue_watch);
        if (r < 0)
                return log_oom();
        r = balance_new(&(BalanceHost) {
                                .event = m->event,
                                .service = m->service,
                                .strategy = m->strategy,
                        }, &m->balance);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the balance figures' timer: %m");
        return 0;
}

/* For cgroup_tree_end_unknown(): a generation taken over. */
static bool cgroup_known_generation(void *userdata, uint64_t generation) {
        Manager *m = userdata;

        FOREACH_GENERATION(g, m->service)
                if (g->id == generation)
                        return true;
        return false;
}

/* What runs in the service's cgroups and was not taken over (a worker started just before the earlier
 * rpsupd died, before its state file named it; leftovers of workers) ends now. */
static void end_unknown_cgroups(Manager *m) {
        _cleanup_free_ pid_t *adopted = NULL;
        size_t n = 0;

        if (!m->cgroups)
                return;
        FOREACH_GENERATION(g, m->service)
                n += g->n_slots;
        adopted = calloc(n ?: 1, sizeof(pid_t));
        if (!adopted) {
                log_oom();
                return;
        }
        n = 0;
        FOREACH_GENERATION(g, m->service)
                for (size_t i = 0; i < g->n_slots; i++)
                        if (g->slots[i]->worker && g->slots[i]->worker->pid > 0)
                                adopted[n++] = g->slots[i]->worker->pid;
        /* After a reexec, what is unknown was already being ended by the previous image: no new wait. */
        (void) cgroup_tree_end_unknown(m->cgroups, cgroup_known_generation, m, adopted, n, m->config->kill_signal,
                                       reexec_taking_over() ? 0 : m->config->stop_timeout);
}

/* Finishes what was taken over, and starts a generation if none serves. */
static int start_service(Manager *m) {
        int r;

        end_unknown_cgroups(m);
        r = 0;
        if (service_count_generations(m->service) > 0) {
                r = service_resume(m->service, start_done, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to resume: %m");
        }
        if (r == 0) {
                r = service_start(m->service, m->config, start_done, m);
                if (r < 0)
                        return r; /* start_done() logged and asked to stop */
        }
        return 0;
}

/* The first generation has taken its listeners. Whatever systemd passed that nothing claimed belongs to a
 * config that changed: let it go. */
static void release_unclaimed(Manager *m) {
        for (size_t i = 0; i < m->inherited.n; i++) {
                InheritedFd *in = &m->inherited.fds[i];
                if (in->fd < 0)
                        continue;
                (void) fdstore_remove(in->name);
                /* A listener of a worker slot that is no more: what is queued on it moves to the new
                 * generation before it closes. */
                if (m->strategy->ops->orphan && m->strategy->ops->orphan(m->strategy, in->fd) > 0) {
                        log_info("Retiring the stored listener \"%s\" of a worker slot that is gone.", in->name);
                        in->fd = -EBADF;
                        continue;
                }
                log_notice("Closing the stored file descriptor \"%s\": nothing in %s uses it any more.", in->name,
                           m->config_path);
                in->fd = safe_close(in->fd);
        }
}

/* A new image exec'd by a reexec takes over only what it understands; else (before it changed anything) it
 * executes the running image again, which takes over and reports why. NULL: it takes over. */
static char *reexec_cannot_take_over(Manager *m) {
        _cleanup_(saved_state_done) SavedState saved = {};
        _cleanup_free_ char *state_path = NULL, *protocol = NULL;
        int r;

        protocol = reexec_protocol_refusal();
        if (protocol)
                return TAKE_PTR(protocol);
        if (reexec_sender_abi() != STEER_ABI)
                return strdup_printf("the running image's steering maps have layout %d (STEER_ABI), this image "
                                     "understands layout %d only", reexec_sender_abi(), STEER_ABI);
        if (m->inherited.n == 0)
                return strdup("no file descriptors were passed");
        if (asprintf(&state_path, "%s/%s", m->runtime_dir, RPSUP_STATE_FILE) < 0)
                return strdup("out of memory");
        r = state_load(state_path, &saved);
        if (r < 0)
                return strdup_printf("this image cannot read the state file %s: %s", state_path, strerror(-r));
        return NULL;
}

/* A failure of start-up before its point of no return (logged where it was decided): a new image of a
 * reexec executes the running one again, which takes over and reports `error` (or `what` and r); any other
 * rpsupd fails. */
static int start_failed_error(Manager *m, int r, const char *what, const char *error) {
        _cleanup_free_ char *why = NULL;

        if (!reexec_may_refuse())
                return r;
        why = error ? strdup(error) : strdup_printf("%s: %s", what, strerror(-r));
        (void) reexec_refuse(why ?: "it failed to set up", m->runtime_dir);
        return -EPROTO; /* logged: this image cannot go on, nor go back */
}

static int start_failed(Manager *m, int r, const char *what) {
        return start_failed_error(m, r, what, NULL);
}

int manager_start(Manager *m) {
        _cleanup_(saved_state_done) SavedState saved = {};
        _cleanup_free_ char *error = NULL;
        bool adopt = false;
        int r;

        r = setup_runtime(m);
        if (r < 0)
                return start_failed(m, r, "it cannot take the runtime directory and fds");
        if (reexec_may_refuse()) {
                _cleanup_free_ char *why = reexec_cannot_take_over(m);
                if (why) {
                        (void) reexec_refuse(why, m->runtime_dir);
                        return -EPROTO; /* logged: this image cannot go on, nor go back */
                }
        }
        /* A new image of a reexec takes over (checked above: the state loads, fds were passed), so this ends
         * nothing then. */
        r = load_predecessor(m, &saved, &adopt);
        if (r < 0)
                return start_failed(m, r, "it cannot read the state file");
        /* After the predecessor's leftovers were looked for in our own cgroup: then rpsupd leaves it (moving
         * into the supervisor leaf again is a no-op). */
        r = cgroup_tree_open(m->event, m->service_name, m->runtime_dir, &m->cgroups);
        if (r < 0)
                return start_failed(m, r, "it cannot set up the service's cgroups");

        r = strategy_select(m->config, m->listeners, &m->inherited, adopt ? saved.strategy : _STRATEGY_INVALID,
                            &m->strategy, &error);
        if (r < 0) {
                log_error_errno(r, "%s", error ?: "Failed to set up the strategy: %m");
                return start_failed_error(m, r, "it cannot set up the strategy", error);
        }
        log_info("Strategy %s: %s.", strategy_kind_to_string(m->strategy->kind), m->strategy->reason);
        m->strategy->event = m->event;
        m->strategy->fdstore = m->fdstore;
        worker_fdstore_set_listeners(m->fdstore, m->listeners);
        r = strategy_check_steering(m->strategy, m->config, &error);
        if (r < 0) {
                log_error_errno(r, "%s", error);
                return start_failed_error(m, r, "it cannot run the steering policy", error);
        }

        if ((r = setup_sockets(m)) < 0 ||
            (r = setup_service(m)) < 0 ||
            (r = setup_timers(m)) < 0)
                return start_failed(m, r, "it cannot set up its sockets, service or timers");
        if (adopt) {
                TakeoverHost host = { .service = m->service, .config = m->config, .workers = &m->workers,
                                      .same_process = reexec_taking_over(), .may_go_back = reexec_may_refuse() };
                for (unsigned i = 0; i < WORKERS_MAX; i++)
                        worker_fdstore_handed(m->fdstore, i, saved.fdstore_handed[i]);
                r = takeover_restore(&host, &saved);
                if (r < 0)
                        return start_failed(m, r, "it cannot take the workers over");
        }

        /* ==== THE POINT OF NO RETURN ====
         * takeover_restore() has just ended the hung workers the predecessor was replacing; from here on this
         * image ends what runs in unknown cgroups, starts workers and lets unclaimed fds go. A new image of a
         * reexec can no longer execute the running one again: a failure from here on ends rpsupd. Every
         * failure above goes through start_failed(). */

        /* What workers stored before, for the slots' next workers (the first ones start next). After the
         * point of no return: it drops, from systemd's store too, what this image's budgets refuse. */
        worker_fdstore_restore(m->fdstore, &m->inherited);
        r = start_service(m);
        if (r < 0)
                return r;
        worker_fdstore_arm(m->fdstore);

        release_unclaimed(m);
        if (reexec_taking_over()) {
                /* Same process: children that are not workers are ours to reap. */
                takeover_reap_strays(m->event, m->service);
                reexec_finish_takeover();
        }
        manager_changed(m);
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);

        /* Every worker is gone: nothing of the service outlives it (KillMode=process leaves that to us).
         * The last worker may not be reaped yet (the loop ended in its exit's callback): a zombie still
         * counts in its cgroup. */
        if (m->stopped) {
                siginfo_t si = {};
                while (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) >= 0 && si.si_pid > 0)
                        si = (siginfo_t) {};
                cgroup_tree_end_all(m->cgroups);
        }
        /* What systemd has not read yet (the last STATUS=, fds) goes out before we do. */
        systemd_notify_flush(USEC_PER_SEC);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}

int manager_new(const ManagerOptions *o, Config *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->service_name = strdup(o->service_name);
        m->config_path = strdup(o->config_path);
        if (!m->service_name || !m->config_path)
                return -ENOMEM;
        m->config = config_ref(config);
        m->started_at_realtime = now_usec(CLOCK_REALTIME);

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR2);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&m->event);
        if (r < 0)
                return r;
        r = worker_fdstore_new(m->event, &m->fdstore);
        if (r < 0)
                return r;
        systemd_notify_attach(m->event);
        (void) sd_event_set_watchdog(m->event, true);
        if ((r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, &m->sigint, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, &m->sighup, SIGHUP, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, &m->sigusr2, SIGUSR2, on_signal, m)) < 0 ||
            (r = sd_event_add_defer(m->event, &m->reexec_event, on_reexec, m)) < 0 ||
            (r = sd_event_source_set_enabled(m->reexec_event, SD_EVENT_OFF)) < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->queue_watch = queue_watch_free(m->queue_watch);
        m->balance = balance_free(m->balance);
        m->service = service_free(m->service);
        m->fdstore = worker_fdstore_free(m->fdstore);
        m->probes = probe_runner_free(m->probes); /* after the workers (their attempts end with them) */
        m->control = control_server_free(m->control);
        m->notify = notify_server_free(m->notify);
        m->strategy = strategy_free(m->strategy);
        m->listeners = listener_set_free(m->listeners);
        m->cgroups = cgroup_tree_free(m->cgroups);
        inherited_fds_done(&m->inherited);
        sd_event_source_disable_unref(m->deadline_timer);
        sd_event_source_disable_unref(m->publish_event);
        sd_event_source_disable_unref(m->sigterm);
        sd_event_source_disable_unref(m->sigint);
        sd_event_source_disable_unref(m->sighup);
        sd_event_source_disable_unref(m->sigusr2);
        sd_event_source_disable_unref(m->reexec_event);
        systemd_notify_detach();
        sd_event_unref(m->event);
        config_unref(m->config);
        free(m->runtime_dir);
        free(m->service_name);
        free(m->config_path);
        free(m);
        fdstore_kept_done();
        reexec_done();
        return NULL;
}
