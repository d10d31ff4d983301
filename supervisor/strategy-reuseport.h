/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "systemd-fdstore.h"
#include "listener.h"
#include "strategy.h"

/* drain or migrate. Loads the steering program, or takes it back from `inherited` (the fd store). With
 * `without_bpf` (migrate only): no program; the kernel hashes new connections over the group and migrates
 * at random (net.ipv4.tcp_migrate_req=1). `flow_max`: the size of a flow table loaded afresh
 * (FlowTableSize=; 0: off, a table of 1 entry); one taken back keeps the size it was created with. */
int strategy_reuseport_new(StrategyKind kind, ListenerSet *set, InheritedFds *inherited, bool without_bpf,
                           uint32_t flow_max, const char *reason, Strategy **ret, char **ret_error);
/* DrainSec=: how long a retiring worker may take to finish what is queued and open before it is asked to
 * stop (it is asked as soon as it is idle). auto: 30 s, at most StopTimeoutSec=, for TCP, and for datagrams
 * while the flow table steers them (`flows`: the sets written last say so; a worker is idle once its flows
 * are: FlowIdleSec=); 1 s for datagrams only without it. */
usec_t reuseport_drain_window(const Config *c, bool flows);
/* How long a handshake in flight may take on this namespace's settings (tcp_synack_retries). */
usec_t reuseport_handshake_window(void);
