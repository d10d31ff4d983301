/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "fd-util.h"
#include "macro.h"
#include "sock-diag.h"

int sock_diag_dump(const void *request, size_t len, int (*each)(const struct inet_diag_msg *m, void *userdata),
                   void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ void *buf = NULL;
        const size_t buf_size = 32 * 1024;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return -errno;
        if (send(fd, request, len, 0) < 0)
                return -errno;
        buf = malloc(buf_size);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = recv(fd, buf, buf_size, MSG_DONTWAIT);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno; /* EAGAIN: the kernel had nothing to give: the answer is unknown */
                }
                if (k == 0)
                        return -EIO;
                for (struct nlmsghdr *h = buf; NLMSG_OK(h, (size_t) k); h = NLMSG_NEXT(h, k)) {
                        int r;

                        if (h->nlmsg_type == NLMSG_DONE)
                                return 0;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
                        }
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                            h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                                continue;
                        r = each(NLMSG_DATA(h), userdata);
                        if (r < 0)
                                return r;
                }
        }
}
