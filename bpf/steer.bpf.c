// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)

/* rpsup's steering program, attached to every reuseport group rpsupd holds (SO_ATTACH_REUSEPORT_EBPF) as
 * a select-or-migrate program:
 *  - for a new connection (a SYN, or a UDP datagram) it picks one listener of the group's active set;
 *    with no active listener, one of the standby set; with neither, it refuses;
 *  - during a canary, previous_percent % of the new connections go to the previous set instead (the warm
 *    generation's listeners);
 *  - a SYN from a loopback address whose source port is in the probe map goes to the listener the map
 *    names (rpsupd's readiness probe of one worker), counted as a probe, not as a connection;
 *  - when a listener closes (or rpsupd shuts it down), the kernel asks it where each queued connection
 *    and each handshake in flight should go (migrating_sk): a listener of the active (or standby) set.
 * Which one of a set, by the group's policy (steer_set.policy):
 *  - round-robin: new TCP connections take turns (per CPU, one position per set of each group), so that
 *    each worker gets the same share; datagrams go by their hash, so that a flow keeps reaching the same
 *    worker;
 *  - hash: new connections and datagrams go by their hash: a flow (its 4-tuple) keeps its listener while
 *    the set stays the same;
 *  - kernel: the program selects nothing for a new connection and lets it pass: the kernel's own reuseport
 *    selection picks among every socket of the group (see STEER_POLICY_KERNEL); probes are still aimed.
 * Migrated connections go by hash to the active (or standby) set under every policy.
 * The flow table (steer_set.flows): a datagram of a flow seen before goes to the listener that took the
 * flow's first datagram, as long as that listener is in the sockarray (its worker lives, retiring or not);
 * a new flow is steered by the policy and remembered (an LRU map: the least recently seen flow is forgotten
 * first). Not under kernel: the program does not know where the kernel sent a flow.
 * Shadow (steer_set.shadow): for each new connection steered by the policy, the program also counts where
 * another policy (round-robin or hash) would have sent it within the same set, and changes nothing. The canary split comes
 * first, then the policy within the generation: exact per CPU for round-robin TCP (of any 100 consecutive
 * new connections on a CPU, previous_percent go to the previous set, spread evenly), by hash otherwise
 * (flow-sticky).
 * Under round-robin and hash it never picks a socket that is not in rpsupd's sockarray, so a socket that
 * joins the group from outside gets nothing, and it never falls back to the kernel's choice; under kernel,
 * such a socket gets its share of new connections.
 * What it costs: one helper call per run (bpf_sk_select_reuseport), and array lookups the verifier turns
 * into plain loads (the state, the group's set through its fast copy, the counters); the probe map only
 * while a probe is aimed (steer_state.aims), the flow table only for datagrams with the flow table on, the
 * groups hash map only for a group without a fast copy. */

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "steer-shared.h"

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PICK_TRIES 4

struct {
        __uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
        __uint(max_entries, STEER_LISTENERS_MAX);
        __type(key, __u32);
        __type(value, __u64);
} listeners SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, STEER_GROUPS_MAX);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, struct steer_group_key);
        __type(value, struct steer_set);
} groups SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, STEER_PROBES_MAX);
        __type(key, steer_probe_port);
        __type(value, steer_probe_index);
} probes SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, STEER_LISTENERS_MAX);
        __type(key, __u32);
        __type(value, struct steer_counters);
} counters SEC(".maps");

/* Sized by rpsupd before it loads the program (FlowTableSize=). */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, STEER_FLOWS_DEFAULT);
        __type(key, struct steer_flow_key);
        __type(value, struct steer_flow_value);
} flows SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, STEER_LISTENERS_MAX);
        __type(key, __u32);
        __type(value, steer_epoch);
} epochs SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, STEER_GROUPS_MAX);
        __type(key, __u32);
        __type(value, struct steer_turns);
} turns SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct steer_state);
} state SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, STEER_PORTS);
        __type(key, __u32);
        __type(value, struct steer_port);
} ports SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, STEER_FAST_SETS);
        __type(key, __u32);
        __type(value, struct steer_fast_set);
} sets SEC(".maps");

/* What one run knows. */
struct run {
        struct sk_reuseport_md *md;
        struct steer_counters *c0; /* counters of index 0 (refusals, kernel, flows lost) */
        struct steer_turns *turns; /* this CPU's round-robin positions in the group, or NULL */
        __u32 picked;              /* the index the kernel took */
};

static __always_inline void count(struct run *run, __u32 index) {
        struct sk_reuseport_md *md = run->md;
        struct steer_counters *c = bpf_map_lookup_elem(&counters, &index);
        struct bpf_sock *m = md->migrating_sk;

        if (!c)
                return;
        if (!m)
                c->syns++;
        else if (m->state == BPF_TCP_NEW_SYN_RECV)
                /* No packet: the SYN-ACK timer moved it; a packet: the client's ACK (or data) did. */
                if (md->len == 0)
                        c->migrated_timer++;
                else
                        c->migrated_ack++;
        else
                c->migrated_queue++;
}

static __always_inline __u32 bounded(__u32 pos) {
        /* pos < n <= STEER_SET_MAX, but the verifier cannot follow a modulo: bound it in a way the compiler
         * cannot drop (STEER_SET_MAX is a power of two). */
        asm volatile("" : "+r"(pos));
        return pos & (STEER_SET_MAX - 1);
}

/* The position of a hash in a set of n: the hash scrambled (Fibonacci hashing), then scaled to n, a
 * multiplication where a modulo would be a division. The canary split uses the hash's own high bits: the
 * scrambled ones pick within the generation independently of it. */
static __always_inline __u32 hash_position(__u32 hash, __u32 n) {
        return (__u32) (((__u64) (hash * 2654435769u) * n) >> 32);
}

/* This CPU's next turn in a set of n. */
static __always_inline __u32 turn_position(__u64 *turn, __u32 n) {
        return (__u32) ((*turn)++ % n);
}

/* Entry pos of a list of a set. Without CAP_PERFMON the verifier accepts arithmetic on a pointer into a map
 * value only when every path to it moves the pointer by a number of the same kind (never a constant on one
 * path and not on another) and bounds: the list's place is in the pointer (a fixed offset), the position is
 * a number the verifier cannot know (0..STEER_SET_MAX - 1, whichever the list). Positions are computed so
 * (turn_position(), hash_position(), a modulo in pick()): a position the verifier could know, such as a
 * wrap to 0, would make it refuse the program under rpsup@.service. */
static __always_inline __u32 list_entry(__u32 *list, __u32 pos) {
        return list[bounded(pos)];
}

/* One listener of a list of n, from position pos (< n) on; PICK_TRIES of them, as one may be closing just
 * now. Returns 0 when the kernel took one (counted, and in run->picked). */
static __always_inline int pick(struct run *run, __u32 *list, __u32 n, __u32 pos) {
        if (n == 0 || n > STEER_SET_MAX)
                return -1;
#pragma unroll
        for (int i = 0; i < PICK_TRIES; i++) {
                __u32 index = list_entry(list, pos);

                if (bpf_sk_select_reuseport(run->md, &listeners, &index, 0) == 0) {
                        count(run, index);
                        run->picked = index;
                        return 0;
                }
                pos = (pos + 1) % n;
        }
        return -1;
}

/* Where the shadow policy would have sent this new connection, within the list the policy picked from (its
 * round robin keeps a position per list, as the enforced one does). */
static __always_inline void shadow(struct run *run, struct steer_set *set, __u32 *list, __u32 n, int tcp,
                                   int previous) {
        struct steer_counters *c;
        __u32 pos, index;

        if (n == 0 || n > STEER_SET_MAX)
                return;
        if (set->shadow == STEER_POLICY_ROUND_ROBIN + 1 && tcp) {
                if (!run->turns)
                        return;
                if (previous)
                        pos = turn_position(&run->turns->turn_shadow_previous, n);
                else
                        pos = turn_position(&run->turns->turn_shadow, n);
        } else
                pos = hash_position(run->md->hash, n);
        index = list_entry(list, pos);
        c = bpf_map_lookup_elem(&counters, &index);
        if (c)
                c->shadow++;
}

/* The SYN comes from this host, as rpsupd's probes do: from a loopback address (127.0.0.0/8, ::1), or from
 * the very address it is sent to (a probe of a listener on a specific address binds to that address). A
 * remote client cannot complete a handshake from either. */
static __always_inline int from_this_host(struct sk_reuseport_md *md) {
        __u32 a[8];

        if (md->eth_protocol == bpf_htons(ETH_P_IP))
                return bpf_skb_load_bytes_relative(md, 12, a, 8, BPF_HDR_START_NET) == 0 &&
                       ((bpf_ntohl(a[0]) >> 24) == 127 || a[0] == a[1]);
        if (md->eth_protocol == bpf_htons(ETH_P_IPV6))
                return bpf_skb_load_bytes_relative(md, 8, a, 32, BPF_HDR_START_NET) == 0 &&
                       (((a[0] | a[1] | a[2]) == 0 && a[3] == bpf_htonl(1)) ||
                        (a[0] == a[4] && a[1] == a[5] && a[2] == a[6] && a[3] == a[7]));
        return 0;
}

/* A SYN from a port in the probe map: to the listener it names. The TCP header is at md->data. The probe
 * connects from this host (from_this_host()): a SYN from elsewhere with the same port is steered as any
 * other. */
static __always_inline int aimed(struct sk_reuseport_md *md) {
        __u8 *data = md->data, *data_end = md->data_end;
        __u32 port, index, *aim;
        struct steer_counters *c;

        if (data + 2 > data_end)
                return -1;
        port = (__u32) data[0] << 8 | data[1];
        aim = bpf_map_lookup_elem(&probes, &port);
        if (!aim)
                return -1;
        index = *aim;
        if (!from_this_host(md))
                return -1;
        if (bpf_sk_select_reuseport(md, &listeners, &index, 0) != 0)
                return -1; /* gone, or of another group: steered like any other */
        c = bpf_map_lookup_elem(&counters, &index);
        if (c)
                c->probes++;
        return 0;
}

/* The datagram's flow: its 4-tuple (the UDP header is at md->data). */
static __always_inline int flow_key(struct sk_reuseport_md *md, struct steer_flow_key *k) {
        __u8 *data = md->data, *data_end = md->data_end;

        if (data + 4 > data_end)
                return -1;
        k->src_port = (__u16) data[0] << 8 | data[1];
        k->dst_port = (__u16) data[2] << 8 | data[3];
        __u32 a[8];

        if (md->eth_protocol == bpf_htons(ETH_P_IP)) {
                if (bpf_skb_load_bytes_relative(md, 12, a, 8, BPF_HDR_START_NET) != 0)
                        return -1;
                k->family = AF_INET;
                k->src[0] = a[0];
                k->dst[0] = a[1];
                return 0;
        }
        if (md->eth_protocol == bpf_htons(ETH_P_IPV6)) {
                if (bpf_skb_load_bytes_relative(md, 8, a, 32, BPF_HDR_START_NET) != 0)
                        return -1;
                k->family = AF_INET6;
                for (int i = 0; i < 4; i++) {
                        k->src[i] = a[i];
                        k->dst[i] = a[4 + i];
                }
                return 0;
        }
        return -1;
}

/* The group's fast copy (two array lookups, plain loads), or NULL: then it is in the groups map. */
static __always_inline struct steer_fast_set *fast_set(struct steer_group_key *key) {
        struct steer_fast_set *f;
        struct steer_port *p;
        __u32 port = key->port, copy;

        p = bpf_map_lookup_elem(&ports, &port);
        if (!p)
                return NULL;
        /* Constant offsets only: a variable one would be refused without CAP_PERFMON (see list_entry()). */
        switch (steer_port_slot(key->family, key->protocol)) {
        case 0:
                copy = p->set[0];
                break;
        case 1:
                copy = p->set[1];
                break;
        case 2:
                copy = p->set[2];
                break;
        default:
                copy = p->set[3];
                break;
        }
        if (copy == 0)
                return NULL;
        copy--;
        f = bpf_map_lookup_elem(&sets, &copy);
        if (f && f->key.family == key->family && f->key.protocol == key->protocol && f->key.port == key->port &&
            f->key.addr[0] == key->addr[0] && f->key.addr[1] == key->addr[1] && f->key.addr[2] == key->addr[2] &&
            f->key.addr[3] == key->addr[3])
                return f;
        return NULL;
}

/* Steers by a group's set (a fast copy or the groups map's). */
static __always_inline int steer_in(struct sk_reuseport_md *md, struct run *run, struct steer_set *set, int tcp,
                                    int syn) {
        struct steer_flow_key fk = {};
        __u32 n, *list, start, n_previous, percent, policy, group = set->group;
        struct steer_flow_value *flow;
        int rr, previous = 0, new_flow = 0;

        run->turns = bpf_map_lookup_elem(&turns, &group);
        n = set->n_active;
        list = set->active;
        if (n == 0) {
                n = set->n_standby;
                list = set->standby;
        }
        policy = set->policy;
        if (!md->migrating_sk && policy == STEER_POLICY_KERNEL) {
                /* Nothing selected: the kernel picks among every socket of the group, by the hash. */
                if (run->c0)
                        run->c0->kernel++;
                if (set->shadow)
                        shadow(run, set, list, n, tcp, 0);
                return SK_PASS;
        }

        if (md->ip_protocol == IPPROTO_UDP && set->flows && flow_key(md, &fk) == 0) {
                flow = bpf_map_lookup_elem(&flows, &fk);
                if (flow) {
                        __u32 index = flow->index;
                        steer_epoch *epoch = bpf_map_lookup_elem(&epochs, &index);
                        struct steer_counters *c;

                        /* The same listener as when the flow was entered (not one that got its index
                         * since), still in the sockarray and in this group. */
                        if (epoch && *epoch == flow->epoch &&
                            bpf_sk_select_reuseport(md, &listeners, &index, 0) == 0) {
                                c = bpf_map_lookup_elem(&counters, &index);
                                if (c)
                                        c->flow_hits++;
                                return SK_PASS;
                        }
                        if (run->c0)
                                run->c0->flow_lost++;
                }
                new_flow = 1;
        }

        rr = syn && policy == STEER_POLICY_ROUND_ROBIN; /* TCP turns */
        n_previous = md->migrating_sk ? 0 : set->n_previous;
        percent = set->previous_percent;
        if (n_previous > 0) {
                if (n == 0)
                        previous = 1; /* nothing else takes new connections */
                else if (rr) {
                        /* Of any 100 consecutive turns, exactly `percent`, spread evenly. */
                        if (run->turns)
                                previous = (run->turns->share++ % 100) * percent % 100 < percent;
                } else
                        /* The hash's high bits (hash_position() scrambles it for the choice within). */
                        previous = ((__u64) md->hash * 100) >> 32 < percent;
        }

        if (previous) {
                if (rr && run->turns)
                        start = turn_position(&run->turns->turn_previous, n_previous);
                else
                        start = hash_position(md->hash, n_previous);
                if (pick(run, set->previous, n_previous, start) == 0) {
                        if (set->shadow)
                                shadow(run, set, set->previous, n_previous, tcp, 1);
                        goto picked;
                }
        }
        if (rr && run->turns)
                start = turn_position(&run->turns->turn, n);
        else
                start = hash_position(md->hash, n);
        if (pick(run, list, n, start) == 0) {
                if (set->shadow && !md->migrating_sk)
                        shadow(run, set, list, n, tcp, 0);
                goto picked;
        }
        if (run->c0)
                run->c0->refused++;
        return SK_DROP;

picked:
        if (new_flow) {
                struct steer_counters *c = bpf_map_lookup_elem(&counters, &run->picked);
                steer_epoch *epoch = bpf_map_lookup_elem(&epochs, &run->picked);
                struct steer_flow_value v = { .index = run->picked, .epoch = epoch ? *epoch : 0 };

                bpf_map_update_elem(&flows, &fk, &v, BPF_ANY);
                if (c)
                        c->flow_new++;
        }
        return SK_PASS;
}

/* A group without a fast copy: its set from the groups map. A function of its own, so that the verifier sees
 * pointers into one map at a time in each copy of steer_in(). */
static __noinline int steer_slow(struct sk_reuseport_md *md, struct run *run, struct steer_group_key *key, int tcp,
                                 int syn) {
        struct steer_set *set = bpf_map_lookup_elem(&groups, key);

        if (set)
                return steer_in(md, run, set, tcp, syn);
        if (run->c0)
                run->c0->refused++;
        return SK_DROP;
}

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md) {
        struct steer_group_key key = {};
        struct bpf_sock *sk = md->sk;
        struct run run = { .md = md };
        struct steer_fast_set *fast;
        struct steer_state *st;
        __u32 zero = 0;
        int tcp, syn;

        if (!sk)
                return SK_DROP;
        tcp = md->ip_protocol == IPPROTO_TCP;
        syn = !md->migrating_sk && tcp;
        if (syn) {
                st = bpf_map_lookup_elem(&state, &zero);
                if (st && st->aims > 0 && aimed(md) == 0)
                        return SK_PASS;
        }

        key.family = sk->family;
        key.protocol = sk->protocol;
        key.port = sk->src_port;
        if (sk->family == AF_INET)
                key.addr[0] = sk->src_ip4;
        else {
                key.addr[0] = sk->src_ip6[0];
                key.addr[1] = sk->src_ip6[1];
                key.addr[2] = sk->src_ip6[2];
                key.addr[3] = sk->src_ip6[3];
        }
        run.c0 = bpf_map_lookup_elem(&counters, &zero);
        fast = fast_set(&key);
        if (fast)
                return steer_in(md, &run, &fast->set, tcp, syn);
        return steer_slow(md, &run, &key, tcp, syn);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
