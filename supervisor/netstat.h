/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The kernel's TCP counters of the current network namespace (/proc/net/netstat, TcpExt). */

#include <stdint.h>

typedef struct NetstatCounters {
        uint64_t listen_overflows;
        uint64_t listen_drops;
        uint64_t migrate_req_success;
        uint64_t migrate_req_failure;
} NetstatCounters;

int netstat_read(NetstatCounters *ret);
