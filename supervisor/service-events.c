/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What workers report and what their deadlines do, and the backoff of respawns.
 *
 * How each worker state reacts (the generation's part is in service.c):
 *
 *   state     READY=1          STOPPING=1              exit                deadline passed
 *   starting  -> ready         not ready: fails the    fails the start,    ReadyTimeoutSec=: not ready
 *                              start/reload/scale or   reload or scale,    (as STOPPING=1)
 *                              is replaced             or respawn
 *   ready     -                -> draining, out of     respawn (backoff    WatchdogSec=: SIGABRT,
 *                              the steering            on failure)         replaced
 *   draining  -                -                       respawn, or freed   the slot's drain window:
 *                                                      if retiring         stopped (KillSignal=)
 *   stopping  -                -                       freed or respawn    TimeoutStopSec=: SIGKILL
 *   killed    -                -                       freed or respawn    - */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "rpsup-limits.h"
#include "log.h"
#include "parse-util.h"
#include "service-internal.h"
#include "string-util.h"
#include "worker-notify.h"

/* ---- describing things ---- */

static char *describe_exit(int code, int status) {
        switch (code) {
        case CLD_EXITED:
                return strdup_printf("exited with status %d", status);
        case CLD_KILLED:
                return strdup_printf("was killed by %s", signal_name(status));
        case CLD_DUMPED:
                return strdup_printf("dumped core on %s", signal_name(status));
        default:
                return strdup("exited");
        }
}

static bool exit_is_clean(int code, int status) {
        /* As systemd: exit status 0, or a signal that asks for an orderly end. A worker taken over from an
         * earlier rpsupd (code 0: its status is not ours to know) that leaves on its own is a failure. */
        if (code == CLD_EXITED)
                return status == 0;
        if (code == CLD_KILLED)
                return status == SIGHUP || status == SIGINT || status == SIGTERM || status == SIGPIPE;
        return false;
}

/* A worker that was on its way out ended as asked: cleanly, by the signal it was sent, or by SIGKILL
 * after it outlived TimeoutStopSec= (reported then). Anything else is a crash. An adopted worker's exit
 * (code 0) is not ours to know. */
static bool exit_is_orderly(int code, int status, WorkerState state, StopReason reason, int kill_signal) {
        bool asked = state == WORKER_STOPPING || state == WORKER_KILLED;

        if (code == 0 || exit_is_clean(code, status))
                return true;
        if (code != CLD_KILLED && code != CLD_DUMPED)
                return false;
        if (state == WORKER_KILLED && status == SIGKILL)
                return true;
        if (asked && status == (reason == STOP_WATCHDOG ? SIGABRT : kill_signal))
                return true;
        return false;
}

/* ---- events ---- */

static void worker_not_ready(Service *s, Worker *w, const char *why, StopReason reason);

/* The worker is ready: it said so (READY=1, or exec with Ready=exec) and passed its probes. */
static void worker_is_ready(Service *s, Worker *w) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        usec_t t = now(s);

        w->state = WORKER_READY;
        w->ready_at = t;
        w->ready_deadline = USEC_INFINITY;
        if (g->config->watchdog > 0)
                w->watchdog_deadline = usec_add(t, g->config->watchdog);
        /* Probed on while its generation waits for the others, and during its soak. */
        if (g->config->probe != PROBE_NONE)
                w->probe_at = usec_add(t, g->config->probe_interval);

        if (g == s->pending) {
                if (s->op && s->op->generation == g)
                        s->op->ready_at = t;
                generation_check_ready(s, g);
        }
        else if (g == s->live || g == s->warm) {
                /* A replacement in a serving slot (or in a warm one, which takes a canary's rest). */
                if (slot->restarts > 0)
                        log_info("Worker %u of generation %" PRIu64 " is back (pid %d).", slot->index, g->id,
                                 (int) w->pid);
                steering_update(s);
                scale_check_done(s);
        }
        changed(s);
}

/* The worker says it is ready. With ReadyProbe=, it must prove it first: it stays starting (its ready
 * timeout still runs) until it passed ReadyProbePasses= probes in a row. */
static void worker_became_ready(Service *s, Worker *w) {
        Config *c = w->slot->generation->config;

        if (c->probe == PROBE_NONE || !s->host->probe) {
                worker_is_ready(s, w);
                return;
        }
        w->claimed_ready = true;
        w->probe_at = now(s);
        changed(s);
}

/* ---- readiness probes ---- */

static bool worker_probed_now(Service *s, const Worker *w) {
        const Generation *g = w->slot->generation;

        /* Before it is ready; after, while its generation waits for the others or soaks. */
        if (w->state == WORKER_STARTING)
                return w->claimed_ready;
        return w->state == WORKER_READY && !w->slot->retiring &&
               (g == s->pending || (g == s->live && g->state == GENERATION_SOAKING));
}

static void worker_probe_result(Service *s, Worker *w, int r, const char *what);

static void worker_probe_start(Service *s, Worker *w) {
        int r;

        w->probe_at = USEC_INFINITY;
        if (!worker_probed_now(s, w))
                return;
        w->probing = true;
        r = s->host->probe(s->host_userdata, w);
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("could not be run: %s", strerror(-r));
                worker_probe_result(s, w, r, m ?: "could not be run");
        }
}

static void worker_probe_result(Service *s, Worker *w, int r, const char *what) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        Config *c = g->config;
        _cleanup_free_ char *m = NULL;

        w->probing = false;
        if (!worker_probed_now(s, w))
                return;
        if (r >= 0) {
                w->probe_passes++;
                w->probe_failures = 0;
        } else {
                w->probe_passes = 0;
                w->probe_failures++;
                s->counters.probe_failures++;
                free(w->probe_failure);
                w->probe_failure = strdup(what ?: "failed");
                log_info("Worker %u of generation %" PRIu64 " (pid %d) failed its readiness probe (%u of %u in a "
                         "row): %s", slot->index, g->id, (int) w->pid, w->probe_failures, c->probe_failures,
                         what ?: "failed");
        }

        if (w->state == WORKER_STARTING && r >= 0 && w->probe_passes >= c->probe_passes) {
                worker_is_ready(s, w);
                return;
        }
        if (r < 0 && w->probe_failures >= c->probe_failures) {
                if (w->probe_failures == 1)
                        m = strdup_printf("(pid %d) failed its readiness probe: %s", (int) w->pid, what ?: "failed");
                else
                        m = strdup_printf("(pid %d) failed its readiness probe %u times in a row: %s", (int) w->pid,
                                          w->probe_failures, what ?: "failed");
                if (w->state == WORKER_STARTING) {
                        _cleanup_free_ char *n = strdup_printf("worker %u %s", slot->index, m ?: "failed its probe");
                        worker_not_ready(s, w, n ?: "a worker failed its readiness probe", STOP_PROBE);
                        return;
                }
                if (soak_fails(s, slot, m ?: "failed its readiness probe"))
                        return;
                if (g == s->pending) {
                        _cleanup_free_ char *n = strdup_printf("worker %u %s", slot->index, m ?: "failed its probe");
                        generation_fail(s, g, n ?: "a worker failed its readiness probe");
                        return;
                }
        }
        w->probe_at = usec_add(now(s), c->probe_interval);
        changed(s);
}

void service_worker_probed(Service *s, Worker *w, int r, const char *what) {
        SERVICE_STEP(s);

        if (w->probing)
                worker_probe_result(s, w, r, what);
}

void service_worker_exec_done(Service *s, Worker *w, int error) {
        SERVICE_STEP(s);
        if (error != 0) {
                w->exec_error = error < 0 ? -error : error;
                return; /* the process exits with status 127 and is handled as an exit */
        }
        w->exec_done = true;
        if (w->state == WORKER_STARTING && w->slot->generation->config->ready == READY_EXEC)
                worker_became_ready(s, w);
}

void service_worker_ready(Service *s, Worker *w) {
        SERVICE_STEP(s);
        if (w->state != WORKER_STARTING)
                return;
        if (w->slot->generation->config->ready != READY_NOTIFY)
                return; /* Ready=exec: READY=1 carries no extra meaning */
        worker_became_ready(s, w);
}

/* A worker will not become ready (its ready timeout, or it said STOPPING=1): the start, reload or scale that
 * waits for it fails now; a worker restarted into a live slot is replaced. */
static void worker_not_ready(Service *s, Worker *w, const char *why, StopReason reason) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;

        w->ready_deadline = USEC_INFINITY;
        if (g == s->pending)
                generation_fail(s, g, why);
        else if (slot_is_joining(s, slot))
                scale_fail(s, why);
        else {
                log_warning("Worker %u of generation %" PRIu64 ": %s; replacing it.", slot->index, g->id, why);
                worker_stop(s, w, reason);
                changed(s);
        }
}

void service_worker_stopping(Service *s, Worker *w) {
        SERVICE_STEP(s);
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        _cleanup_free_ char *m = NULL;

        /* The worker says it is going away on its own. */
        if (w->state != WORKER_READY && w->state != WORKER_STARTING)
                return;
        if (g == s->pending || slot_is_joining(s, slot) || w->state == WORKER_STARTING) {
                /* It will not serve: whatever waits for it is decided now, as its ready timeout would. */
                m = strdup_printf("worker %u (pid %d) said STOPPING=1 before %s", slot->index, (int) w->pid,
                                  w->state == WORKER_STARTING ? "it was ready" : "its generation took connections");
                worker_not_ready(s, w, m ?: "a worker stopped before it was ready", STOP_GAVE_UP);
                return;
        }
        m = strdup_printf("(pid %d) said STOPPING=1 during the soak", (int) w->pid);
        if (soak_fails(s, slot, m ?: "said STOPPING=1 during the soak"))
                return;
        log_info("Worker %u of generation %" PRIu64 " (pid %d) is stopping on its own.", slot->index, g->id,
                 (int) w->pid);
        /* Out of the steering now; it has TimeoutStopSec= to be gone, then it is stopped and replaced. */
        w->state = WORKER_DRAINING;
        slot->drain_deadline = usec_add(now(s), g->config->stop_timeout);
        steering_update(s);
        changed(s);
}

void service_worker_watchdog(Service *s, Worker *w) {
        Config *c = w->slot->generation->config;

        if (w->state == WORKER_READY && c->watchdog > 0)
                w->watchdog_deadline = usec_add(now(s), c->watchdog);
}

void service_worker_watchdog_trigger(Service *s, Worker *w) {
        SERVICE_STEP(s);
        if (w->state == WORKER_READY && w->slot->generation->config->watchdog > 0) {
                w->watchdog_deadline = now(s);
                changed(s);
        }
}

void service_worker_extend_timeout(Service *s, Worker *w, usec_t usec) {
        Config *c = w->slot->generation->config;
        usec_t t = usec_add(now(s), usec), limit = USEC_INFINITY;

        if (w->state != WORKER_STARTING)
                return;
        /* A worker that keeps asking for more time would hold a start, reload or scale forever: its start
         * may stretch to READY_EXTEND_FACTOR x ReadyTimeoutSec=, not beyond. */
        if (c->ready_timeout != USEC_INFINITY && c->ready_timeout < USEC_INFINITY / READY_EXTEND_FACTOR)
                limit = usec_add(w->started_at, c->ready_timeout * READY_EXTEND_FACTOR);
        if (t > limit) {
                if (!w->extend_capped) {
                        char buf[FORMAT_TIMESPAN_MAX];
                        format_timespan(buf, sizeof(buf), limit - w->started_at, USEC_PER_MSEC);
                        log_warning("Worker %u of generation %" PRIu64 " (pid %d) asks for more time to get "
                                    "ready than allowed; it must be ready within %s of its start (%ux "
                                    "ReadyTimeoutSec=).", w->slot->index, w->slot->generation->id, (int) w->pid,
                                    buf, READY_EXTEND_FACTOR);
                        w->extend_capped = true;
                }
                t = limit;
        }
        if (t > w->ready_deadline) {
                w->ready_deadline = t;
                changed(s);
        }
}

void service_worker_errno(Service *s, Worker *w, int error) {
        /* ERRNO=: why the worker is about to fail, as sd_notify() users report it. */
        if (error > 0)
                w->errno_value = error;
}

void service_worker_status(Service *s, Worker *w, const char *text) {
        char *t = strndup(text, STATUS_TEXT_MAX);

        if (!t)
                return;
        /* Keep one printable line. */
        for (char *p = t; *p; p++)
                if ((unsigned char) *p < ' ')
                        *p = ' ';
        free(w->status_text);
        w->status_text = t;
        changed(s);
}

void service_worker_notify(Service *s, Worker *w, const NotifyMessage *msg) {
        SERVICE_STEP(s);

        /* What it says about itself first, then what it says it is doing. */
        if (msg->status)
                service_worker_status(s, w, msg->status);
        if (msg->errno_value > 0)
                service_worker_errno(s, w, msg->errno_value);
        if (msg->extend_timeout > 0)
                service_worker_extend_timeout(s, w, msg->extend_timeout);
        if (msg->watchdog)
                service_worker_watchdog(s, w);
        if (msg->watchdog_trigger)
                service_worker_watchdog_trigger(s, w);
        if (msg->ready)
                service_worker_ready(s, w);
        if (msg->stopping)
                service_worker_stopping(s, w);
}

static usec_t restart_delay(unsigned consecutive_failures) {
        usec_t d = RESTART_DELAY_MIN_USEC;

        for (unsigned i = 1; i < consecutive_failures && d < RESTART_DELAY_MAX_USEC; i++)
                d *= 2;
        return MIN(d, RESTART_DELAY_MAX_USEC);
}

static void slot_schedule_respawn(Service *s, Slot *slot, bool failure, const char *what) {
        Config *c = slot->generation->config;
        char buf[FORMAT_TIMESPAN_MAX];
        usec_t delay;

        if (c->restart == RESTART_NO || (c->restart == RESTART_ON_FAILURE && !failure)) {
                log_warning("Worker %u of generation %" PRIu64 " %s; Restart=%s, so the slot stays empty.",
                            slot->index, slot->generation->id, what, restart_mode_to_string(c->restart));
                return;
        }
        if (failure)
                slot->consecutive_failures++;
        delay = failure ? restart_delay(slot->consecutive_failures) : RESTART_DELAY_MIN_USEC;
        slot->respawn_at = usec_add(now(s), delay);
        format_timespan(buf, sizeof(buf), delay, USEC_PER_MSEC);
        if (slot->consecutive_failures >= CRASH_LOOP_FAILURES)
                log_error("Worker %u of generation %" PRIu64 " is crash-looping: %u failures in a row, the "
                          "last one: %s. Next attempt in %s.", slot->index, slot->generation->id,
                          slot->consecutive_failures, what, buf);
        else
                log_warning("Worker %u of generation %" PRIu64 " %s; restarting it in %s.", slot->index,
                            slot->generation->id, what, buf);
}

/* How the worker ended, for the log and status: "(pid N) ...". */
static char *worker_describe_exit(const Worker *w, int code, int status) {
        _cleanup_free_ char *how = describe_exit(code, status);
        const char *h = how ?: "exited", *before = w->state == WORKER_STARTING ? " before it was ready" : "";
        int pid = (int) w->pid;

        switch (w->stop_reason) {
        case STOP_READY_TIMEOUT:
                return strdup_printf("(pid %d) was not ready in time and %s", pid, h);
        case STOP_WATCHDOG:
                return strdup_printf("(pid %d) missed its watchdog and %s", pid, h);
        case STOP_STALLED:
                return strdup_printf("(pid %d) stalled and %s", pid, h);
        case STOP_GAVE_UP:
                return strdup_printf("(pid %d) stopped before it was ready and %s", pid, h);
        case STOP_PROBE:
                return strdup_printf("(pid %d) failed its readiness probe and %s", pid, h);
        case STOP_LINGERED:
                return strdup_printf("(pid %d) said it was stopping, did not exit in time and %s", pid, h);
        default:
                if (w->errno_value > 0 && !w->exec_error)
                        return strdup_printf("(pid %d) %s%s, reporting %s", pid, h, before, strerror(w->errno_value));
                if (w->exec_error)
                        return strdup_printf("(pid %d) could not execute %s: %s", pid,
                                             w->slot->generation->config->exec_path, strerror(w->exec_error));
                return strdup_printf("(pid %d) %s%s", pid, h, before);
        }
}

/* A worker that was on its way out (retired, or the service stops) is gone: nothing replaces it. */
static void retired_worker_exited(Service *s, Slot *slot, const char *what, bool orderly) {
        Generation *g = slot->generation;

        if (orderly)
                log_debug("Worker %u of generation %" PRIu64 " %s.", slot->index, g->id, what);
        else {
                /* It was on its way out, but did not end as asked: operators must see crashes here too (a
                 * core dump per retired worker is a bug in the daemon, or in its stop). */
                s->counters.retiring_failures++;
                log_warning("Worker %u of generation %" PRIu64 " %s while %s.", slot->index, g->id, what,
                            s->state == SERVICE_STOPPING ? "the service stopped" : "it was retiring");
        }
        slot_maybe_free(s, slot);
        changed(s);
}

/* A worker replaced while it hung is gone: its replacement has the slot. */
static void departing_worker_exited(Service *s, Worker *w, int code, int status) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        _cleanup_free_ char *what = worker_describe_exit(w, code, status);

        if (exit_is_orderly(code, status, w->state, w->stop_reason, g->config->kill_signal))
                log_info("Worker %u of generation %" PRIu64 " %s; its replacement serves the slot.", slot->index,
                         g->id, what ?: "exited");
        else {
                s->counters.retiring_failures++;
                log_warning("Worker %u of generation %" PRIu64 " %s while it was being replaced.", slot->index, g->id,
                            what ?: "exited");
        }
        worker_free(s, w);
        slot_maybe_free(s, slot); /* may free the slot and its generation, if they were only waiting for it */
        changed(s);
}

void service_worker_exited(Service *s, Worker *w, int code, int status) {
        SERVICE_STEP(s);
        if (w->departing) {
                departing_worker_exited(s, w, code, status);
                return;
        }
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        _cleanup_free_ char *what = worker_describe_exit(w, code, status), *m = NULL;
        WorkerState state = w->state;
        StopReason reason = w->stop_reason;
        usec_t ready_at = w->ready_at;
        bool expected, failure, orderly;

        expected = reason == STOP_RETIRED || slot->retiring || g->state == GENERATION_RETIRING ||
                   g->state == GENERATION_FAILED || s->state == SERVICE_STOPPING;
        failure = !exit_is_clean(code, status) || state == WORKER_STARTING ||
                  (reason != STOP_NONE && reason != STOP_RETIRED);
        /* One that never ran (exec failed), never got ready in a start or scale-out that failed, or belongs to
         * a generation rolled back for failing (g->failure), was reported with that failure. */
        orderly = w->exec_error || (ready_at == 0 && (g->state == GENERATION_FAILED || slot->scale_failed)) ||
                  (g->state == GENERATION_RETIRING && g->failure) ||
                  exit_is_orderly(code, status, state, reason, g->config->kill_signal);
        worker_free(s, w);

        if (expected) {
                retired_worker_exited(s, slot, what ?: "exited", orderly);
                return;
        }

        if (failure) {
                s->counters.worker_failures++;
                free(slot->last_failure);
                slot->last_failure = what ? strdup(what) : NULL;
        }
        /* A worker that served long enough resets its slot's backoff. */
        if (ready_at > 0 && now(s) - ready_at >= RESTART_HEALTHY_USEC)
                slot->consecutive_failures = 0;

        /* One that the start, reload or scale in progress waited for: that fails (and logs, once). */
        if (g == s->pending || (slot_is_joining(s, slot) && state == WORKER_STARTING)) {
                m = strdup_printf("worker %u %s", slot->index, what ?: "exited");
                if (g == s->pending)
                        generation_fail(s, g, m ?: "a worker exited");
                else
                        scale_fail(s, m ?: "a worker exited");
                return;
        }

        /* The soaking generation lost a worker: back to the warm one. */
        if (soak_fails(s, slot, what ?: "exited"))
                return;

        /* A live worker went away: it takes no new connections until its replacement is ready. Its
         * listener stays open in rpsupd, so what was queued on it waits for the replacement. */
        slot->drain_deadline = USEC_INFINITY;
        steering_update(s);
        slot_schedule_respawn(s, slot, failure, what ?: "exited");
        changed(s);
}

/* A serving worker hangs: it leaves the steering, what is queued for it moves to the serving workers where
 * the strategy can move it, and it is replaced. */
void worker_replace_hung(Service *s, Worker *w, StopReason reason) {
        Slot *slot = w->slot;
        int r;

        worker_stop(s, w, reason); /* not serving from here on */
        steering_update(s);
        r = s->strategy->ops->evacuate ? s->strategy->ops->evacuate(s->strategy, slot, s->next_slot_id) : 0;
        if (r > 0) {
                slot->id = service_new_slot_id(s); /* the id its new listeners were named by */
                log_info("Moved the connections waiting for worker %u to the serving workers.", slot->index);
        }
        slot->stall_since = 0;
        slot->sampled = false;

        /* It failed: counted as any failure of the slot (backoff, crash-loop report). */
        s->counters.worker_failures++;
        free(slot->last_failure);
        slot->last_failure = strdup(reason == STOP_WATCHDOG ? "missed its watchdog" : "stalled");

        /* Its replacement starts now, beside it: the hung one leaves the slot and ends on its own time
         * (KillSignal, then SIGKILL after StopTimeoutSec=), finishing what it can. Only one at a time: a
         * replacement that hangs too waits for its backoff, so hung processes cannot pile up. */
        slot->worker = NULL;
        w->departing = true;
        LIST_INSERT_HEAD(&s->departing, w, departing_link);
        slot->n_departing++;
        if (slot->n_departing > 1 || w->slot->generation->config->restart == RESTART_NO) {
                slot_schedule_respawn(s, slot, true, reason == STOP_WATCHDOG ? "missed its watchdog" : "stalled");
                changed(s);
                return;
        }
        slot->consecutive_failures++;
        slot->restarts++;
        r = slot_spawn(s, slot);
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("could not be replaced: %s", strerror(-r));
                log_error_errno(r, "Failed to start a replacement for worker %u: %m", slot->index);
                slot_schedule_respawn(s, slot, true, m ?: "could not be replaced");
        }
        changed(s);
}

void service_slot_stalled(Service *s, Slot *slot) {
        SERVICE_STEP(s);
        Worker *w = slot->worker;
        char buf[FORMAT_TIMESPAN_MAX];

        if (!w || w->state != WORKER_READY || slot->generation != s->live || slot->retiring)
                return;
        s->counters.stall_replacements++;
        format_timespan(buf, sizeof(buf), stall_timeout(slot->generation->config), USEC_PER_MSEC);
        if (slot->generation->state == GENERATION_SOAKING) {
                _cleanup_free_ char *m = strdup_printf("(pid %d) accepted nothing for %s while connections "
                                                       "waited for it", (int) w->pid, buf);
                worker_stop(s, w, STOP_STALLED);
                soak_fails(s, slot, m ?: "stalled");
                return;
        }
        log_error("Worker %u of generation %" PRIu64 " (pid %d) accepted nothing for %s while connections "
                  "waited for it; replacing it.", slot->index, slot->generation->id, (int) w->pid, buf);
        worker_replace_hung(s, w, STOP_STALLED);
}

/* ---- time ---- */

/* The deadline of a worker in its state: USEC_INFINITY for none. */
static usec_t worker_deadline(const Worker *w) {
        usec_t probe = w->probing ? USEC_INFINITY : w->probe_at;

        switch (w->state) {
        case WORKER_STARTING:
                return MIN(w->ready_deadline, probe);
        case WORKER_READY:
                return MIN(w->watchdog_deadline, probe);
        case WORKER_STOPPING:
                return w->stop_deadline;
        case WORKER_DRAINING: /* its slot's drain window */
        case WORKER_KILLED:
        default:
                return USEC_INFINITY;
        }
}

usec_t service_next_deadline(Service *s) {
        usec_t next = s->sampling ? s->next_sample : USEC_INFINITY;

        next = MIN(next, s->soak_deadline);
        if (s->strategy->ops->next_deadline)
                next = MIN(next, s->strategy->ops->next_deadline(s->strategy));

        Worker *w;
        LIST_FOREACH(w, &s->departing, departing_link)
                next = MIN(next, worker_deadline(w));
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];

                        next = MIN(next, slot->respawn_at);
                        next = MIN(next, slot->drain_deadline);
                        next = MIN(next, slot->drain_check_at);
                        if (slot->worker)
                                next = MIN(next, worker_deadline(slot->worker));
                }
        return next;
}

/* The slot's drain window is over: a retiring slot's worker is stopped; a serving slot's worker that said
 * STOPPING=1 and is still there is stopped as a failure. */
static void slot_drain_over(Service *s, Slot *slot) {
        Generation *g = slot->generation;
        Worker *w = slot->worker;
        char buf[FORMAT_TIMESPAN_MAX];

        slot->drain_deadline = USEC_INFINITY;
        if (!w) {
                slot_maybe_free(s, slot);
                return;
        }
        if (!slot->retiring && g->state != GENERATION_RETIRING && g->state != GENERATION_FAILED) {
                format_timespan(buf, sizeof(buf), g->config->stop_timeout, USEC_PER_MSEC);
                log_warning("Worker %u of generation %" PRIu64 " (pid %d) said it was stopping but is still "
                            "running after %s; stopping it.", slot->index, g->id, (int) w->pid, buf);
                worker_stop(s, w, STOP_LINGERED);
        } else {
                log_debug("Drain window of worker %u of generation %" PRIu64 " is over.", slot->index, g->id);
                worker_stop(s, w, STOP_RETIRED);
        }
}

/* The next look at a draining worker: the next point of a grid of `period` at least half a period away, so
 * that the workers of every retirement are looked at together (they share one dump of the kernel's
 * connection table: worker-connections.c) and two looks in a row are apart. */
static usec_t drain_check_next(usec_t t, usec_t period) {
        usec_t next = (t / period + 1) * period;

        return next - t < period / 2 ? next + period : next;
}

/* A retiring slot's worker drains: once nothing waits in its listeners, it has no connection open and no
 * datagram flow reaches it any more (flows_busy), it is asked to stop (KillSignal) without waiting for the
 * drain window to end. */
static void slot_drain_check(Service *s, Slot *slot, usec_t t) {
        Worker *w = slot->worker;
        SlotDrainState ds = { .accept_queue = -1, .open_connections = -1 };
        int r;

        slot->drain_check_at = USEC_INFINITY;
        if (!w || w->state != WORKER_DRAINING || !slot->retiring || !s->strategy->ops->slot_drain_state)
                return;
        r = s->strategy->ops->slot_drain_state(s->strategy, slot, w->pid, &ds);
        if (r == -EOPNOTSUPP)
                return; /* the drain window decides */
        if (r >= 0 && ds.accept_queue == 0 && ds.open_connections == 0 && !ds.flows_busy) {
                /* Twice in a row: one look may miss a connection that moved while the kernel listed them. */
                if (slot->drain_idle_seen) {
                        log_debug("Worker %u of generation %" PRIu64 " (pid %d) has drained: asking it to stop.",
                                  slot->index, slot->generation->id, (int) w->pid);
                        slot->drain_deadline = USEC_INFINITY;
                        worker_stop(s, w, STOP_RETIRED);
                        changed(s);
                        return;
                }
                slot->drain_idle_seen = true;
                slot->drain_check_at = drain_check_next(t, DRAIN_CHECK_USEC);
                return;
        }
        slot->drain_idle_seen = false;
        /* Nothing new reaches a retiring slot (but under the kernel policy, which still gives it new
         * connections: there a queue that stays says nothing, except while the service stops, when
         * rpsupd steers round-robin): a queue that does not go down is one its worker does not take from
         * (stopped, or busy with one long request). After StallSec= what waits there moves to the
         * serving workers; the worker itself drains on: what it has open decides when it is asked to stop. */
        if (r >= 0 && ds.accept_queue > 0 && slot->drain_queue >= 0 && ds.accept_queue >= slot->drain_queue &&
            !slot->drain_abandoned && (s->steering != STEERING_KERNEL || s->state == SERVICE_STOPPING)) {
                usec_t timeout = stall_timeout(slot->generation->config);

                if (slot->drain_stuck_since == 0)
                        slot->drain_stuck_since = t;
                else if (timeout > 0 && t - slot->drain_stuck_since >= timeout && s->strategy->ops->abandon) {
                        char buf[FORMAT_TIMESPAN_MAX];

                        format_timespan(buf, sizeof(buf), timeout, USEC_PER_MSEC);
                        log_warning("Worker %u of generation %" PRIu64 " (pid %d) took nothing from its queue for %s "
                                    "while retiring; moving what waits for it to the serving workers.", slot->index,
                                    slot->generation->id, (int) w->pid, buf);
                        s->strategy->ops->abandon(s->strategy, slot);
                        slot->drain_abandoned = true;
                        changed(s);
                }
        } else
                slot->drain_stuck_since = 0;
        slot->drain_queue = r >= 0 ? ds.accept_queue : -1;
        /* What cannot be known now will not be known in 100 ms either: look less often. */
        slot->drain_check_at = drain_check_next(t, r >= 0 && ds.accept_queue >= 0 && ds.open_connections >= 0
                                                        ? DRAIN_CHECK_USEC : DRAIN_CHECK_UNKNOWN_USEC);
}

static void slot_respawn(Service *s, Slot *slot) {
        int r;

        slot->respawn_at = USEC_INFINITY;
        slot->restarts++;
        r = slot_spawn(s, slot);
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("could not be started: %s", strerror(-r));
                log_error_errno(r, "Failed to restart worker %u: %m", slot->index);
                slot_schedule_respawn(s, slot, true, m ?: "could not be started");
        }
        changed(s);
}

/* The worker's deadline (worker_deadline()) passed: what that means depends on its state. */
static void worker_deadline_passed(Service *s, Worker *w, usec_t t) {
        Slot *slot = w->slot;
        Generation *g = slot->generation;
        char buf[FORMAT_TIMESPAN_MAX];

        if ((w->state == WORKER_STARTING || w->state == WORKER_READY) && !w->probing && w->probe_at <= t) {
                worker_probe_start(s, w);
                return;
        }
        switch (w->state) {
        case WORKER_STARTING: {
                _cleanup_free_ char *m = NULL;
                format_timespan(buf, sizeof(buf), g->config->ready_timeout, USEC_PER_MSEC);
                m = strdup_printf("worker %u (pid %d) was not ready within %s", slot->index, (int) w->pid, buf);
                worker_not_ready(s, w, m ?: "a worker was not ready in time", STOP_READY_TIMEOUT);
                break;
        }
        case WORKER_READY:
                format_timespan(buf, sizeof(buf), g->config->watchdog, USEC_PER_MSEC);
                s->counters.watchdog_kills++;
                w->watchdog_deadline = USEC_INFINITY;
                if (g->state == GENERATION_SOAKING) {
                        _cleanup_free_ char *m = strdup_printf("(pid %d) sent no WATCHDOG=1 for %s", (int) w->pid, buf);
                        worker_stop(s, w, STOP_WATCHDOG);
                        soak_fails(s, slot, m ?: "missed its watchdog");
                        break;
                }
                log_error("Worker %u of generation %" PRIu64 " (pid %d) sent no WATCHDOG=1 for %s; replacing it.",
                          slot->index, g->id, (int) w->pid, buf);
                worker_replace_hung(s, w, STOP_WATCHDOG);
                break;
        case WORKER_STOPPING:
                format_timespan(buf, sizeof(buf), g->config->stop_timeout, USEC_PER_MSEC);
                log_warning("Worker %u of generation %" PRIu64 " (pid %d) did not exit within %s of %s; sending "
                            "SIGKILL.", slot->index, g->id, (int) w->pid, buf,
                            signal_name(w->stop_reason == STOP_WATCHDOG ? SIGABRT : g->config->kill_signal));
                s->counters.stop_timeouts++;
                w->state = WORKER_KILLED;
                w->stop_deadline = USEC_INFINITY;
                worker_kill(s, w, SIGKILL);
                changed(s);
                break;
        case WORKER_DRAINING:
        case WORKER_KILLED:
        default:
                break;
        }
}

/* Handles one expired deadline; returns false when there was none. One at a time, because handling one
 * may free slots and generations. */
static bool tick_one(Service *s, usec_t t) {
        Worker *w;

        if (s->soak_deadline <= t) {
                soak_promote(s, "soak");
                return true;
        }
        LIST_FOREACH(w, &s->departing, departing_link)
                if (worker_deadline(w) <= t) {
                        worker_deadline_passed(s, w, t);
                        return true;
                }
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];

                        if (slot->drain_deadline <= t) {
                                slot_drain_over(s, slot);
                                return true;
                        }
                        if (slot->drain_check_at <= t) {
                                slot_drain_check(s, slot, t);
                                return true;
                        }
                        if (slot->respawn_at <= t) {
                                slot_respawn(s, slot);
                                return true;
                        }
                        if (slot->worker && worker_deadline(slot->worker) <= t) {
                                worker_deadline_passed(s, slot->worker, t);
                                return true;
                        }
                }
        return false;
}

void service_tick(Service *s) {
        SERVICE_STEP(s);
        usec_t t = now(s);
        unsigned guard = 0;

        while (tick_one(s, t) && ++guard < 100000)
                ;
        if (s->strategy->ops->tick)
                s->strategy->ops->tick(s->strategy, t);
        stall_tick(s, t);
}

