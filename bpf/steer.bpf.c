// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)

/* rpsup's steering program, attached to every reuseport group rpsupd holds (SO_ATTACH_REUSEPORT_EBPF) as
 * a select-or-migrate program:
 *  - for a new connection (a SYN, or a UDP datagram) it picks one listener of the group's active set;
 *    with no active listener, one of the standby set; with neither, it refuses;
 *  - when a listener closes (or rpsupd shuts it down), the kernel asks it where each queued connection
 *    and each handshake in flight should go (migrating_sk): a listener of the same sets.
 * Which one of the set: new TCP connections take turns (round robin, per CPU), so that each worker gets
 * the same share; datagrams go by their hash, so that a flow keeps reaching the same worker, and so do
 * migrated connections.
 * It never picks a socket that is not in rpsupd's sockarray, so a socket that joins the group from
 * outside gets nothing, and it never falls back to the kernel's random choice. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "steer-shared.h"

#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10
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
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, STEER_LISTENERS_MAX);
        __type(key, __u32);
        __type(value, struct steer_counters);
} counters SEC(".maps");

static __always_inline void count(__u32 index, struct sk_reuseport_md *md) {
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

SEC("sk_reuseport/migrate")
int steer(struct sk_reuseport_md *md) {
        struct steer_group_key key = {};
        struct bpf_sock *sk = md->sk;
        struct steer_set *set;
        __u32 n, *list, zero = 0, start;

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

        set = bpf_map_lookup_elem(&groups, &key);
        if (!set)
                goto refuse;
        n = set->n_active;
        list = set->active;
        if (n == 0) {
                n = set->n_standby;
                list = set->standby;
        }
        if (n == 0 || n > STEER_SET_MAX)
                goto refuse;

        start = md->hash;
        if (!md->migrating_sk && md->ip_protocol == IPPROTO_TCP) {
                struct steer_counters *c = bpf_map_lookup_elem(&counters, &zero);
                if (c)
                        start = (__u32) c->turn++;
        }

#pragma unroll
        for (int i = 0; i < PICK_TRIES; i++) {
                /* A listener may be closing just now: then the next one. */
                __u32 pos = (start + i) % n;
                __u32 index;

                /* pos < n <= STEER_SET_MAX, but the verifier cannot follow a modulo: bound it in a way the
                 * compiler cannot drop (STEER_SET_MAX is a power of two). */
                asm volatile("" : "+r"(pos));
                pos &= STEER_SET_MAX - 1;
                index = list[pos];
                if (bpf_sk_select_reuseport(md, &listeners, &index, 0) == 0) {
                        count(index, md);
                        return SK_PASS;
                }
        }

refuse: {
                struct steer_counters *c = bpf_map_lookup_elem(&counters, &zero);
                if (c)
                        c->refused++;
        }
        return SK_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
