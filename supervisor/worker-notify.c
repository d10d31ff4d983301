/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fd-util.h"
#include "rpsup-limits.h"
#include "listener.h"
#include "log.h"
#include "worker-notify.h"
#include "parse-util.h"
#include "utf8.h"

struct NotifyServer {
        sd_event_source *source;
        int fd;
        char *path;
        NotifyHandler handler;
        void *userdata;
};

bool notify_fdname_is_valid(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++)
                if (s[n] < ' ' || s[n] > '~' || s[n] == ':')
                        return false;
        return n > 0 && n <= NOTIFY_FDNAME_MAX;
}

int notify_parse(char *buf, size_t n, NotifyMessage *ret) {
        NotifyMessage *m = ret;
        char *p = buf, *end = buf + n;

        if (memchr(buf, 0, n))
                return -EBADMSG;
        *end = 0;
        *m = (NotifyMessage) {};
        while (p < end) {
                char *nl = strchr(p, '\n');
                if (nl)
                        *nl = 0;
                if (streq(p, "READY=1"))
                        m->ready = true;
                else if (streq(p, "STOPPING=1"))
                        m->stopping = true;
                else if (streq(p, "WATCHDOG=1"))
                        m->watchdog = true;
                else if (streq(p, "WATCHDOG=trigger"))
                        m->watchdog_trigger = true;
                else if (strncmp(p, "STATUS=", 7) == 0) {
                        /* Text from a worker: it ends up in status replies, which sd-bus refuses to send
                         * unless they are valid UTF-8, and on operators' terminals. */
                        utf8_sanitize(p + 7, strlen(p + 7), m->status_buf, sizeof(m->status_buf),
                                      UTF8_REPLACE_CONTROL, &m->status_changed);
                        m->status = m->status_buf;
                } else if (strncmp(p, "EXTEND_TIMEOUT_USEC=", 20) == 0)
                        (void) parse_uint64(p + 20, &m->extend_timeout);
                else if (strncmp(p, "ERRNO=", 6) == 0)
                        (void) parse_int(p + 6, &m->errno_value);
                else if (streq(p, "FDSTORE=1"))
                        m->fdstore = true;
                else if (streq(p, "FDSTOREREMOVE=1"))
                        m->fdstore_remove = true;
                else if (streq(p, "FDPOLL=0"))
                        m->fdpoll_off = true;
                else if (strncmp(p, "FDNAME=", 7) == 0) {
                        /* The last one counts, as with systemd. */
                        if (notify_fdname_is_valid(p + 7)) {
                                strcpy(m->fdname_buf, p + 7); /* fits: checked */
                                m->fdname = m->fdname_buf;
                                m->fdname_invalid = false;
                        } else {
                                m->fdname = NULL;
                                m->fdname_invalid = true;
                        }
                }
                /* Anything else (MAINPID=, RELOADING=1, FDPOLL=1, ...) means nothing to rpsupd. */
                if (!nl)
                        break;
                p = nl + 1;
        }
        return 0;
}

static void close_all(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* A datagram received whole, with its sender, and parsed. */
static int notify_check(char *buf, ssize_t n, const struct msghdr *mh, const struct ucred *cred, NotifyMessage *m) {
        if ((size_t) n > NOTIFY_MESSAGE_MAX || (mh->msg_flags & MSG_CTRUNC)) {
                log_ratelimit(LOG_WARNING, "Ignoring a notification of %zd bytes (at most %u are read, with at most "
                              "253 fds).", n, NOTIFY_MESSAGE_MAX);
                return -EBADMSG;
        }
        if (!cred || cred->pid <= 0) {
                log_ratelimit(LOG_WARNING, "Ignoring a notification without sender credentials.");
                return -EBADMSG;
        }
        if (notify_parse(buf, (size_t) n, m) < 0) {
                log_ratelimit(LOG_WARNING, "Ignoring a malformed notification from pid %d.", (int) cred->pid);
                return -EBADMSG;
        }
        return 0;
}

static int on_notify(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        NotifyServer *ns = userdata;
        char buf[NOTIFY_MESSAGE_MAX + 1];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 253)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct ucred *cred = NULL;
        int fds[253];
        size_t n_fds;
        NotifyMessage m;
        ssize_t n;

        /* A bounded number of datagrams per wake-up, so a flood cannot starve everything else. */
        for (unsigned i = 0; i < 64; i++) {
                mh.msg_controllen = sizeof(control);
                mh.msg_flags = 0;
                cred = NULL;
                n_fds = 0;
                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        log_ratelimit(LOG_WARNING, "Failed to receive a notification from a worker: %m");
                        return 0;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET)
                                continue;
                        if (c->cmsg_type == SCM_RIGHTS) {
                                /* For the handler (FDSTORE=1); closed below unless it keeps them. The control
                                 * buffer holds no more than fds[] does. */
                                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                for (size_t j = 0; j < k; j++) {
                                        int f;
                                        memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                                        if (n_fds < ELEMENTSOF(fds))
                                                fds[n_fds++] = f;
                                        else
                                                safe_close(f);
                                }
                        } else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (struct ucred *) CMSG_DATA(c);
                }
                if (notify_check(buf, n, &mh, cred, &m) < 0) {
                        close_all(fds, n_fds);
                        continue;
                }
                if (m.status_changed & UTF8_REPLACED_INVALID)
                        log_ratelimit(LOG_NOTICE, "The STATUS= of pid %d is not valid UTF-8; shown with U+FFFD in "
                                      "place of the invalid bytes.", (int) cred->pid);
                if (m.status_changed & UTF8_CUT)
                        log_ratelimit(LOG_NOTICE, "The STATUS= of pid %d is longer than %u bytes; shown cut.",
                                      (int) cred->pid, STATUS_TEXT_MAX);
                m.fds = fds;
                m.n_fds = n_fds;
                ns->handler(cred->pid, &m, ns->userdata);
                close_all(fds, n_fds);
        }
        return 0;
}

int notify_server_new(sd_event *e, const char *path, int fd, NotifyHandler handler, void *userdata,
                      NotifyServer **ret) {
        _cleanup_close_ int sfd = fd;
        NotifyServer *ns;
        int one = 1, r;

        if (sfd < 0) {
                SocketAddress a;
                r = socket_address_parse(path, SOCK_DGRAM, &a);
                if (r < 0)
                        return r == -EINVAL ? -ENAMETOOLONG : r;
                /* Mode 0666: workers may run as another user (User=). */
                r = socket_bind_listen(&a, 0, false, &sfd);
                if (r < 0)
                        return r;
        }
        (void) fd_set_nonblock(sfd, true);
        if (setsockopt(sfd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;

        ns = calloc(1, sizeof(NotifyServer));
        if (!ns)
                return -ENOMEM;
        *ns = (NotifyServer) { .fd = -EBADF, .handler = handler, .userdata = userdata };
        ns->path = strdup(path);
        if (!ns->path) {
                free(ns);
                return -ENOMEM;
        }
        r = sd_event_add_io(e, &ns->source, sfd, EPOLLIN, on_notify, ns);
        if (r < 0) {
                free(ns->path);
                free(ns);
                return r;
        }
        ns->fd = TAKE_FD(sfd);
        *ret = ns;
        return 0;
}

NotifyServer *notify_server_free(NotifyServer *ns) {
        if (!ns)
                return NULL;
        sd_event_source_disable_unref(ns->source);
        safe_close(ns->fd);
        free(ns->path);
        free(ns);
        return NULL;
}

int notify_server_fd(NotifyServer *ns) {
        return ns->fd;
}

const char *notify_server_path(NotifyServer *ns) {
        return ns->path;
}
