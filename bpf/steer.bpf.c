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
 *  - round-robin: new TCP connections take turns (per CPU, one position per set), so that each worker gets
 *    the same share; datagrams go by their hash, so that a flow keeps reaching the same worker;
 *  - hash: new connections and datagrams go by their hash: a flow (its 4-tuple) keeps its listener while
 *    the set stays the same;
 *  - kernel: the program selects nothing for a new connection and lets it pass: the kernel's own reuseport
 *    selection picks among every socket of the group (see STEER_POLICY_KERNEL); probes are still aimed.
 * Migrated connections go by hash to the active (or standby) set under every policy. The canary split comes
 * first, then the policy within the generation: exact per CPU for round-robin TCP (of any 100 consecutive
 * new connections on a CPU, previous_percent go to the previous set, spread evenly), by hash otherwise
 * (flow-sticky).
 * Under round-robin and hash it never picks a socket that is not in rpsupd's sockarray, so a socket that
 * joins the group from outside gets nothing, and it never falls back to the kernel's choice; under kernel,
 * such a socket gets its share of new connections. */

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "steer-shared.h"

#define IPPROTO_TCP 6
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

static __always_inline void count(__u32 index, struct sk_reuseport_md *md, int probe) {
        struct steer_counters *c = bpf_map_lookup_elem(&counters, &index);
        struct bpf_sock *m = md->migrating_sk;

        if (!c)
                return;
        if (probe)
                c->probes++;
        else if (!m)
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

/* One listener of list[0..n), from position start on; PICK_TRIES of them, as one may be closing just now.
 * Returns 0 when the kernel took one (counted). */
static __always_inline int pick(struct sk_reuseport_md *md, __u32 *list, __u32 n, __u32 start) {
        if (n == 0 || n > STEER_SET_MAX)
                return -1;
#pragma unroll
        for (int i = 0; i < PICK_TRIES; i++) {
                __u32 pos = (start + i) % n;
                __u32 index;

                /* pos < n <= STEER_SET_MAX, but the verifier cannot follow a modulo: bound it in a way the
                 * compiler cannot drop (STEER_SET_MAX is a power of two). */
                asm volatile("" : "+r"(pos));
                pos &= STEER_SET_MAX - 1;
                index = list[pos];
                if (bpf_sk_select_reuseport(md, &listeners, &index, 0) == 0) {
                        count(index, md, 0);
                        return 0;
                }
        }
        return -1;
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
        count(index, md, 1);
        return 0;
}

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md) {
        struct steer_group_key key = {};
        struct bpf_sock *sk = md->sk;
        struct steer_counters *c0;
        struct steer_set *set;
        __u32 n, *list, zero = 0, start, start_previous, n_previous, percent;
        int syn, turns, previous = 0;

        if (!sk)
                return SK_DROP;
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

        syn = !md->migrating_sk && md->ip_protocol == IPPROTO_TCP;
        if (syn && aimed(md) == 0)
                return SK_PASS;

        c0 = bpf_map_lookup_elem(&counters, &zero);
        set = bpf_map_lookup_elem(&groups, &key);
        if (!set)
                goto refuse;
        n = set->n_active;
        list = set->active;
        if (n == 0) {
                n = set->n_standby;
                list = set->standby;
        }
        if (!md->migrating_sk && set->policy == STEER_POLICY_KERNEL) {
                /* Nothing selected: the kernel picks among every socket of the group, by the hash. */
                if (c0)
                        c0->kernel++;
                return SK_PASS;
        }
        turns = syn && set->policy == STEER_POLICY_ROUND_ROBIN;
        n_previous = md->migrating_sk ? 0 : set->n_previous;
        percent = set->previous_percent;

        start = start_previous = md->hash;
        if (n_previous > 0) {
                if (n == 0)
                        previous = 1; /* nothing else takes new connections */
                else if (turns) {
                        /* Of any 100 consecutive turns, exactly `percent`, spread evenly. */
                        if (c0)
                                previous = (c0->share++ % 100) * percent % 100 < percent;
                } else
                        /* The hash's high bits: its low bits pick the listener within the set. */
                        previous = ((__u64) md->hash * 100) >> 32 < percent;
        }
        if (turns && c0) {
                if (previous)
                        start_previous = (__u32) c0->turn_previous++;
                else
                        start = (__u32) c0->turn++;
        }

        if (previous && pick(md, set->previous, n_previous, start_previous) == 0)
                return SK_PASS;
        if (pick(md, list, n, start) == 0)
                return SK_PASS;

refuse:
        if (c0)
                c0->refused++;
        return SK_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
