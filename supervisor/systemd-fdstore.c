/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "log.h"
#include "rpsup-limits.h"
#include "systemd-fdstore.h"
#include "strv.h"
#include "systemd-notify.h"

/* Whether systemd (or something speaking its protocol) can keep fds for us. */
static bool fdstore_available(void) {
        return systemd_notify_available();
}

/* What rpsupd stored, kept by rpsupd itself too (whether or not systemd keeps a copy): a reexec passes these
 * to the new image. Same semantics as systemd's store: several fds may share a name, a removal drops them all. */
static struct {
        StoredFd *fds;
        size_t n, allocated;
        bool incomplete; /* an fd was not kept (limit, or out of fds or memory): a reexec would lose it */
} kept;

static int kept_add(int fd, const char *name) {
        _cleanup_close_ int copy = -EBADF;
        _cleanup_free_ char *n = NULL;

        if (kept.n >= FDSTORE_KEPT_MAX) {
                if (!kept.incomplete)
                        log_error("rpsupd keeps at most %u stored file descriptors: \"%s\" is not kept, and a "
                                  "reexec is refused from now on (a restart by systemd still takes it over).",
                                  FDSTORE_KEPT_MAX, name);
                kept.incomplete = true;
                return -E2BIG;
        }
        copy = fd_dup_cloexec(fd);
        n = strdup(name);
        if (copy < 0 || !n) {
                if (!kept.incomplete)
                        log_error_errno(copy < 0 ? copy : -ENOMEM, "Cannot keep a copy of the stored \"%s\": %m. "
                                        "A reexec is refused from now on.", name);
                kept.incomplete = true;
                return copy < 0 ? copy : -ENOMEM;
        }
        if (kept.n == kept.allocated) {
                size_t want = MAX(kept.allocated * 2, (size_t) 32);
                StoredFd *a = reallocarray(kept.fds, want, sizeof(StoredFd));
                if (!a) {
                        kept.incomplete = true;
                        return log_oom();
                }
                kept.fds = a;
                kept.allocated = want;
        }
        kept.fds[kept.n++] = (StoredFd) { .fd = TAKE_FD(copy), .name = TAKE_PTR(n) };
        return 0;
}

static void kept_remove(const char *name) {
        size_t j = 0;

        for (size_t i = 0; i < kept.n; i++) {
                if (streq(kept.fds[i].name, name)) {
                        safe_close(kept.fds[i].fd);
                        free(kept.fds[i].name);
                        continue;
                }
                kept.fds[j++] = kept.fds[i];
        }
        kept.n = j;
}

size_t fdstore_kept(const StoredFd **ret) {
        *ret = kept.fds;
        return kept.n;
}

bool fdstore_kept_complete(void) {
        return !kept.incomplete;
}

void fdstore_kept_done(void) {
        for (size_t i = 0; i < kept.n; i++) {
                safe_close(kept.fds[i].fd);
                free(kept.fds[i].name);
        }
        free(kept.fds);
        kept.fds = NULL;
        kept.n = kept.allocated = 0;
}

int fdstore_add(int fd, const char *name) {
        _cleanup_free_ char *msg = NULL;
        int r;

        (void) kept_add(fd, name); /* logged */
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

        kept_remove(name);
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
                /* What was passed is what the store holds (or a socket unit's, which a reexec passes on
                 * too); released by name when nothing claims it (fdstore_remove()). */
                if (l.fds[i].name)
                        (void) kept_add(fd, l.fds[i].name);
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
