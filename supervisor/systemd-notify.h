/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Messages to systemd ($NOTIFY_SOCKET): READY=1, STATUS=, RELOADING=1, FDSTORE=1 with an fd, ...
 *
 * Unlike sd_notify(), sending never blocks rpsupd: a message the receiver has no room for waits in a
 * queue (in order) and is retried from the event loop. STATUS= lines replace a queued STATUS= line. */

#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

/* Retries happen on this loop; before it is set, a message that cannot be sent at once waits for it. */
void systemd_notify_attach(sd_event *e);
void systemd_notify_detach(void);
bool systemd_notify_available(void);
/* Sends `text` (with a copy of `fd` if fd >= 0). 0: sent or queued; 0 too without $NOTIFY_SOCKET. */
int systemd_notify(const char *text, int fd);
/* Waits (bounded) until queued messages are out: before exiting. */
void systemd_notify_flush(usec_t timeout);
