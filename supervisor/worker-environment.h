/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The environment of what rpsupd runs for a worker: the worker itself (worker-process.c) and its exec
 * readiness probe (readiness-probe-exec.c). */

#include "service.h"

/* rpsupd's own environment without what describes rpsupd's relation to systemd (LISTEN_*, NOTIFY_SOCKET,
 * WATCHDOG_*, MAINPID, RPSUP_*), then the config's Environment=, RPSUP_SERVICE, RPSUP_GENERATION,
 * RPSUP_WORKER, and for User= USER, LOGNAME, HOME and SHELL, as systemd tells its services. */
int worker_environment(const Worker *w, const char *service_name, char ***ret);
/* Sets a formatted KEY=VALUE (NULL: out of memory) and frees it. */
int env_set_consume(char ***env, char *assignment);
