/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rpsupd's one object: the event loop and everything attached to it for one service. It implements the
 * ServiceHost (fork/exec, signals, the clock) for the generation logic in service.c, receives the workers'
 * notifications, serves the control socket, and speaks sd_notify to systemd. */

#include <systemd/sd-event.h>

#include "config.h"
#include "systemd-fdstore.h"
#include "listener.h"
#include "macro.h"
#include "worker-notify.h"
#include "retirement.h"
#include "service.h"
#include "strategy.h"

typedef struct ControlServer ControlServer;
typedef struct QueueWatch QueueWatch;

typedef struct Manager {
        sd_event *event;
        char *service_name;
        char *config_path;
        char *runtime_dir;
        Config *config;          /* as last loaded (start or reload) */

        InheritedFds inherited;
        ListenerSet *listeners;
        Strategy *strategy;
        Service *service;
        NotifyServer *notify;
        ControlServer *control;
        QueueWatch *queue_watch;

        Retirements retirements;

        sd_event_source *deadline_timer;
        sd_event_source *publish_event; /* deferred: STATUS=, state file */
        sd_event_source *sigterm, *sigint, *sighup;

        bool under_systemd;
        bool stopping;
        bool ready_sent;
        bool reloading;          /* RELOADING=1 sent, READY=1 due when the reload is over */
        int exit_code;
        usec_t started_at_realtime;
} Manager;

typedef struct ManagerOptions {
        const char *service_name;
        const char *config_path;
} ManagerOptions;

int manager_new(const ManagerOptions *o, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Sets up sockets, adopts what an earlier rpsupd left, starts the first generation. */
int manager_start(Manager *m);
/* Runs until stopped; returns the exit code. */
int manager_run(Manager *m);

/* Operations for the control interface and signals. `done` is called exactly once. */
void manager_reload(Manager *m, bool wait_retired, ServiceDone done, void *userdata);
void manager_scale(Manager *m, unsigned n, ServiceDone done, void *userdata);
void manager_stop(Manager *m);

/* Published state changed: schedules the STATUS= line and the state file. */
void manager_changed(Manager *m);
/* One line describing the service, as sent in STATUS=. */
int manager_status_line(Manager *m, char **ret);
