/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

#include <systemd/sd-login.h>

#include "fd-util.h"
#include "log.h"
#include "parse-util.h"
#include "rpsup-limits.h"
#include "worker-spawn.h"
#include "cgroup-tree.h"
#include "takeover.h"
#include "worker-process.h"

static void end_saved_workers(const SavedState *saved, const Config *c, bool adopted);

static int restore(const TakeoverHost *h, const SavedState *saved, unsigned *adopted, unsigned *gone) {
        Service *s = h->service;
        /* The shadow's window goes on only with the counters it was based on: the previous rpsupd's maps. */
        bool counters_kept = s->strategy->steering_restored;

        service_adopt_counters(s, saved->next_generation, saved->next_slot, saved->scaled_workers,
                               saved->scaled_base);
        if (saved->has_steering)
                service_adopt_steering(s, saved->steering, saved->steering_config, saved->steering_since,
                                       saved->steering_by, saved->steering_changes);
        if (saved->has_shadow)
                service_adopt_shadow(s, saved->shadow, saved->shadow_since, saved->shadow_by);

        for (size_t i = 0; i < saved->n_generations; i++) {
                const SavedGeneration *sg = &saved->generations[i];
                Generation *g;

                g = service_adopt_generation(s, sg->id, sg->state, (Config *) h->config);
                if (!g)
                        return -EIO; /* logged */

                for (size_t j = 0; j < saved->n_slots; j++) {
                        const SavedSlot *ss = &saved->slots[j];
                        WorkerProcess *wp = NULL;
                        Slot *slot;
                        Worker *w;
                        int r;

                        if (ss->generation != sg->id)
                                continue;
                        slot = service_adopt_slot(s, g, ss->index, ss->id, ss->retiring);
                        if (!slot)
                                return -EIO; /* logged */
                        service_adopt_slot_history(slot, ss->restarts, ss->failures);
                        if (ss->has_shadow_base && counters_kept)
                                service_adopt_slot_shadow(slot, ss->shadow_base_syns, ss->shadow_base_projected);
                        if (!ss->has_worker)
                                continue;

                        r = worker_process_open(h->workers, ss->worker.pid, ss->worker.start_time, &wp);
                        if (r == -ESRCH || r == -ENOENT) {
                                log_info("Worker %u of generation %" PRIu64 " (pid %d) is gone.", ss->index, sg->id,
                                         (int) ss->worker.pid);
                                (*gone)++;
                                continue;
                        }
                        if (r < 0)
                                return log_error_errno(r, "Failed to take over worker %u of generation %" PRIu64
                                                       " (pid %d): %m", ss->index, sg->id, (int) ss->worker.pid);
                        w = service_adopt_worker(s, slot, ss->worker.pid, ss->worker.state, ss->worker.started_at);
                        if (!w) {
                                worker_process_close(wp);
                                return log_oom();
                        }
                        if (ss->worker.claimed_ready)
                                service_adopt_ready_claim(s, w);
                        if (ss->has_drain && h->same_process)
                                service_adopt_drain(s, slot, ss->drain_deadline);
                        r = worker_process_attach(wp, w);
                        if (r < 0)
                                return log_error_errno(r, "Failed to watch worker pid %d: %m", (int) w->pid);
                        (*adopted)++;
                }
        }
        if (saved->has_shadow && !counters_kept)
                service_shadow_restart(s);
        return 0;
}

/* A process of an earlier rpsupd: the pid and its start time, which together name one process. */
typedef struct Leftover {
        pid_t pid;
        uint64_t start_time;
} Leftover;

/* A pidfd for the process, if it still is the one that started at start_time: -ESRCH if it is gone (or the
 * pid now names another process). Checked after pidfd_open(), so the pidfd refers to the process checked. */
static int leftover_open(const Leftover *p) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t t;
        int r;

        fd = pidfd_open(p->pid, 0);
        if (fd < 0)
                return -errno;
        r = process_start_time(p->pid, &t);
        if (r == -ENOENT || (r >= 0 && t != p->start_time))
                return -ESRCH;
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

static int pidfd_signal(int fd, int sig) {
        return pidfd_send_signal(fd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* Waits until the processes of pfd have exited or the deadline passed, then SIGKILLs what is left. Returns
 * how many were killed. Closes the pidfds. */
/* Hung workers the previous rpsupd was replacing had been sent KillSignal= already: they are not taken over
 * (their replacements serve their slots) but ended now, with SIGKILL. */
static void end_departing(const SavedState *saved) {
        unsigned ended = 0;

        for (size_t i = 0; i < saved->n_departing; i++) {
                Leftover l = { saved->departing[i].pid, saved->departing[i].start_time };
                _cleanup_close_ int fd = leftover_open(&l);

                if (fd >= 0 && pidfd_signal(fd, SIGKILL) >= 0)
                        ended++;
        }
        if (ended > 0)
                log_warning("Sent SIGKILL to %u hung worker%s that the previous rpsupd was replacing.", ended,
                            ended == 1 ? "" : "s");
}

int takeover_restore(const TakeoverHost *h, const SavedState *saved) {
        unsigned adopted = 0, gone = 0;
        int r;

        r = restore(h, saved, &adopted, &gone);
        if (r < 0) {
                /* A new image of a reexec goes back to the running one, which takes them over. */
                if (h->may_go_back)
                        return r;
                /* This rpsupd does not go on: its predecessor's workers, taken over or not, would be left to
                 * nobody. */
                end_saved_workers(saved, h->config, true);
                return r;
        }
        log_info("Took over %u running worker%s from the previous rpsupd%s.", adopted, adopted == 1 ? "" : "s",
                 gone ? " (some had exited meanwhile and are restarted)" : "");
        end_departing(saved);
        return 0;
}

static unsigned wait_or_kill(struct pollfd *pfd, size_t n, usec_t deadline) {
        unsigned killed = 0;
        size_t alive = n;

        /* A pidfd stays readable once its process has exited: it leaves the poll set then (poll() ignores a
         * negative fd), or poll() would return at once until the deadline. */
        while (alive > 0) {
                usec_t t = now_usec(CLOCK_MONOTONIC);

                if (t >= deadline)
                        break;
                if (poll(pfd, n, (int) MIN((deadline - t) / USEC_PER_MSEC + 1, 1000)) < 0 && errno != EINTR)
                        break;
                for (size_t i = 0; i < n; i++)
                        if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                                pfd[i].fd = safe_close(pfd[i].fd);
                                alive--;
                        }
        }
        for (size_t i = 0; i < n; i++)
                if (pfd[i].fd >= 0) {
                        if (pidfd_signal(pfd[i].fd, SIGKILL) >= 0)
                                killed++;
                        pfd[i].fd = safe_close(pfd[i].fd);
                }
        return killed;
}

/* Ends processes left by an earlier rpsupd: KillSignal= to all of them at once, then SIGKILL to those still
 * there after StopTimeoutSec=. Waits on at most TAKEOVER_PIDFDS_MAX pidfds at a time (all with the one
 * deadline), so that no number of processes can exhaust rpsupd's fds. */
static void end_processes(const Leftover *p, size_t n, const Config *c) {
        struct pollfd pfd[TAKEOVER_PIDFDS_MAX];
        unsigned killed = 0, failed = 0;
        usec_t deadline;
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = leftover_open(&p[i]);

                if (fd == -ESRCH)
                        continue;
                if (fd < 0 || (r = pidfd_signal(fd, c->kill_signal)) < 0) {
                        if (failed++ == 0)
                                log_error_errno(fd < 0 ? fd : r, "Cannot stop process %d, left by an earlier rpsupd: "
                                                "%m. It keeps running unsupervised.", (int) p[i].pid);
                        continue;
                }
                /* A stopped (SIGSTOP) process only sees the signal once continued. */
                (void) pidfd_signal(fd, SIGCONT);
        }
        if (failed > 1)
                log_error("%u processes left by an earlier rpsupd could not be stopped.", failed);

        deadline = usec_add(now_usec(CLOCK_MONOTONIC), c->stop_timeout);
        failed = 0;
        for (size_t i = 0; i < n;) {
                size_t k = 0;

                for (; i < n && k < ELEMENTSOF(pfd); i++) {
                        int fd = leftover_open(&p[i]);
                        if (fd >= 0)
                                pfd[k++] = (struct pollfd) { .fd = fd, .events = POLLIN };
                        else if (fd != -ESRCH && failed++ == 0)
                                log_error_errno(fd, "Cannot wait for process %d, left by an earlier rpsupd, to "
                                                "stop: %m. It may keep running unsupervised.", (int) p[i].pid);
                }
                killed += wait_or_kill(pfd, k, deadline);
        }
        if (killed > 0)
                log_warning("%u process%s left by an earlier rpsupd did not stop within StopTimeoutSec=; sent "
                            "SIGKILL.", killed, killed == 1 ? "" : "es");
}

static void end_saved_workers(const SavedState *saved, const Config *c, bool adopted) {
        _cleanup_free_ Leftover *p = NULL;
        size_t n = 0;

        p = calloc(saved->n_slots ?: 1, sizeof(Leftover));
        if (!p) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < saved->n_slots; i++)
                if (saved->slots[i].has_worker)
                        p[n++] = (Leftover) { saved->slots[i].worker.pid, saved->slots[i].worker.start_time };
        if (n == 0)
                return;
        if (adopted)
                log_warning("Stopping the %zu worker%s of the earlier rpsupd: they could not be taken over.", n,
                            n == 1 ? "" : "s");
        else
                log_warning("Stopping %zu worker%s left by an earlier rpsupd: their listeners were not passed "
                            "back, so they cannot be supervised.", n, n == 1 ? "" : "s");
        end_processes(p, n, c);
}

void takeover_end_orphans(const SavedState *saved, const Config *c) {
        end_saved_workers(saved, c, false);
}

/* The cgroup.procs file of our own cgroup: on the unified hierarchy where there is one (pure or hybrid),
 * else in systemd's named v1 hierarchy (sd_pid_get_cgroup() names the cgroup the same in both). */
static int own_cgroup_procs(char **ret) {
        static const char *const roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup", "/sys/fs/cgroup/systemd" };
        _cleanup_free_ char *cgroup = NULL;
        int r;

        r = sd_pid_get_cgroup(0, &cgroup);
        if (r < 0)
                return r;
        if (!strstr(cgroup, ".service"))
                return -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                if (asprintf(ret, "%s%s/cgroup.procs", roots[i], cgroup) < 0)
                        return -ENOMEM;
                if (access(*ret, R_OK) == 0)
                        return 0;
                *ret = mfree(*ret);
        }
        return -ENOENT;
}

void takeover_end_cgroup_leftovers(const Config *c) {
        _cleanup_free_ char *procs = NULL;
        _cleanup_free_ Leftover *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0, allocated = 0;
        bool more = false;
        unsigned pid;
        int r;

        /* Only under systemd: then our cgroup is the service's own, and anything else in it is a worker
         * that an earlier rpsupd left behind (KillMode=process) and nobody supervises. */
        if (isempty(getenv("INVOCATION_ID")))
                return;
        /* ...and only if it is delegated to us: rpsupd may run inside some other unit, whose processes are
         * not ours to end. */
        if (!cgroup_own_is_delegated()) {
                log_debug("This service's cgroup is not delegated to it (Delegate=yes): not looking for what an "
                          "earlier rpsupd left in it.");
                return;
        }
        r = own_cgroup_procs(&procs);
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning_errno(r, "Cannot find this service's cgroup, so workers an earlier rpsupd left "
                                          "in it are not looked for: %m");
                return;
        }
        f = fopen(procs, "re");
        if (!f)
                return;
        while (fscanf(f, "%u", &pid) == 1) {
                Leftover l = { .pid = (pid_t) pid };

                if (l.pid == getpid() || process_start_time(l.pid, &l.start_time) < 0)
                        continue;
                if (n >= CGROUP_LEFTOVERS_MAX) {
                        more = true;
                        break;
                }
                if (n == allocated) {
                        size_t want = MIN(MAX(allocated * 2, (size_t) 64), (size_t) CGROUP_LEFTOVERS_MAX);
                        Leftover *a = reallocarray(p, want, sizeof(Leftover));
                        if (!a) {
                                log_oom();
                                more = true;
                                break;
                        }
                        p = a;
                        allocated = want;
                }
                p[n++] = l;
        }
        if (more)
                log_error("Only %zu of the processes left in this service's control group are stopped (at most "
                          "%u are taken): the others keep running unsupervised.", n, CGROUP_LEFTOVERS_MAX);
        if (n == 0)
                return;
        log_warning("Stopping %zu process%s left in this service's control group by an earlier rpsupd.", n,
                    n == 1 ? "" : "es");
        end_processes(p, n, c);
}

static int on_stray_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        log_debug("Reaped process %d, a child of the previous image that was not a worker.", (int) si->si_pid);
        /* Drops the loop's reference, the last one: sd-event frees the source once this callback returns. */
        (void) sd_event_source_set_floating(source, false);
        return 0;
}

/* One child's watch: it reaps the child when it exits (sd-event owns the source and the pidfd). */
static void watch_stray(sd_event *e, pid_t pid) {
        sd_event_source *source = NULL;
        int fd, r;

        fd = pidfd_open(pid, 0);
        if (fd < 0)
                return; /* reaped already */
        r = sd_event_add_child_pidfd(e, &source, fd, WEXITED, on_stray_exit, NULL);
        if (r < 0) {
                safe_close(fd);
                log_warning_errno(r, "Cannot watch process %d, a child of the previous image: it stays a zombie "
                                  "when it exits: %m", (int) pid);
                return;
        }
        (void) sd_event_source_set_child_pidfd_own(source, true);
        (void) sd_event_source_set_floating(source, true);
        sd_event_source_unref(source);
}

void takeover_reap_strays(sd_event *e, Service *s) {
        _cleanup_(closedirp) DIR *d = NULL;
        unsigned n = 0;
        struct dirent *de;

        d = opendir("/proc/self/task");
        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_fclose_ FILE *f = NULL;
                char path[300];
                int pid;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fscanf(f, "%d", &pid) == 1)
                        if (pid > 0 && !service_find_worker(s, pid)) {
                                watch_stray(e, pid);
                                n++;
                        }
        }
        if (n > 0)
                log_info("%u child process%s of the previous image (not workers: exec probes, ended workers) %s "
                         "reaped when %s.", n, n == 1 ? "" : "es", n == 1 ? "is" : "are", n == 1 ? "it exits" : "they exit");
}
