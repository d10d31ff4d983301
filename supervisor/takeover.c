/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "fd-util.h"
#include "log.h"
#include "manager.h"
#include "parse-util.h"
#include "spawn.h"
#include "takeover.h"
#include "worker-process.h"

int takeover_restore(Manager *m, const SavedState *saved) {
        Service *s = m->service;
        unsigned adopted = 0, gone = 0;

        s->next_generation_id = MAX(s->next_generation_id, saved->next_generation);
        s->next_slot_id = MAX(s->next_slot_id, saved->next_slot);
        s->scaled_workers = saved->scaled_workers;
        s->scaled_base = saved->scaled_base;

        for (size_t i = 0; i < saved->n_generations; i++) {
                const SavedGeneration *sg = &saved->generations[i];
                Generation *g;

                g = service_adopt_generation(s, sg->id, sg->state, m->config);
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
                        slot->restarts = ss->restarts;
                        slot->failures = ss->failures;
                        if (!ss->has_worker)
                                continue;

                        r = worker_process_open(m, ss->worker.pid, ss->worker.start_time, &wp);
                        if (r < 0) {
                                log_info("Worker %u of generation %" PRIu64 " (pid %d) is gone.", ss->index, sg->id,
                                         (int) ss->worker.pid);
                                gone++;
                                continue;
                        }
                        w = service_adopt_worker(s, slot, ss->worker.pid, ss->worker.state, ss->worker.started_at);
                        if (!w) {
                                worker_process_close(wp);
                                return log_oom();
                        }
                        r = worker_process_attach(wp, w);
                        if (r < 0)
                                return log_error_errno(r, "Failed to watch worker pid %d: %m", (int) w->pid);
                        adopted++;
                }
        }
        log_info("Took over %u running worker%s from the previous rpsupd%s.", adopted, adopted == 1 ? "" : "s",
                 gone ? " (some had exited meanwhile and are restarted)" : "");
        return 0;
}

/* Ends a set of processes given as pidfds: KillSignal=, then SIGKILL after StopTimeoutSec=. */
static void end_processes(int *fds, size_t n, const Config *c) {
        struct pollfd pfd[256];
        usec_t deadline;

        n = MIN(n, ELEMENTSOF(pfd));
        for (size_t i = 0; i < n; i++) {
                (void) syscall(SYS_pidfd_send_signal, fds[i], c->kill_signal, NULL, 0);
                (void) syscall(SYS_pidfd_send_signal, fds[i], SIGCONT, NULL, 0);
                pfd[i] = (struct pollfd) { .fd = fds[i], .events = POLLIN };
        }
        deadline = usec_add(now_usec(CLOCK_MONOTONIC), c->stop_timeout);
        for (;;) {
                usec_t t = now_usec(CLOCK_MONOTONIC);
                size_t alive = 0;

                for (size_t i = 0; i < n; i++)
                        if (!(pfd[i].revents & POLLIN))
                                alive++;
                if (alive == 0 || t >= deadline)
                        break;
                (void) poll(pfd, n, (int) MIN((deadline - t) / USEC_PER_MSEC + 1, 1000));
        }
        for (size_t i = 0; i < n; i++) {
                if (!(pfd[i].revents & POLLIN)) {
                        log_warning("A process left by an earlier rpsupd did not stop within StopTimeoutSec=; "
                                    "sending SIGKILL.");
                        (void) syscall(SYS_pidfd_send_signal, pfd[i].fd, SIGKILL, NULL, 0);
                }
                safe_close(fds[i]);
        }
}

void takeover_end_orphans(const SavedState *saved, const Config *c) {
        int fds[256];
        size_t n = 0;

        for (size_t i = 0; i < saved->n_slots && n < ELEMENTSOF(fds); i++) {
                const SavedSlot *ss = &saved->slots[i];
                uint64_t t;
                int fd;

                if (!ss->has_worker)
                        continue;
                fd = (int) syscall(SYS_pidfd_open, ss->worker.pid, 0);
                if (fd < 0)
                        continue;
                if (process_start_time(ss->worker.pid, &t) < 0 || t != ss->worker.start_time) {
                        safe_close(fd);
                        continue;
                }
                fds[n++] = fd;
        }
        if (n == 0)
                return;
        log_warning("Stopping %zu worker%s left by an earlier rpsupd: their listeners were not passed back, so "
                    "they cannot be supervised.", n, n == 1 ? "" : "s");
        end_processes(fds, n, c);
}

/* The cgroup.procs file of our own cgroup: the unified hierarchy where there is one (pure or hybrid), else
 * systemd's named v1 hierarchy. */
static int own_cgroup_procs(char **ret) {
        _cleanup_free_ char *line = NULL, *unified = NULL, *named = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;

        f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0) {
                line[strcspn(line, "\n")] = 0;
                if (strncmp(line, "0::", 3) == 0 && strstr(line, ".service"))
                        unified = strdup(line + 3);
                else if (strstr(line, ":name=systemd:") && strstr(line, ".service"))
                        named = strdup(strstr(line, ":name=systemd:") + 14);
        }
        if (unified) {
                const char *roots[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
                for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                        if (asprintf(ret, "%s%s/cgroup.procs", roots[i], unified) < 0)
                                return -ENOMEM;
                        if (access(*ret, R_OK) == 0)
                                return 0;
                        *ret = mfree(*ret);
                }
        }
        if (named && asprintf(ret, "/sys/fs/cgroup/systemd%s/cgroup.procs", named) >= 0 && access(*ret, R_OK) == 0)
                return 0;
        return -ENOENT;
}

void takeover_end_cgroup_leftovers(const Config *c) {
        _cleanup_free_ char *procs = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int fds[256];
        size_t n = 0;
        unsigned pid;

        /* Only under systemd: then our cgroup is the service's own, and anything else in it is a worker
         * that an earlier rpsupd left behind (KillMode=process) and nobody supervises. */
        if (isempty(getenv("INVOCATION_ID")) || own_cgroup_procs(&procs) < 0)
                return;
        f = fopen(procs, "re");
        if (!f)
                return;
        while (n < ELEMENTSOF(fds) && fscanf(f, "%u", &pid) == 1) {
                int fd;
                if ((pid_t) pid == getpid())
                        continue;
                fd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
                if (fd >= 0)
                        fds[n++] = fd;
        }
        if (n == 0)
                return;
        log_warning("Stopping %zu process%s left in this service's control group by an earlier rpsupd.", n,
                    n == 1 ? "" : "es");
        end_processes(fds, n, c);
}
