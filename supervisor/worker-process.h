/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of a worker: its process (pidfd), watched on the event loop. */

#include <systemd/sd-event.h>

#include "macro.h"
#include "service.h"

typedef struct Manager Manager;

typedef struct WorkerProcess {
        Manager *manager;
        Worker *worker;
        int pidfd;
        int go_fd;                      /* held before execve() until the state file names it; else -EBADF */
        uint64_t start_time;            /* /proc/PID/stat starttime: identity across rpsupd restarts */
        sd_event_source *exit_source;   /* child source (our child) or pidfd io source (adopted) */
        sd_event_source *exec_source;   /* exec status pipe */
} WorkerProcess;

/* ServiceHost callbacks. */
int worker_process_spawn(void *userdata, Worker *w);
int worker_process_kill(void *userdata, Worker *w, int sig);
void worker_process_forget(void *userdata, Worker *w);
/* A started worker waits before execve() until the state file names it (a crash before that leaves no
 * worker that the next rpsupd does not know): once the state is written, this lets every held one go on. */
void worker_process_release_held(Manager *m);
/* Takes over a worker started by an earlier rpsupd: opens the process if pid and start time still name the
 * same one (-ESRCH if not), then attaches it to the adopted Worker. */
int worker_process_open(Manager *m, pid_t pid, uint64_t start_time, WorkerProcess **ret);
int worker_process_attach(WorkerProcess *wp, Worker *w);
void worker_process_close(WorkerProcess *wp);
