/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server side of the control interface io.rpsup.Supervisor1 (protocol/): a direct D-Bus connection
 * per client on the "control" socket, served with sd-bus on rpsupd's event loop. */

#include "macro.h"

typedef struct Manager Manager;
typedef struct ControlServer ControlServer;

/* Listens on path (or adopts `fd`, if >= 0, already listening). */
int control_server_new(Manager *m, const char *path, int fd, ControlServer **ret);
ControlServer *control_server_free(ControlServer *cs);
int control_server_fd(ControlServer *cs);
