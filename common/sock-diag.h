/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One NETLINK_SOCK_DIAG dump of the kernel's TCP (or other inet) sockets in the caller's network namespace:
 * rpsupd's (worker-connections.c, reuseport-group.c) and rpsupctl's (ctl/fds.c). */

#include <linux/inet_diag.h>
#include <stddef.h>

/* Sends the request (a struct nlmsghdr, its inet_diag_req_v2 and any attributes, len bytes in all) and
 * calls each() for every socket the kernel lists, until the end (0), each()'s first negative errno, or the
 * kernel's error. A read never waits: the kernel makes the dump's next part as each one is read. */
int sock_diag_dump(const void *request, size_t len, int (*each)(const struct inet_diag_msg *m, void *userdata),
                   void *userdata);
