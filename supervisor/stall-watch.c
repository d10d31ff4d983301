/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fd-util.h"

#include "log.h"
#include "stall-watch.h"

/* Each watch polls a copy of its own of the listener: epoll registrations belong to the socket, not to
 * the fd number, so a watch must not outlive the fd it was added with. Listeners are told apart by inode. */
typedef struct Watch {
        int fd;
        ino_t inode;
        sd_event_source *source;
} Watch;

struct QueueWatch {
        StallWatchHost host;
        Watch *watches;
        size_t n;
        bool armed;
};

static bool applicable(const StallWatchHost *h) {
        Service *s = h->service;

        return s && s->live && h->strategy->kind != STRATEGY_HANDOFF && stall_timeout(s->live->config) > 0 &&
               s->state != SERVICE_STOPPING && s->state != SERVICE_STOPPED;
}

static void set_all(QueueWatch *qw, int enabled) {
        for (size_t i = 0; i < qw->n; i++)
                (void) sd_event_source_set_enabled(qw->watches[i].source, enabled);
        qw->armed = enabled != SD_EVENT_OFF;
}

static int on_queue(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QueueWatch *qw = userdata;

        /* One is enough: sampling covers them all from here. */
        set_all(qw, SD_EVENT_OFF);
        service_queues_busy(qw->host.service);
        if (qw->host.busy)
                qw->host.busy(qw->host.userdata);
        return 0;
}

static ino_t inode_of(int fd) {
        struct stat st;

        return fstat(fd, &st) < 0 ? 0 : st.st_ino;
}

typedef struct Served {
        ino_t inode;
        int fd;
} Served;

static int served_compare(const void *a, const void *b) {
        ino_t x = ((const Served *) a)->inode, y = ((const Served *) b)->inode;

        return x < y ? -1 : x > y;
}

static bool served_contains(const Served *list, size_t n, ino_t inode) {
        return n > 0 && bsearch(&(Served) { .inode = inode }, list, n, sizeof(Served), served_compare);
}

static void watch_drop(Watch *w) {
        sd_event_source_disable_unref(w->source);
        safe_close(w->fd);
}

/* The stream listeners of the serving workers, each once (a socket unit's listener is shared by every slot),
 * sorted by inode. */
static int served_listeners(const StallWatchHost *h, Served **ret, size_t *ret_n) {
        Generation *g = h->service->live;
        _cleanup_free_ Served *list = NULL;
        size_t n = 0, size = 0;

        if (!applicable(h)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        for (size_t i = 0; i < g->n_slots; i++)
                size += slot_is_serving(g->slots[i]) ? FD_LIST_MAX : 0;
        list = calloc(size ?: 1, sizeof(Served));
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_slots; i++) {
                FdList l = {};
                if (!slot_is_serving(g->slots[i]) || h->strategy->ops->slot_fds(h->strategy, g->slots[i], &l) < 0)
                        continue;
                for (size_t j = 0; j < l.n; j++) {
                        ino_t inode;
                        int type;
                        socklen_t len = sizeof(type);

                        /* A stall is a queue of connections nobody accepts: datagram sockets have none, and
                         * watching them would wake rpsupd for every datagram. */
                        if (getsockopt(l.fds[j], SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
                                continue;
                        inode = inode_of(l.fds[j]);
                        if (inode != 0)
                                list[n++] = (Served) { .inode = inode, .fd = l.fds[j] };
                }
        }
        qsort(list, n, sizeof(Served), served_compare);
        size = n;
        n = 0;
        for (size_t i = 0; i < size; i++)
                if (n == 0 || list[n - 1].inode != list[i].inode)
                        list[n++] = list[i];
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

void queue_watch_sync(QueueWatch *qw) {
        const StallWatchHost *h = &qw->host;
        _cleanup_free_ Served *served = NULL, *watched = NULL;
        size_t n, n_watched = 0;
        int r;

        if (served_listeners(h, &served, &n) < 0) {
                log_ratelimit(LOG_WARNING, "Out of memory: stall detection does not watch the accept queues for now.");
                return;
        }

        /* Drop what is no longer served. */
        for (size_t i = 0; i < qw->n;) {
                if (served_contains(served, n, qw->watches[i].inode)) {
                        i++;
                        continue;
                }
                watch_drop(&qw->watches[i]);
                qw->watches[i] = qw->watches[--qw->n];
        }
        /* Add what is new, armed unless sampling runs. */
        watched = calloc(qw->n ?: 1, sizeof(Served));
        if (!watched) {
                log_ratelimit(LOG_WARNING, "Out of memory: stall detection does not watch every accept queue for now.");
                return;
        }
        for (size_t i = 0; i < qw->n; i++)
                watched[n_watched++] = (Served) { .inode = qw->watches[i].inode };
        qsort(watched, n_watched, sizeof(Served), served_compare);
        for (size_t i = 0; i < n; i++) {
                Watch *w;

                if (served_contains(watched, n_watched, served[i].inode))
                        continue;
                w = realloc(qw->watches, sizeof(Watch) * (qw->n + 1));
                if (!w) {
                        log_ratelimit(LOG_WARNING, "Out of memory: stall detection does not watch every accept "
                                      "queue for now.");
                        return;
                }
                qw->watches = w;
                w = &qw->watches[qw->n];
                *w = (Watch) { .fd = fd_dup_cloexec(served[i].fd), .inode = served[i].inode };
                r = w->fd < 0 ? w->fd : sd_event_add_io(h->event, &w->source, w->fd, EPOLLIN, on_queue, qw);
                if (r < 0) {
                        /* Sampling still covers this queue once another one starts it. */
                        log_ratelimit(LOG_WARNING, "Cannot watch a worker's accept queue for stalls: %s",
                                      strerror(-r));
                        w->fd = safe_close(w->fd);
                        continue;
                }
                (void) sd_event_source_set_enabled(w->source, h->service->sampling ? SD_EVENT_OFF : SD_EVENT_ONESHOT);
                qw->n++;
        }
        if (n == 0)
                qw->armed = false;
        else if (!h->service->sampling && !qw->armed)
                set_all(qw, SD_EVENT_ONESHOT);
}

void queue_watch_arm(QueueWatch *qw) {
        queue_watch_sync(qw);
        set_all(qw, SD_EVENT_ONESHOT);
}

int queue_watch_new(const StallWatchHost *host, QueueWatch **ret) {
        QueueWatch *qw = calloc(1, sizeof(QueueWatch));

        if (!qw)
                return -ENOMEM;
        qw->host = *host;
        *ret = qw;
        return 0;
}

QueueWatch *queue_watch_free(QueueWatch *qw) {
        if (!qw)
                return NULL;
        for (size_t i = 0; i < qw->n; i++)
                watch_drop(&qw->watches[i]);
        free(qw->watches);
        free(qw);
        return NULL;
}
