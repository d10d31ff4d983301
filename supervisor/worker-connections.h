/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The TCP connections a worker still has open on a slot's listeners: what a retiring worker is still
 * serving. The kernel lists the sockets by local port (NETLINK_SOCK_DIAG, one dump per address family),
 * and /proc/PID/fd says which of them the worker or one of its descendants holds. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "time-util.h"

/* Counts the connections (TCP sockets in any state but LISTEN, TIME_WAIT and CLOSE) whose local address and
 * port are those of one of the listeners, and that pid or one of its descendants holds. Returns 0 and the
 * count; -E2BIG if the walk went beyond its bounds (too many processes, fds or sockets on the port: the
 * count is unknown, not 0); -ESRCH if pid is gone; another negative errno if the kernel could not tell.
 * listener_fds may hold other sockets the worker got from rpsupd (datagram listeners, a socket unit's): they
 * are not counted, nor are rpsupd's own standard fds, which the worker inherits.
 * With max_age > 0, the kernel's list may come from a call for the same listeners' addresses no older than
 * that (the workers checked in one turn of the event loop share one dump); 0: a list of its own. */
int worker_connections_count(pid_t pid, const int *listener_fds, size_t n_fds, usec_t max_age, uint64_t *ret);
/* The same, but the sockets whose inodes are in handed_on (sorted) are not counted either: connections the
 * worker stored (FDSTORE=1) for its slot's next worker, which serves them on. */
int worker_connections_count_except(pid_t pid, const int *listener_fds, size_t n_fds, const uint32_t *handed_on,
                                    size_t n_handed_on, usec_t max_age, uint64_t *ret);

/* The pure parts, for tests. */

/* An inet_diag filter (INET_DIAG_REQ_BYTECODE) that accepts a socket whose local port is one of ports[]
 * (host byte order). Returns its length in bytes, or -E2BIG if it does not fit in size. */
int worker_connections_filter(const uint16_t *ports, size_t n_ports, void *buf, size_t size);

