/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "reuseport-group.h"
#include "sock-diag.h"

static bool is_own(uint64_t inode, const uint64_t *own, size_t n_own) {
        for (size_t i = 0; i < n_own; i++)
                if (own[i] == inode)
                        return true;
        return false;
}

typedef struct Foreign {
        const struct steer_group_key *key;
        size_t alen;
        const uint64_t *own;
        size_t n_own, seen;
        unsigned count;
} Foreign;

static int count_foreign(const struct inet_diag_msg *m, void *userdata) {
        Foreign *f = userdata;

        if (++f->seen > REUSEPORT_GROUP_SCAN_MAX)
                return -E2BIG;
        if (ntohs(m->id.idiag_sport) == f->key->port && memcmp(m->id.idiag_src, f->key->addr, f->alen) == 0 &&
            !is_own(m->idiag_inode, f->own, f->n_own))
                f->count++;
        return 0;
}

int reuseport_group_foreign(const struct steer_group_key *key, const uint64_t *own, size_t n_own, unsigned *ret) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {};
        Foreign f = { .key = key, .alen = key->family == AF_INET ? 4 : 16, .own = own, .n_own = n_own };
        int r;

        if (key->protocol != IPPROTO_TCP || (key->family != AF_INET && key->family != AF_INET6))
                return -EOPNOTSUPP;
        msg.req = (struct inet_diag_req_v2) {
                .sdiag_family = (uint8_t) key->family,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = 1U << TCP_LISTEN,
                .id.idiag_sport = htons((uint16_t) key->port),
        };
        msg.nlh = (struct nlmsghdr) {
                .nlmsg_len = sizeof(msg),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
        };
        r = sock_diag_dump(&msg, sizeof(msg), count_foreign, &f);
        if (r < 0)
                return r;
        *ret = f.count;
        return 0;
}
