/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The receiving end of the workers' sd_notify(): rpsupd's own NOTIFY_SOCKET. Messages are accepted only
 * from the pids of rpsupd's workers (checked with SO_PASSCRED credentials, which the kernel fills in). */

#include <sys/types.h>

#include <systemd/sd-event.h>

#include "macro.h"
#include "rpsup-limits.h"

#define NOTIFY_FDNAME_MAX 255u /* systemd's FDNAME_MAX */

typedef struct NotifyMessage {
        bool ready;
        bool stopping;
        bool watchdog;
        bool watchdog_trigger;
        /* STATUS=, made fit for display and D-Bus where it enters: valid UTF-8 (a byte that is not becomes
         * U+FFFD), control characters as spaces, at most STATUS_TEXT_MAX bytes, cut at a character
         * boundary. NULL: none; otherwise points to status_buf. */
        const char *status;
        unsigned status_changed;  /* Utf8SanitizeResult: what was replaced or cut */
        uint64_t extend_timeout;  /* EXTEND_TIMEOUT_USEC=, 0: none */
        int errno_value;          /* ERRNO=, 0: none */
        char status_buf[STATUS_TEXT_MAX + 1];
        /* The fd store (systemd's protocol): FDSTORE=1 keeps the fds sent with the message, FDSTOREREMOVE=1
         * drops those named FDNAME=, FDPOLL=0 keeps them even when they hang up. */
        bool fdstore;
        bool fdstore_remove;
        bool fdpoll_off;
        bool fdname_invalid;      /* FDNAME= was given, but is no valid name (then fdname is NULL) */
        const char *fdname;       /* a valid FDNAME= (points to fdname_buf), or NULL */
        char fdname_buf[NOTIFY_FDNAME_MAX + 1];
        /* Set by the server, not the parser: the fds that came with the message (SCM_RIGHTS). A handler that
         * keeps one sets its entry to -EBADF; the server closes the others when the handler returns. */
        int *fds;
        size_t n_fds;
} NotifyMessage;

/* FDNAME=: 1..NOTIFY_FDNAME_MAX printable ASCII characters but ':' (what systemd accepts). */
bool notify_fdname_is_valid(const char *s);

/* Parses a notification datagram of n bytes (newline-separated assignments; unknown ones are ignored).
 * buf must have room for n + 1 bytes; it is modified. */
int notify_parse(char *buf, size_t n, NotifyMessage *ret);

typedef void (*NotifyHandler)(pid_t pid, const NotifyMessage *m, void *userdata);

typedef struct NotifyServer NotifyServer;

/* Binds (or adopts `fd`, if >= 0) the datagram socket at path. */
int notify_server_new(sd_event *e, const char *path, int fd, NotifyHandler handler, void *userdata,
                      NotifyServer **ret);
NotifyServer *notify_server_free(NotifyServer *ns);
int notify_server_fd(NotifyServer *ns);
const char *notify_server_path(NotifyServer *ns);
