/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Stall detection costs nothing while the service is idle: instead of sampling accept queues on a timer,
 * rpsupd waits (one-shot EPOLLIN on its copies of the serving workers' listeners) until one is not empty,
 * and only then samples, until they are all empty again. */

#include <systemd/sd-event.h>

#include "service.h"
#include "strategy.h"

/* What watching the queues needs from rpsupd (the manager fills it in). */
typedef struct StallWatchHost {
        sd_event *event;
        Service *service;   /* told when a queue is not empty (service_queues_busy()) */
        Strategy *strategy; /* the serving workers' listeners */
        /* service_queues_busy() was called: the service has a new deadline (optional). */
        void (*busy)(void *userdata);
        void *userdata;
} StallWatchHost;

typedef struct QueueWatch QueueWatch;

int queue_watch_new(const StallWatchHost *host, QueueWatch **ret);
QueueWatch *queue_watch_free(QueueWatch *qw);
/* Follows the serving workers' listeners (call when they may have changed). */
void queue_watch_sync(QueueWatch *qw);
/* Arms the watches again (sampling found every queue empty). */
void queue_watch_arm(QueueWatch *qw);
