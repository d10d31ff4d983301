/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Balance figures per worker: the new connections of the last minute (from the steering program's
 * per-listener counters, balance-ring.c) and the accept-queue high-water mark since the caller's own last
 * metrics scrape (kept for BALANCE_SCRAPERS_MAX uids). Samples cost nothing while the service is idle: no
 * timer runs then, only a one-shot EPOLLIN watch on the serving workers' listeners (an epoll instance of its
 * own, one fd), which the first new connection fires. While connections come, a sample is taken on each 5 s boundary (until one finds that
 * no counter moved during the period), every 100 ms while a queue is not empty (backing off to 1 s while
 * none grows, as a stopped worker's), at each wake-up by the watch (after which it rests for 1 s) and
 * whenever status or metrics are asked for. */

#include <systemd/sd-event.h>

#include "balance-ring.h"
#include "service.h"
#include "strategy.h"

typedef struct BalanceHost {
        sd_event *event;
        Service *service;
        Strategy *strategy;
} BalanceHost;

typedef struct Balance Balance;

#define BALANCE_NO_CALLER ((uid_t) -1) /* no caller known: the marks since each slot was first seen */

typedef struct BalanceSlot {
        int64_t last_minute;      /* new connections over the last minute; -1: not counted per worker */
        int64_t queue_high_water; /* the deepest accept queue sampled since the caller's last scrape (or since
                                   * the slot was first seen, for a caller that has not scraped); -1: unknown
                                   * (no queue of its own: handoff, datagrams) */
} BalanceSlot;

typedef struct BalanceSummary {
        const char *uncounted;    /* why new connections are not counted per worker; NULL: they are */
        BalanceFigures live;      /* over the live generation's serving workers (n = 0 when uncounted) */
} BalanceSummary;

int balance_new(const BalanceHost *host, Balance **ret);
Balance *balance_free(Balance *b);
/* The slots or the serving listeners may have changed (the manager calls it after each change). */
void balance_sync(Balance *b);
/* Takes a sample now (status and metrics ask for figures as of now). b may be NULL. */
void balance_sample(Balance *b);
/* The figures of one slot, with `caller`'s high-water mark (BALANCE_NO_CALLER: the one since the slot was
 * first seen). b NULL, or a slot not seen yet: all unknown. */
void balance_slot(const Balance *b, const Slot *slot, uid_t caller, BalanceSlot *ret);
void balance_summary(const Balance *b, BalanceSummary *ret);
/* `caller` scraped the metrics: its high-water marks (only its) start again from the queues as they are next
 * sampled. The marks of BALANCE_SCRAPERS_MAX uids are kept; another's scrape takes the row of the one that
 * scraped least recently. */
void balance_scraped(Balance *b, uid_t caller);
