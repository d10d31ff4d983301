/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ListListenerHolders: every listening socket rpsupd holds (its inode, address, role, fd store name) and
 * the worker processes expected to hold a copy, so that a client (rpsupctl fds) can find each copy in /proc
 * and say whether its holder belongs there. rpsupd itself never scans /proc: that is the client's work,
 * done with the client's own privileges and time. */

#include <systemd/sd-bus.h>

#include "control-status.h"

#include "rpsup-limits.h"

/* At most this many listeners and this many worker records in one reply; the reply says how many were left
 * out. Neither is reached within rpsupd's own bounds: LISTENERS_MAX listeners; a worker per slot of
 * GENERATIONS_MAX generations of WORKERS_MAX, plus as many departing ones at most. */
#define LISTENER_HOLDERS_LISTENERS_MAX LISTENERS_MAX
#define LISTENER_HOLDERS_WORKERS_MAX (2U * GENERATIONS_MAX * WORKERS_MAX)

/* (a{sv} supervisor, aa{sv} listeners, aa{sv} expected holders); see protocol/CONTROL.md. */
int control_append_listener_holders(sd_bus_message *m, const StatusView *v);
