/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ReadyProbe=exec:COMMAND: starting the command for one worker. Waiting for it is readiness-probe.c's. */

#include <sys/types.h>

#include "service.h"

/* The command's environment: rpsupd's (without what rpsupd sets per worker), Environment=, the worker's
 * RPSUP_SERVICE, RPSUP_GENERATION, RPSUP_WORKER, MAINPID (the worker's pid), USER= and the like with
 * User=, and RPSUP_PROBE_ADDRESS (`address`, if not NULL). */
int probe_exec_environment(Worker *w, const char *service_name, const char *address, char ***ret);

/* Starts the command of w's config (ReadyProbe=exec:) with `env`: $VARS expanded from it, stdin /dev/null,
 * stdout and stderr rpsupd's, the worker's User=/Group= and WorkingDirectory=, in a process group of its
 * own (its pid, from when this returns). Returns its pid, a pidfd, and the read end of a pipe that reaches
 * EOF once execve() succeeded, or carries the errno (int) of the step that failed. */
int probe_exec_spawn(const Config *c, char **env, pid_t *ret_pid, int *ret_pidfd, int *ret_error_fd);
