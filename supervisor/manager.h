/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rpsupd's one object: the event loop and everything attached to it for one service. It implements the
 * ServiceHost (fork/exec, signals, the clock) for the generation logic in service.c, receives the workers'
 * notifications, serves the control socket, and speaks sd_notify to systemd. Only main.c includes this
 * (tools/check-layers checks it), and only manager.c sees the fields: the modules around the manager get
 * what they need as handlers, a view or a host struct. */

#include "config.h"
#include "macro.h"

typedef struct Manager Manager;

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
