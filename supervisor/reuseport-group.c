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

#include "fd-util.h"
#include "macro.h"
#include "reuseport-group.h"

static bool is_own(uint64_t inode, const uint64_t *own, size_t n_own) {
        for (size_t i = 0; i < n_own; i++)
                if (own[i] == inode)
                        return true;
        return false;
}

int reuseport_group_foreign(const struct steer_group_key *key, const uint64_t *own, size_t n_own, unsigned *ret) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ void *buf = NULL;
        const size_t buf_size = 32 * 1024;
        size_t alen = key->family == AF_INET ? 4 : 16, seen = 0;
        unsigned foreign = 0;

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
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return -errno;
        if (send(fd, &msg, msg.nlh.nlmsg_len, 0) < 0)
                return -errno;
        buf = malloc(buf_size);
        if (!buf)
                return -ENOMEM;
        /* The kernel makes the dump's next part as each one is read: a read never waits. */
        for (;;) {
                ssize_t k = recv(fd, buf, buf_size, MSG_DONTWAIT);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                for (struct nlmsghdr *h = buf; NLMSG_OK(h, (size_t) k); h = NLMSG_NEXT(h, k)) {
                        const struct inet_diag_msg *m;

                        if (h->nlmsg_type == NLMSG_DONE) {
                                *ret = foreign;
                                return 0;
                        }
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
                        }
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
                                continue;
                        if (++seen > REUSEPORT_GROUP_SCAN_MAX)
                                return -E2BIG;
                        m = NLMSG_DATA(h);
                        if (ntohs(m->id.idiag_sport) != key->port || memcmp(m->id.idiag_src, key->addr, alen) != 0)
                                continue;
                        if (!is_own(m->idiag_inode, own, n_own))
                                foreign++;
                }
        }
}
