// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)

/* Test helper: an XDP program for lo that drops every TCP segment to one port that carries ACK but not
 * SYN. Clients' final handshake ACKs (and their data) never arrive: the server side stays a request
 * socket (NEW_SYN_RECV), a handshake in flight, until the program is detached. */

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 port = 0; /* host byte order */
__u64 dropped = 0;

SEC("xdp")
int drop_ack(struct xdp_md *ctx) {
        void *data = (void *) (long) ctx->data, *end = (void *) (long) ctx->data_end;
        struct ethhdr *eth = data;
        struct tcphdr *tcp;
        __u8 proto;

        if ((void *) (eth + 1) > end)
                return XDP_PASS;
        if (eth->h_proto == bpf_htons(ETH_P_IP)) {
                struct iphdr *ip = (void *) (eth + 1);
                if ((void *) (ip + 1) > end || ip->ihl < 5)
                        return XDP_PASS;
                proto = ip->protocol;
                tcp = (void *) ip + ip->ihl * 4;
        } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
                struct ipv6hdr *ip6 = (void *) (eth + 1);
                if ((void *) (ip6 + 1) > end)
                        return XDP_PASS;
                proto = ip6->nexthdr;
                tcp = (void *) (ip6 + 1);
        } else
                return XDP_PASS;

        if (proto != IPPROTO_TCP || (void *) (tcp + 1) > end)
                return XDP_PASS;
        if (tcp->dest != bpf_htons(port) || !tcp->ack || tcp->syn)
                return XDP_PASS;
        __sync_fetch_and_add(&dropped, 1);
        return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
