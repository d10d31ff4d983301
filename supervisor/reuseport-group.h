/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who else listens in a reuseport group: TCP listening sockets on the group's very address and port in
 * rpsupd's network namespace (NETLINK_SOCK_DIAG, listeners only) that are not rpsupd's own. Under the
 * kernel steering policy they get their share of new connections. */

#include <stddef.h>
#include <stdint.h>

#include "steer-shared.h"

/* own[]: the inodes of rpsupd's listeners. Counts the others into *ret; -E2BIG past REUSEPORT_GROUP_SCAN_MAX
 * listening sockets (unknown), another negative errno if the kernel could not tell. */
#define REUSEPORT_GROUP_SCAN_MAX 65536
int reuseport_group_foreign(const struct steer_group_key *key, const uint64_t *own, size_t n_own, unsigned *ret);
