/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Stall detection costs nothing while the service is idle: instead of sampling accept queues on a timer,
 * rpsupd waits (one-shot EPOLLIN on its copies of the serving workers' listeners) until one is not empty,
 * and only then samples, until they are all empty again. */

#include <systemd/sd-event.h>

typedef struct Manager Manager;
typedef struct QueueWatch QueueWatch;

int queue_watch_new(Manager *m, QueueWatch **ret);
QueueWatch *queue_watch_free(QueueWatch *qw);
/* Follows the serving workers' listeners (call when they may have changed). */
void queue_watch_sync(QueueWatch *qw);
/* Arms the watches again (sampling found every queue empty). */
void queue_watch_arm(QueueWatch *qw);
