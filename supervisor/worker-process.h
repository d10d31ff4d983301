/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of a worker: its process (pidfd), watched on the event loop. */

#include <systemd/sd-event.h>

#include "cgroup-tree.h"
#include "macro.h"
#include "service.h"
#include "strategy.h"
#include "worker-fdstore.h"

/* What starting and watching workers needs from rpsupd. The manager fills it in as it sets up (the
 * strategy, the notification socket and the service exist before the first worker starts). */
typedef struct WorkerHost {
        sd_event *event;
        const char *service_name;       /* RPSUP_SERVICE= */
        const char *notify_socket;      /* NOTIFY_SOCKET= */
        Strategy *strategy;             /* gives each worker its listeners */
        WorkerFdStore *fdstore;         /* ...and its slot's stored fds, after them */
        Service *service;               /* told when a worker exec'd or exited */
        CgroupTree *cgroups;            /* where workers run; NULL: no cgroups (process groups) */
        /* A worker was started: the state file is due (then worker_process_release_held()). */
        void (*started)(void *userdata);
        void *userdata;
} WorkerHost;

typedef struct WorkerProcess {
        WorkerHost *host;
        Worker *worker;
        int pidfd;
        int go_fd;                      /* held before execve() until the state file names it; else -EBADF */
        uint64_t start_time;            /* /proc/PID/stat starttime: identity across rpsupd restarts */
        bool exited;                    /* what it left behind is ended when it is forgotten */
        bool child;                     /* our child (started by this rpsupd, or taken over after a reexec):
                                         * watched and reaped as one */
        char cgroup[64];                /* its cgroup, relative to the service's subtree; "" if none */
        sd_event_source *exit_source;   /* child source (our child) or pidfd io source (adopted) */
        sd_event_source *exec_source;   /* exec status pipe */
} WorkerProcess;

/* For the ServiceHost: starts w's process; signals it; forgets it (the worker is gone: if its process
 * exited, what it left in its cgroup, or else in its process group, is killed). */
int worker_process_spawn(WorkerHost *h, Worker *w);
int worker_process_kill(Worker *w, int sig);
void worker_process_forget(Worker *w);
/* The process start time that names w's process in the state file (0 if not known). */
uint64_t worker_process_start_time(Worker *w);
/* A started worker waits before execve() until the state file names it (a crash before that leaves no
 * worker that the next rpsupd does not know): once the state is written, this lets every held one go on. */
void worker_process_release_held(WorkerHost *h);
/* Takes over a worker started by an earlier rpsupd: opens the process if pid and start time still name the
 * same one (-ESRCH if not), then attaches it to the adopted Worker. */
int worker_process_open(WorkerHost *h, pid_t pid, uint64_t start_time, WorkerProcess **ret);
int worker_process_attach(WorkerProcess *wp, Worker *w);
void worker_process_close(WorkerProcess *wp);
