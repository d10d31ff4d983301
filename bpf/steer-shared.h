/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RPSUP_STEER_SHARED_H
#define RPSUP_STEER_SHARED_H

/* What the steering program (steer.bpf.c) and rpsupd (steer.c) share: map layouts. Fixed-width types
 * only. A restarted rpsupd compares the type, key size, value size and size of each map an older one left
 * in the fd store with these (steering_restore), and loads the program afresh when one differs: a change
 * here must change one of them. */

#include <linux/types.h>

#define STEER_LISTENERS_MAX 4096 /* sockarray size: listeners of all generations */
#define STEER_GROUPS_MAX 64      /* reuseport groups (addresses) */
#define STEER_SET_MAX 512        /* listeners in one group's set (at most one per worker) */

/* A reuseport group: what the listening socket is bound to. Ports in host byte order, addresses in
 * network byte order (as struct bpf_sock has them). */
struct steer_group_key {
        __u32 family;
        __u32 protocol;
        __u32 port;
        __u32 addr[4];
};

/* Where a group's new connections go: one of `active` (listeners of serving workers of the live
 * generation), or when there is none, one of `standby` (listeners whose worker is coming: restarting or
 * starting; their queue waits for it). Empty both: the connection is refused. Replaced in one map update
 * (a hash map without preallocation: readers see the old or the new value, never a mix). */
struct steer_set {
        __u32 n_active;
        __u32 n_standby;
        __u32 active[STEER_SET_MAX];
        __u32 standby[STEER_SET_MAX];
};

/* Per listener (sockarray index), per CPU. */
struct steer_counters {
        __u64 syns;             /* new connections steered to it */
        __u64 migrated_queue;   /* established connections moved into it from a closing listener */
        __u64 migrated_ack;     /* handshakes in flight moved into it when the final ACK came */
        __u64 migrated_timer;   /* handshakes in flight moved into it by the SYN-ACK timer */
        __u64 refused;          /* connections for its group refused: nothing to steer to (index 0 only) */
        __u64 turn;             /* index 0 only: the round-robin position of this CPU */
};

#endif
