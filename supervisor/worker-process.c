/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

#include "config-exec.h"
#include "fd-util.h"
#include "log.h"
#include "proc-parse.h"
#include "worker-environment.h"
#include "worker-spawn.h"
#include "string-util.h"
#include "strv.h"
#include "worker-process.h"

/* The worker's fds: its listeners, then what its slot's earlier workers stored (FDSTORE=1). */
typedef struct WorkerFds {
        int *fds;
        const char **names;
        size_t n;
        uint64_t stored_upto; /* the slot's fds stored before this number are among them */
} WorkerFds;

static void worker_fds_done(WorkerFds *f) {
        free(f->fds);
        free(f->names);
}

static int worker_fds(const WorkerHost *h, Worker *w, const FdList *listeners, WorkerFds *ret) {
        size_t stored = worker_fdstore_count(h->fdstore, w->slot->index), n = listeners->n + stored;

        ret->fds = calloc(MAX(n, (size_t) 1), sizeof(int));
        ret->names = calloc(MAX(n, (size_t) 1), sizeof(char *));
        if (!ret->fds || !ret->names)
                return -ENOMEM;
        memcpy(ret->fds, listeners->fds, listeners->n * sizeof(int));
        memcpy(ret->names, listeners->names, listeners->n * sizeof(char *));
        ret->stored_upto = worker_fdstore_next_seq(h->fdstore);
        ret->n = listeners->n + worker_fdstore_slot_fds(h->fdstore, w->slot->index, ret->fds + listeners->n,
                                                        ret->names + listeners->n, stored);
        return 0;
}

static int build_environment(const WorkerHost *h, Worker *w, const WorkerFds *fds, char ***ret) {
        Config *c = w->slot->generation->config;
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *names = NULL;
        size_t len = 0, at = 0;
        int r;

        r = worker_environment(w, h->service_name, &env);
        if (r < 0)
                return r;

        for (size_t i = 0; i < fds->n; i++)
                len += strlen(fds->names[i]) + 1;
        names = calloc(len + 1, 1);
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < fds->n; i++) {
                size_t l = strlen(fds->names[i]);

                if (i > 0)
                        names[at++] = ':';
                memcpy(names + at, fds->names[i], l);
                at += l;
        }
        names[at] = 0;

        if ((r = env_set_consume(&env, strdup_printf("LISTEN_FDS=%zu", fds->n))) < 0 ||
            (r = env_set_consume(&env, strdup_printf("LISTEN_FDNAMES=%s", names))) < 0 ||
            (r = env_set_consume(&env, strdup_printf("NOTIFY_SOCKET=%s", h->notify_socket))) < 0)
                return r;
        if (c->watchdog > 0 && (r = env_set_consume(&env, strdup_printf("WATCHDOG_USEC=%" PRIu64, c->watchdog))) < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

static WorkerProcess *worker_process_free(WorkerProcess *wp) {
        if (!wp)
                return NULL;
        sd_event_source_disable_unref(wp->exit_source);
        sd_event_source_disable_unref(wp->exec_source);
        safe_close(wp->pidfd);
        safe_close(wp->go_fd); /* a held child exits without becoming the worker */
        free(wp);
        return NULL;
}

static int on_exec_status(sd_event_source *source, int fd, uint32_t revents, void *userdata);

static int on_child_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        WorkerProcess *wp = userdata;

        wp->exited = true;
        /* If the exec status was not read yet, read it first: it says why the worker is gone. */
        if (wp->exec_source)
                (void) on_exec_status(wp->exec_source, sd_event_source_get_io_fd(wp->exec_source), EPOLLIN, wp);
        service_worker_exited(wp->host->service, wp->worker, si->si_code, si->si_status);
        return 0;
}

static int on_adopted_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        WorkerProcess *wp = userdata;

        /* Not our child: another process reaps it, and its exit status is not ours to know. */
        wp->exited = true;
        service_worker_exited(wp->host->service, wp->worker, 0, 0);
        return 0;
}

static int on_exec_status(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        WorkerProcess *wp = userdata;
        Worker *w = wp->worker;
        int error = 0;
        ssize_t n;

        n = read(fd, &error, sizeof(error));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        wp->exec_source = sd_event_source_disable_unref(wp->exec_source);
        safe_close(fd);

        if (n == (ssize_t) sizeof(error) && error != 0) {
                Config *c = w->slot->generation->config;
                /* Reported with its exit, where the service decides what it means. */
                log_debug_errno(error, "Worker %u of generation %" PRIu64 " could not start %s: %m",
                                w->slot->index, w->slot->generation->id, c->exec_path);
                service_worker_exec_done(wp->host->service, w, error);
        } else
                service_worker_exec_done(wp->host->service, w, 0);
        return 0;
}

/* Starts w's process: its listeners, environment and command line as its generation's config says. */
static int spawn_process(const WorkerHost *h, Worker *w, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd,
                         int *ret_go_fd, char ret_cgroup[static 64], uint64_t *ret_stored_upto) {
        Config *c = w->slot->generation->config;
        _cleanup_strv_free_ char **env = NULL, **argv = NULL;
        _cleanup_(cgroup_place_done) CgroupPlace place = CGROUP_PLACE_NULL;
        _cleanup_(worker_fds_done) WorkerFds fds = {};
        FdList listeners = {};
        int r;

        r = h->strategy->ops->slot_fds(h->strategy, w->slot, &listeners);
        if (r < 0)
                return r;
        r = worker_fds(h, w, &listeners, &fds);
        if (r < 0)
                return r;
        r = build_environment(h, w, &fds, &env);
        if (r < 0)
                return r;
        r = exec_argv_expand(c->exec_words, env, &argv);
        if (r < 0)
                return r;
        if (h->cgroups) {
                r = cgroup_tree_place_worker(h->cgroups, w->slot->generation->id, w->slot->index, &place);
                if (r < 0)
                        return r;
        }
        ret_cgroup[0] = 0;

        SpawnParams p = {
                .argv = argv,
                .env = env,
                .path = c->exec_path,
                .fds = fds.fds,
                .n_fds = fds.n,
                .privileges = worker_privileges_from_config(c),
                .working_directory = c->working_directory,
                .working_directory_missing_ok = c->working_directory_missing_ok,
                .cgroup_fd = place.dir_fd,
                .cgroup_v1_procs_fd = place.v1_procs_fd,
        };
        r = spawn_worker(&p, ret_pid, ret_pidfd, ret_exec_fd, ret_go_fd);
        if (r < 0) {
                cgroup_tree_worker_gone(h->cgroups, place.name);
                return r;
        }
        strcpy(ret_cgroup, place.name);
        *ret_stored_upto = fds.stored_upto;
        return 0;
}

int worker_process_spawn(WorkerHost *h, Worker *w) {
        _cleanup_close_ int pidfd = -EBADF, exec_fd = -EBADF, go_fd = -EBADF;
        char cgroup[64];
        uint64_t stored_upto = 0;
        WorkerProcess *wp;
        pid_t pid;
        int r;

        r = spawn_process(h, w, &pid, &pidfd, &exec_fd, &go_fd, cgroup, &stored_upto);
        if (r < 0)
                return r;

        wp = calloc(1, sizeof(WorkerProcess));
        if (!wp) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                cgroup_tree_worker_gone(h->cgroups, cgroup); /* and what it started, if it did exec */
                return -ENOMEM;
        }
        *wp = (WorkerProcess) { .host = h, .worker = w, .pidfd = -EBADF, .go_fd = -EBADF };
        strcpy(wp->cgroup, cgroup);
        /* With the pid, the state file's name for this process: without it a restarted rpsupd could not
         * take the worker over. */
        r = process_start_time(pid, &wp->start_time);
        if (r < 0)
                goto fail;

        r = sd_event_add_child_pidfd(h->event, &wp->exit_source, pidfd, WEXITED, on_child_exit, wp);
        if (r < 0)
                goto fail;
        wp->pidfd = TAKE_FD(pidfd);
        r = sd_event_add_io(h->event, &wp->exec_source, exec_fd, EPOLLIN, on_exec_status, wp);
        if (r < 0)
                goto fail;
        TAKE_FD(exec_fd);
        wp->go_fd = TAKE_FD(go_fd);

        w->pid = pid;
        wp->child = true;
        w->host_data = wp;
        /* Started: the slot's fds stored so far went to it (a retiring worker of its index need not finish
         * them). Not before: a spawn that fails hands nothing on. */
        worker_fdstore_handed(h->fdstore, w->slot->index, stored_upto);
        /* The state file is written once for all the workers started in this turn of the loop, then they
         * are released. */
        if (h->started)
                h->started(h->userdata);
        return 0;

fail:
        (void) kill(pid, SIGKILL);
        /* Reap it, or it stays a zombie: the child source never ran. */
        (void) waitpid(pid, NULL, 0);
        cgroup_tree_worker_gone(h->cgroups, cgroup); /* and what it started, if it did exec */
        worker_process_free(wp);
        return r;
}

void worker_process_release_held(WorkerHost *h) {
        if (!h->service)
                return;
        FOREACH_GENERATION(g, h->service)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Worker *w = g->slots[i]->worker;
                        WorkerProcess *wp = w ? w->host_data : NULL;

                        if (wp && wp->go_fd >= 0) {
                                (void) spawn_release(wp->go_fd);
                                wp->go_fd = -EBADF;
                        }
                }
}

/* The parent of pid, from /proc/PID/stat. */
static int process_parent(pid_t pid, pid_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], text[1024], comm[64];
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = 0;
        return parse_proc_stat(text, ret, comm, sizeof(comm));
}

int worker_process_open(WorkerHost *h, pid_t pid, uint64_t start_time, WorkerProcess **ret) {
        _cleanup_close_ int pidfd = -EBADF;
        WorkerProcess *wp;
        pid_t parent = 0;
        uint64_t t;
        int r;

        pidfd = pidfd_open(pid, 0);
        if (pidfd < 0)
                return -errno;
        /* The pid may have been reused: only the same start time is the same process. Checked after
         * pidfd_open(), so the pidfd refers to the process that was checked. */
        r = process_start_time(pid, &t);
        if (r < 0)
                return r;
        if (t != start_time)
                return -ESRCH;
        /* After a reexec the workers are still this process's children (same pid): watched as children,
         * reaped, with their exit status. A restarted rpsupd's are not. */
        r = process_parent(pid, &parent);
        if (r < 0)
                return r;

        wp = calloc(1, sizeof(WorkerProcess));
        if (!wp)
                return -ENOMEM;
        *wp = (WorkerProcess) { .host = h, .pidfd = TAKE_FD(pidfd), .go_fd = -EBADF, .start_time = t,
                                .child = parent == getpid() };
        *ret = wp;
        return 0;
}

int worker_process_attach(WorkerProcess *wp, Worker *w) {
        int r;

        if (wp->child)
                r = sd_event_add_child_pidfd(wp->host->event, &wp->exit_source, wp->pidfd, WEXITED, on_child_exit, wp);
        else
                r = sd_event_add_io(wp->host->event, &wp->exit_source, wp->pidfd, EPOLLIN, on_adopted_exit, wp);
        if (r < 0) {
                worker_process_free(wp);
                return r;
        }
        wp->worker = w;
        w->host_data = wp;
        /* Started by an rpsupd with cgroups: in one of ours (else in the subtree's root: nothing to end). */
        if (wp->host->cgroups && cgroup_tree_find(wp->host->cgroups, w->pid, wp->cgroup, sizeof(wp->cgroup)) < 0)
                wp->cgroup[0] = 0;
        return 0;
}

void worker_process_close(WorkerProcess *wp) {
        worker_process_free(wp);
}

int worker_process_kill(Worker *w, int sig) {
        WorkerProcess *wp = w->host_data;

        if (!wp || wp->pidfd < 0)
                return -ESRCH;
        if (pidfd_send_signal(wp->pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

/* The worker's process exited: what it started is ended with it, and its cgroup removed once empty (a
 * restart of the slot gets a new one). */
static void end_leftovers(WorkerProcess *wp, Worker *w) {
        if (wp->host->cgroups)
                cgroup_tree_worker_gone(wp->host->cgroups, wp->cgroup);
        else if (w->pid > 0 && wp->child)
                /* Its process group (it made one with setsid()): until we reap it, its pid names no other. An
                 * adopted worker is reaped by another process, and then its pid may name another group. */
                (void) kill(-w->pid, SIGKILL);
}

void worker_process_forget(Worker *w) {
        WorkerProcess *wp = w->host_data;

        if (wp && wp->exited)
                end_leftovers(wp, w);
        w->host_data = worker_process_free(wp);
}

uint64_t worker_process_start_time(Worker *w) {
        WorkerProcess *wp = w->host_data;

        return wp ? wp->start_time : 0;
}
