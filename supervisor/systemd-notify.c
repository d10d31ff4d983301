/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fd-util.h"
#include "log.h"
#include "systemd-notify.h"
#include "time-util.h"

#define QUEUE_MAX 4096u

typedef struct Pending {
        char *text;
        int fd;
        STAILQ_ENTRY(Pending) queue;
} Pending;

static struct {
        int sock;
        struct sockaddr_un address;
        socklen_t address_size;
        bool resolved;
        STAILQ_HEAD(, Pending) queue; /* in the order sent */
        unsigned n;
        sd_event *event;
        sd_event_source *retry;
} notifier = { .sock = -EBADF, .queue = STAILQ_HEAD_INITIALIZER(notifier.queue) };

static int resolve(void) {
        const char *e = getenv("NOTIFY_SOCKET");
        size_t n;

        if (notifier.resolved)
                return notifier.address_size > 0 ? 1 : 0;
        notifier.resolved = true;
        if (isempty(e))
                return 0;
        n = strlen(e);
        if ((e[0] != '/' && e[0] != '@') || n >= sizeof(notifier.address.sun_path))
                return -EINVAL;
        notifier.address.sun_family = AF_UNIX;
        memcpy(notifier.address.sun_path, e, n);
        if (e[0] == '@')
                notifier.address.sun_path[0] = 0;
        notifier.address_size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
        notifier.sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (notifier.sock < 0) {
                notifier.address_size = 0;
                return -errno;
        }
        return 1;
}

bool systemd_notify_available(void) {
        return resolve() > 0;
}

static int send_one(const char *text, int fd) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (char *) text, .iov_len = strlen(text) };
        struct msghdr mh = {
                .msg_name = &notifier.address,
                .msg_namelen = notifier.address_size,
                .msg_iov = &iov,
                .msg_iovlen = 1,
        };

        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        if (sendmsg(notifier.sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

static void pending_free(Pending *p) {
        safe_close(p->fd);
        free(p->text);
        free(p);
}

/* Sends what is queued, in order; stops at the first that does not fit. */
static int flush_queue(void) {
        Pending *p;

        while ((p = STAILQ_FIRST(&notifier.queue))) {
                int r = send_one(p->text, p->fd);

                if (r == -EAGAIN)
                        return -EAGAIN;
                if (r < 0)
                        log_ratelimit(LOG_WARNING, "Failed to tell systemd \"%.40s\": %s", p->text, strerror(-r));
                STAILQ_REMOVE_HEAD(&notifier.queue, queue);
                notifier.n--;
                pending_free(p);
        }
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        if (flush_queue() == -EAGAIN) {
                (void) sd_event_source_set_time_relative(s, 20 * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

static void arm_retry(void) {
        if (!notifier.event)
                return;
        if (!notifier.retry) {
                if (sd_event_add_time_relative(notifier.event, &notifier.retry, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC,
                                               USEC_PER_MSEC, on_retry, NULL) < 0)
                        return;
        } else
                (void) sd_event_source_set_time_relative(notifier.retry, 20 * USEC_PER_MSEC);
        (void) sd_event_source_set_enabled(notifier.retry, SD_EVENT_ONESHOT);
}

void systemd_notify_attach(sd_event *e) {
        notifier.event = e;
        if (!STAILQ_EMPTY(&notifier.queue))
                arm_retry();
}

void systemd_notify_detach(void) {
        notifier.retry = sd_event_source_disable_unref(notifier.retry);
        notifier.event = NULL;
}

int systemd_notify(const char *text, int fd) {
        bool status = strncmp(text, "STATUS=", 7) == 0;
        Pending *p;
        int r;

        r = resolve();
        if (r <= 0)
                return r;

        if (STAILQ_EMPTY(&notifier.queue)) {
                r = send_one(text, fd);
                if (r != -EAGAIN)
                        return r;
        } else if (flush_queue() == 0) {
                r = send_one(text, fd);
                if (r != -EAGAIN)
                        return r;
        }

        /* The receiver is busy: queue it. A newer status line makes a queued one pointless. */
        if (status) {
                Pending *q;
                STAILQ_FOREACH(q, &notifier.queue, queue)
                        if (strncmp(q->text, "STATUS=", 7) == 0 && q->fd < 0) {
                                char *t = strdup(text);
                                if (!t)
                                        return -ENOMEM;
                                free(q->text);
                                q->text = t;
                                return 0;
                        }
        }
        if (notifier.n >= QUEUE_MAX) {
                log_ratelimit(LOG_WARNING, "systemd does not read its notification socket; dropping \"%.40s\"", text);
                return -ENOBUFS;
        }
        p = calloc(1, sizeof(Pending));
        if (!p)
                return -ENOMEM;
        p->fd = fd >= 0 ? fd_dup_cloexec(fd) : -EBADF;
        p->text = strdup(text);
        if (!p->text || (fd >= 0 && p->fd < 0)) {
                pending_free(p);
                return -ENOMEM;
        }
        STAILQ_INSERT_TAIL(&notifier.queue, p, queue);
        notifier.n++;
        arm_retry();
        return 0;
}

void systemd_notify_flush(usec_t timeout) {
        usec_t end = usec_add(now_usec(CLOCK_MONOTONIC), timeout);

        while (!STAILQ_EMPTY(&notifier.queue) && flush_queue() == -EAGAIN) {
                struct pollfd p = { .fd = notifier.sock, .events = POLLOUT };
                usec_t t = now_usec(CLOCK_MONOTONIC);
                if (t >= end)
                        break;
                (void) poll(&p, 1, (int) MIN((end - t) / USEC_PER_MSEC + 1, 100));
        }
}
