/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RPSUP_STEER_SHARED_H
#define RPSUP_STEER_SHARED_H

/* What the steering program (steer.bpf.c) and rpsupd (steer.c) share: map layouts. Fixed-width types
 * only. A restarted rpsupd compares the type, key size, value size and size of each map an older one left
 * in the fd store with these (steering_restore), and loads the program afresh when one differs or is
 * missing (a map added since): a change here must change one of them, or add a map. */

#include <linux/types.h>

#define STEER_LISTENERS_MAX 4096 /* sockarray size: listeners of all generations */
#define STEER_GROUPS_MAX 64      /* reuseport groups (addresses) */
#define STEER_SET_MAX 512        /* listeners in one group's set (at most one per worker) */
#define STEER_PROBES_MAX 1024    /* probe connections aimed at once: one per worker probed, two generations */

/* How a new connection picks a listener within a set (steer_set.policy). Migrations always go by hash to
 * the active (or standby) set, whatever the policy. */
#define STEER_POLICY_ROUND_ROBIN 0 /* TCP: turns, per CPU; datagrams: by hash */
#define STEER_POLICY_HASH 1        /* by the connection's hash: a flow keeps its listener while the set stays */
#define STEER_POLICY_KERNEL 2      /* not chosen: the kernel's own reuseport selection, over every socket of the
                                    * group (rpsupd's or not, retiring or not); sets and canary unused */
#define _STEER_POLICY_MAX 3

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
 * starting; their queue waits for it). Empty both: the connection is refused. During a canary,
 * `previous_percent` % of the new connections (not migrations) go to one of `previous` (the warm
 * generation's serving workers) instead; then `policy` picks within the set. Replaced in one map update (a
 * hash map without preallocation: readers see the old or the new value, never a mix): a change of policy is
 * that one update per group, with the sets it applies to. */
struct steer_set {
        __u32 n_active;
        __u32 n_standby;
        __u32 n_previous;
        __u32 previous_percent; /* 0..100 */
        __u32 policy;           /* STEER_POLICY_* */
        __u32 shadow;           /* reserved for a policy computed but not enforced: 0 none, else STEER_POLICY_*
                                 * + 1; the program ignores it today */
        __u32 active[STEER_SET_MAX];
        __u32 standby[STEER_SET_MAX];
        __u32 previous[STEER_SET_MAX];
};

/* The probe map: a SYN from this port (the prober's, host byte order) of a loopback address goes to this
 * sockarray index, whichever listeners take new connections. */
typedef __u32 steer_probe_port;
typedef __u32 steer_probe_index;

/* Per listener (sockarray index), per CPU. */
struct steer_counters {
        __u64 syns;             /* new connections steered to it (probes not included) */
        __u64 probes;           /* probe connections aimed at it (the probe map) */
        __u64 migrated_queue;   /* established connections moved into it from a closing listener */
        __u64 migrated_ack;     /* handshakes in flight moved into it when the final ACK came */
        __u64 migrated_timer;   /* handshakes in flight moved into it by the SYN-ACK timer */
        __u64 refused;          /* connections for its group refused: nothing to steer to (index 0 only) */
        /* Index 0 only, this CPU's positions: */
        __u64 turn;             /* round robin in the active (or standby) set */
        __u64 turn_previous;    /* round robin in the previous set */
        __u64 share;            /* new TCP connections split between the previous and the active set */
        __u64 kernel;           /* new connections left to the kernel's choice (STEER_POLICY_KERNEL; index 0) */
};

#endif
