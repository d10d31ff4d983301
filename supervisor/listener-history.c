/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <sys/stat.h>

#include "listener-history.h"
#include "time-util.h"

void listener_history_add(ListenerHistory **h, int fd, const SocketAddress *address) {
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return;
        if (!*h) {
                *h = calloc(1, sizeof(ListenerHistory));
                if (!*h)
                        return;
        }
        if ((*h)->n == LISTENER_HISTORY_MAX)
                (*h)->forgotten++;
        else
                (*h)->n++;
        (*h)->entries[(*h)->next] = (ClosedListener) {
                .inode = (uint64_t) st.st_ino,
                .address = *address,
                .closed_at = now_usec(CLOCK_REALTIME),
        };
        (*h)->next = ((*h)->next + 1) % LISTENER_HISTORY_MAX;
}

ListenerHistory *listener_history_free(ListenerHistory *h) {
        free(h);
        return NULL;
}
