/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RPSUP_STEER_SHARED_H
#define RPSUP_STEER_SHARED_H

/* What the steering program (steer.bpf.c) and rpsupd (steer.c) share: map layouts. Fixed-width types
 * only. A restarted rpsupd compares the type, key size, value size and size of each map an older one left
 * in the fd store with these (steering_restore), and loads the program afresh when one differs or is
 * missing (a map added since): a change here must change one of them, or add a map. */

#include <linux/types.h>

/* The steering maps' layout as a number: any change to what follows that an rpsupd of the previous layout
 * could not take over changes it. A reexec (rpsupctl reexec) is refused by a new image whose STEER_ABI is
 * not the running one's: it executes the running image again (a restart instead loads the program afresh,
 * see steering_restore()). Defined here unless the build says otherwise (a test builds an rpsupd of another
 * ABI from these sources). */
#ifndef STEER_ABI
#define STEER_ABI 1
#endif

#define STEER_LISTENERS_MAX 4096 /* sockarray size: listeners of all generations */
#define STEER_GROUPS_MAX 64      /* reuseport groups (addresses) */
#define STEER_SET_MAX 512        /* listeners in one group's set (at most one per worker) */
#define STEER_PROBES_MAX 1024    /* probe connections aimed at once: one per worker probed, two generations */
#define STEER_FLOWS_DEFAULT 65536 /* datagram flows remembered (an LRU map; FlowTableSize=) */
#define STEER_FLOWS_MAX 4194304   /* the largest flow table rpsupd creates */

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
        __u32 shadow;           /* a policy computed but not enforced: 0 none, else STEER_POLICY_ROUND_ROBIN + 1
                                 * or STEER_POLICY_HASH + 1: for each new connection (not a probe, not a
                                 * migration, not a datagram of a known flow) the program counts where it
                                 * would have gone (steer_counters.shadow of that listener) */
        __u32 flows;            /* 1: a datagram of a flow in the flow table goes to the listener that took the
                                 * flow's first datagram, while that listener is in the sockarray; a new flow's
                                 * choice is entered in the table (not under STEER_POLICY_KERNEL) */
        __u32 group;            /* the group's number (0..STEER_GROUPS_MAX - 1), given by steering_write_group():
                                 * its round-robin positions (the turns map) */
        __u32 active[STEER_SET_MAX];
        __u32 standby[STEER_SET_MAX];
        __u32 previous[STEER_SET_MAX];
};

/* The fast path to a group's set, which spares the program the hash map's lookup (a call, a hash, a key
 * comparison: the larger part of a run's cost). Two array maps the verifier turns into plain loads:
 *  - ports, indexed by the port: for each (family, protocol) of the port (steer_port_slot()), 1 + the index
 *    in `sets` of the group's live copy, or 0: no fast copy (look in `groups`);
 *  - sets: two copies per group (index 2 × g and 2 × g + 1), each with its group's key, which the program
 *    compares with the key it computed.
 * rpsupd writes the set to `groups` first (the truth), then into the copy that is not live, then makes that
 * copy live in ports: one 8-byte store. A run that still reads the other copy reads it whole unless two
 * updates of the same group pass during that one run. Two groups that share a port, a family and a protocol
 * (two addresses) get no fast copy: both are looked up in `groups`. */
#define STEER_FAST_SETS (2 * STEER_GROUPS_MAX)
#define STEER_PORTS 65536
struct steer_port {
        __u16 set[4]; /* by steer_port_slot() */
};
static inline __u32 steer_port_slot(__u32 family, __u32 protocol) {
        return (family == 10 /* AF_INET6 */ ? 2 : 0) | (protocol == 17 /* IPPROTO_UDP */ ? 1 : 0);
}
struct steer_fast_set {
        struct steer_group_key key;
        __u32 reserved;
        struct steer_set set;
};

/* The probe map: a SYN from this port (the prober's, host byte order) of a loopback address goes to this
 * sockarray index, whichever listeners take new connections. */
typedef __u32 steer_probe_port;
typedef __u32 steer_probe_index;

/* The flow table (an LRU hash map): a datagram's 4-tuple, as it arrived (the client's address and port
 * are the source). Ports in host byte order, addresses in network byte order; an IPv4 address in addr[0]. */
struct steer_flow_key {
        __u32 family;
        __u16 src_port;
        __u16 dst_port;
        __u32 src[4];
        __u32 dst[4];
};
/* Where a flow goes: a listener's sockarray index, and that index's epoch when the flow was entered. An
 * index is reused for another listener once its own is gone; steering_insert() then moves the index's epoch
 * on (the epochs map), so a flow of the listener that had it misses instead of reaching the new one (which
 * may be a starting or soaking generation's). */
struct steer_flow_value {
        __u32 index;
        __u32 epoch;
};
typedef __u32 steer_epoch; /* the epochs map: per sockarray index */

/* The state map (an array of one): what the program checks before it looks further. */
struct steer_state {
        __u32 aims; /* entries in the probe map: 0 spares every SYN the probe map's lookup */
        __u32 reserved;
};

/* Per listener (sockarray index), per CPU. */
struct steer_counters {
        __u64 syns;             /* new connections steered to it (probes not included) */
        __u64 probes;           /* probe connections aimed at it (the probe map) */
        __u64 migrated_queue;   /* established connections moved into it from a closing listener */
        __u64 migrated_ack;     /* handshakes in flight moved into it when the final ACK came */
        __u64 migrated_timer;   /* handshakes in flight moved into it by the SYN-ACK timer */
        __u64 refused;          /* connections for its group refused: nothing to steer to (index 0 only) */
        __u64 shadow;           /* new connections the shadow policy would have sent to it (steer_set.shadow) */
        __u64 flow_hits;        /* datagrams steered to it by the flow table */
        __u64 flow_new;         /* flows entered in the table with it (their first datagram came to it) */
        __u64 flow_lost;        /* index 0 only: datagrams of a flow in the table whose listener was gone (or
                                 * reused, or of another group): steered afresh, and the flow re-entered */
        __u64 kernel;           /* new connections left to the kernel's choice (STEER_POLICY_KERNEL; index 0) */
};

/* Per group (steer_set.group), per CPU: the round-robin positions. */
struct steer_turns {
        __u64 turn;                 /* in the active (or standby) set */
        __u64 turn_previous;        /* in the previous set */
        __u64 share;                /* new TCP connections split between the previous and the active set */
        __u64 turn_shadow;          /* the shadow policy's, in the active (or standby) set */
        __u64 turn_shadow_previous; /* the shadow policy's, in the previous set */
};

#endif
