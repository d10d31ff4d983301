/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "systemd-fdstore.h"
#include "strv.h"
#include "systemd-notify.h"

/* Whether systemd (or something speaking its protocol) can keep fds for us. */
static bool fdstore_available(void) {
        return systemd_notify_available();
}

int fdstore_add(int fd, const char *name) {
        _cleanup_free_ char *msg = NULL;
        int r;

        if (!fdstore_available())
                return 0;
        /* FDPOLL=0: systemd must not drop a listener just because it is readable or hung up. */
        if (asprintf(&msg, "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name) < 0)
                return -ENOMEM;
        r = systemd_notify(msg, fd);
        return r < 0 ? r : 0;
}

int fdstore_remove(const char *name) {
        _cleanup_free_ char *msg = NULL;

        if (!fdstore_available())
                return 0;
        if (asprintf(&msg, "FDSTOREREMOVE=1\nFDNAME=%s", name) < 0)
                return -ENOMEM;
        return systemd_notify(msg, -EBADF);
}

int inherited_fds_take(InheritedFds *ret) {
        _cleanup_strv_free_ char **names = NULL;
        InheritedFds l = {};
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                *ret = l;
                return n;
        }
        l.fds = calloc((size_t) n, sizeof(InheritedFd));
        if (!l.fds) {
                for (int i = 0; i < n; i++)
                        safe_close(SD_LISTEN_FDS_START + i);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                (void) fd_set_cloexec(fd, true);
                l.fds[i].fd = fd;
                l.fds[i].name = strdup(names && names[i] ? names[i] : "unknown");
        }
        l.n = (size_t) n;
        *ret = l;
        return n;
}

int inherited_fds_claim(InheritedFds *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (l->fds[i].fd >= 0 && streq_ptr(l->fds[i].name, name))
                        return TAKE_FD(l->fds[i].fd);
        return -EBADF;
}

void inherited_fds_done(InheritedFds *l) {
        for (size_t i = 0; i < l->n; i++) {
                safe_close(l->fds[i].fd);
                free(l->fds[i].name);
        }
        free(l->fds);
        *l = (InheritedFds) {};
}
