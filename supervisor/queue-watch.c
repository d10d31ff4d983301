/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <sys/stat.h>

#include "fd-util.h"

#include "log.h"
#include "manager.h"
#include "queue-watch.h"

/* Each watch polls a copy of its own of the listener: epoll registrations belong to the socket, not to
 * the fd number, so a watch must not outlive the fd it was added with. Listeners are told apart by inode. */
typedef struct Watch {
        int fd;
        ino_t inode;
        sd_event_source *source;
} Watch;

struct QueueWatch {
        Manager *manager;
        Watch *watches;
        size_t n;
        bool armed;
};

static bool applicable(Manager *m) {
        Service *s = m->service;

        return s && s->live && m->strategy->kind != STRATEGY_HANDOFF && stall_timeout(s->live->config) > 0 &&
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
        service_queues_busy(qw->manager->service);
        manager_changed(qw->manager);
        return 0;
}

static ino_t inode_of(int fd) {
        struct stat st;

        return fstat(fd, &st) < 0 ? 0 : st.st_ino;
}

static bool contains(const ino_t *inodes, size_t n, ino_t inode) {
        for (size_t i = 0; i < n; i++)
                if (inodes[i] == inode)
                        return true;
        return false;
}

static void watch_drop(Watch *w) {
        sd_event_source_disable_unref(w->source);
        safe_close(w->fd);
}

void queue_watch_sync(QueueWatch *qw) {
        Manager *m = qw->manager;
        int fds[FD_LIST_MAX * 8];
        ino_t inodes[FD_LIST_MAX * 8];
        size_t n = 0;

        if (applicable(m)) {
                Generation *g = m->service->live;
                for (size_t i = 0; i < g->n_slots; i++) {
                        FdList l = {};
                        if (!slot_is_serving(g->slots[i]) || m->strategy->ops->slot_fds(m->strategy, g->slots[i], &l) < 0)
                                continue;
                        for (size_t j = 0; j < l.n && n < ELEMENTSOF(fds); j++) {
                                ino_t inode = inode_of(l.fds[j]);
                                if (inode != 0 && !contains(inodes, n, inode)) {
                                        inodes[n] = inode;
                                        fds[n++] = l.fds[j];
                                }
                        }
                }
        }

        /* Drop what is no longer served. */
        for (size_t i = 0; i < qw->n;) {
                if (contains(inodes, n, qw->watches[i].inode)) {
                        i++;
                        continue;
                }
                watch_drop(&qw->watches[i]);
                qw->watches[i] = qw->watches[--qw->n];
        }
        /* Add what is new, armed unless sampling runs. */
        for (size_t i = 0; i < n; i++) {
                bool have = false;
                Watch *w;
                for (size_t j = 0; j < qw->n; j++)
                        have = have || qw->watches[j].inode == inodes[i];
                if (have)
                        continue;
                w = realloc(qw->watches, sizeof(Watch) * (qw->n + 1));
                if (!w)
                        return;
                qw->watches = w;
                w = &qw->watches[qw->n];
                *w = (Watch) { .fd = fd_dup_cloexec(fds[i]), .inode = inodes[i] };
                if (w->fd < 0)
                        continue;
                if (sd_event_add_io(m->event, &w->source, w->fd, EPOLLIN, on_queue, qw) < 0) {
                        w->fd = safe_close(w->fd);
                        continue;
                }
                (void) sd_event_source_set_enabled(w->source, m->service->sampling ? SD_EVENT_OFF : SD_EVENT_ONESHOT);
                qw->n++;
        }
        if (n == 0)
                qw->armed = false;
        else if (!m->service->sampling && !qw->armed)
                set_all(qw, SD_EVENT_ONESHOT);
}

void queue_watch_arm(QueueWatch *qw) {
        queue_watch_sync(qw);
        set_all(qw, SD_EVENT_ONESHOT);
}

int queue_watch_new(Manager *m, QueueWatch **ret) {
        QueueWatch *qw = calloc(1, sizeof(QueueWatch));

        if (!qw)
                return -ENOMEM;
        qw->manager = m;
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
