/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rpsupctl fds: every copy of every listening socket of a service and who holds it. rpsupd says what it
 * holds and which workers should hold what (ListListenerHolders); the kernel lists the sockets on the
 * service's ports (sock_diag), which finds the ones rpsupd does not know; rpsupctl then reads /proc (with
 * the caller's own rights: what it may not read, it names), asks rpsupd again (what it made or started
 * during the scan is in that answer) and classifies each holder: rpsupd, the fd store, a socket unit's
 * holder, a worker (pid and start time) or its descendant, a worker starting (a child of rpsupd that
 * neither answer lists, or not executed yet), or anybody else (unexpected). */

#include <systemd/sd-bus.h>

#include "json-util.h"

/* Bounds of one scan; a scan that reaches one says so (its "limits" in the report). */
#define FDS_PROCESSES_MAX 65536U   /* processes read from /proc */
#define FDS_PER_PROCESS_MAX 65536U /* fds looked at per process */
#define FDS_COPIES_MAX 65536U      /* copies of the service's sockets reported */
#define FDS_FOREIGN_MAX 1024U      /* sockets on the service's ports that rpsupd does not hold */
#define FDS_DIAG_MAX 65536U        /* sockets the kernel lists per port */
#define FDS_ANCESTRY_MAX 64U       /* parents followed up from a holder to a worker */
/* Also bounded: 64 ports of the service (sock_diag dumps), 16 sockets bound at the notify socket's path. */

/* Asks rpsupd through `bus` and scans: the report as JSON (what --json prints). On a failed call, *error
 * is set and a negative errno returned. */
int fds_collect(sd_bus *bus, sd_bus_error *error, json_object **ret);
/* The report for people. */
void fds_print(json_object *report);
