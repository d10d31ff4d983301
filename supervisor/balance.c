/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "balance.h"
#include "fd-util.h"
#include "log.h"
#include "rpsup-limits.h"

#define BALANCE_BUSY_USEC (100 * USEC_PER_MSEC) /* sampling while an accept queue is not empty and grows */
#define BALANCE_BUSY_MAX_USEC USEC_PER_SEC      /* ...doubling up to this while none grows (a stopped worker) */
#define BALANCE_REST_USEC (1 * USEC_PER_SEC)    /* the watch rests after it woke rpsupd */

/* High-water marks are kept per caller uid: a scrape returns and resets only its caller's, so one scraper
 * (or any local user: GetMetrics is for anyone) cannot take another's away. Mark 0 is since the slot was
 * first seen, for a uid that has not scraped (or whose row was given to another); mark 1 + i since the last
 * scrape of scrapers[i]. */
#define MARKS (1 + BALANCE_SCRAPERS_MAX)

typedef struct Scraper {
        uid_t uid;
        uint64_t last;      /* when it last scraped, as the count of scrapes: the least one goes first */
} Scraper;

typedef struct Entry {
        const Slot *slot;
        uint64_t slot_id;   /* a new id: the slot was given new listeners, whose counters start from 0 */
        BalanceRing ring;
        int64_t high_water[MARKS]; /* -1: none sampled */
        int64_t queue;      /* at the last sample; -1: unknown */
} Entry;

struct Balance {
        BalanceHost host;
        Scraper scrapers[BALANCE_SCRAPERS_MAX];
        size_t n_scrapers;
        uint64_t scrapes;
        Entry *entries;     /* one per slot of every generation, sorted by slot */
        size_t n;
        int epfd;           /* the watch: an epoll instance of its own over the serving workers' listeners */
        sd_event_source *watch;
        int *watched;       /* their fds, sorted */
        size_t n_watched;
        bool armed;
        sd_event_source *timer;
        usec_t boundary_at; /* the 5 s boundary a sample is due at; USEC_INFINITY: none (no counter moved) */
        usec_t rest_until;  /* the watch rests until then */
        bool moved;         /* a counter moved since the last boundary */
        bool busy;          /* an accept queue was not empty at the last sample */
        usec_t busy_period; /* the sampling period while busy */
};

static int entry_compare(const void *a, const void *b) {
        const Slot *x = ((const Entry *) a)->slot, *y = ((const Entry *) b)->slot;

        return x < y ? -1 : x > y;
}

static Entry *entry_find(const Balance *b, const Slot *slot) {
        return b && b->n > 0 ? bsearch(&(Entry) { .slot = slot }, b->entries, b->n, sizeof(Entry), entry_compare)
                             : NULL;
}

static int int_compare(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;

        return x < y ? -1 : x > y;
}

/* Whether the program counts new connections per listener: with per-worker listeners and the program, and
 * not under the kernel policy (the kernel chooses, the program counts nothing). */
static const char *uncounted(const Balance *b) {
        Strategy *st = b->host.strategy;

        if (st->kind == STRATEGY_HANDOFF)
                return "handoff: all workers accept from one queue, so new connections are not counted per worker";
        if (!st->ops->can_weigh || !st->ops->can_weigh(st))
                return "no steering program: the kernel spreads new connections, uncounted per worker";
        if (b->host.service->steering == STEERING_KERNEL)
                return "steering policy kernel: the kernel chooses, the program does not count per worker";
        return NULL;
}

/* ---- samples ---- */

static void schedule(Balance *b, usec_t now);
static bool entries_sync(Balance *b);
static void watch_sync(Balance *b, bool renew);

/* The entries follow the service's slots before any is read: a slot freed since the last sync is never
 * looked at (the manager syncs after each change; this covers the time in between). */
static void entries_follow(Balance *b) {
        if (entries_sync(b))
                watch_sync(b, true);
}

/* Every slot's counter and queue at t (t_ring: where the counters' gains go: a boundary that just passed,
 * or t). */
static void sample_at(Balance *b, usec_t t, usec_t t_ring, bool boundary) {
        Strategy *st = b->host.strategy;
        bool counted = !uncounted(b), moved = false, grew = false;

        b->busy = false;
        for (size_t i = 0; i < b->n; i++) {
                Entry *e = &b->entries[i];
                SlotStats stats = { .accept_queue = -1 };

                if (st->ops->slot_stats(st, (Slot *) e->slot, &stats) < 0)
                        continue;
                if (stats.accept_queue >= 0 && !stats.queue_shared) {
                        for (size_t k = 0; k < MARKS; k++)
                                e->high_water[k] = MAX(e->high_water[k], stats.accept_queue);
                        b->busy = b->busy || stats.accept_queue > 0;
                        grew = grew || stats.accept_queue > e->queue;
                        e->queue = stats.accept_queue;
                } else
                        e->queue = -1;
                if (counted && balance_ring_sample(&e->ring, stats.syns, t_ring) > 0)
                        moved = true;
        }
        b->moved = b->moved || moved;
        /* A queue that stays as it is (a stopped worker's) needs no sample every 100 ms. */
        b->busy_period = !b->busy || grew ? BALANCE_BUSY_USEC : MIN(2 * b->busy_period, BALANCE_BUSY_MAX_USEC);
        if (boundary) {
                /* Another boundary sample is due only if the period that just ended saw connections. */
                b->boundary_at = b->moved ? (t / BALANCE_PERIOD_USEC + 1) * BALANCE_PERIOD_USEC : USEC_INFINITY;
                b->moved = false;
        } else if (moved && b->boundary_at == USEC_INFINITY)
                b->boundary_at = (t / BALANCE_PERIOD_USEC + 1) * BALANCE_PERIOD_USEC;
}

/* A sample now: on the boundary that is due, if it is (its gains go to the period that ended there). */
static void sample_now(Balance *b, usec_t now) {
        bool boundary = b->boundary_at != USEC_INFINITY && now >= b->boundary_at;
        usec_t t_ring = boundary && now - b->boundary_at < BALANCE_PERIOD_USEC ? b->boundary_at : now;

        sample_at(b, now, t_ring, boundary);
}

/* ---- the watch ---- */

static void watch_set(Balance *b, bool on) {
        if (b->epfd < 0 || on == b->armed)
                return;
        if (on)
                for (size_t i = 0; i < b->n_watched; i++)
                        /* Each fires once; armed again here, after a rest. */
                        (void) epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->watched[i],
                                         &(struct epoll_event) { .events = EPOLLIN | EPOLLONESHOT });
        (void) sd_event_source_set_enabled(b->watch, on ? SD_EVENT_ON : SD_EVENT_OFF);
        b->armed = on;
}

static int on_watch(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Balance *b = userdata;
        struct epoll_event events[64];
        usec_t now = now_usec(CLOCK_MONOTONIC);

        /* Take what is ready (each one-shot watch is then spent), rest, and sample. */
        while (epoll_wait(b->epfd, events, ELEMENTSOF(events), 0) == (int) ELEMENTSOF(events))
                ;
        watch_set(b, false);
        b->rest_until = now + BALANCE_REST_USEC;
        entries_follow(b);
        sample_now(b, now);
        schedule(b, now);
        return 0;
}

/* The listeners that new connections reach: those of the serving (and, in a canary, warm) workers. Sorted,
 * each once (a socket unit's listener is every slot's). */
static int served_fds(Balance *b, int **ret, size_t *ret_n) {
        Service *s = b->host.service;
        Strategy *st = b->host.strategy;
        _cleanup_free_ int *fds = NULL;
        size_t n = 0, size = 0;

        *ret = NULL;
        *ret_n = 0;
        if (st->kind == STRATEGY_HANDOFF || s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED)
                return 0;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++)
                        size += slot_is_serving(g->slots[i]) || slot_is_warm(g->slots[i]) ? FD_LIST_MAX : 0;
        if (size == 0)
                return 0;
        fds = calloc(size, sizeof(int));
        if (!fds)
                return -ENOMEM;
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        FdList l = {};
                        if ((!slot_is_serving(g->slots[i]) && !slot_is_warm(g->slots[i])) ||
                            st->ops->slot_fds(st, g->slots[i], &l) < 0)
                                continue;
                        for (size_t j = 0; j < l.n && n < size; j++)
                                fds[n++] = l.fds[j];
                }
        qsort(fds, n, sizeof(int), int_compare);
        size = n;
        n = 0;
        for (size_t i = 0; i < size; i++)
                if (n == 0 || fds[n - 1] != fds[i])
                        fds[n++] = fds[i];
        *ret = TAKE_PTR(fds);
        *ret_n = n;
        return 0;
}

static void watch_drop(Balance *b) {
        b->watch = sd_event_source_disable_unref(b->watch);
        b->epfd = safe_close(b->epfd);
        b->watched = mfree(b->watched);
        b->n_watched = 0;
        b->armed = false;
}

/* A new epoll instance over the listeners: closing the old one drops every registration at once, those of
 * listeners closed since included. */
static void watch_rebuild(Balance *b, int *fds, size_t n) {
        int r;

        watch_drop(b);
        if (n == 0) {
                free(fds);
                return;
        }
        b->watched = fds;
        b->n_watched = n;
        b->epfd = epoll_create1(EPOLL_CLOEXEC);
        r = b->epfd < 0 ? -errno : sd_event_add_io(b->host.event, &b->watch, b->epfd, EPOLLIN, on_watch, b);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fds[i], &(struct epoll_event) { .events = 0 }) < 0)
                        r = -errno;
        if (r < 0) {
                log_ratelimit(LOG_WARNING, "Cannot watch the workers' listeners for new connections (%s): the "
                              "balance figures are sampled only when asked for, and the per-minute counts may "
                              "include older connections.", strerror(-r));
                watch_drop(b);
                return;
        }
        (void) sd_event_source_set_enabled(b->watch, SD_EVENT_OFF);
}

/* `renew`: the slots changed, so a listener's fd number may now be another listener's: a new instance. */
static void watch_sync(Balance *b, bool renew) {
        _cleanup_free_ int *fds = NULL;
        size_t n;

        if (served_fds(b, &fds, &n) < 0) {
                log_ratelimit(LOG_WARNING, "Out of memory: the balance figures do not watch for new connections "
                              "for now.");
                return;
        }
        if (!renew && n == b->n_watched && (n == 0 || memcmp(fds, b->watched, n * sizeof(int)) == 0))
                return;
        watch_rebuild(b, TAKE_PTR(fds), n);
}

/* ---- the timer ---- */

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Balance *b = userdata;
        usec_t now = now_usec(CLOCK_MONOTONIC);

        entries_follow(b);
        sample_now(b, now);
        schedule(b, now);
        return 0;
}

/* The next sample: on the next boundary while counters move, every 100 ms while a queue is not empty or the
 * watch rests. The watch is armed otherwise: when nothing is due, only a new connection wakes rpsupd. */
static void schedule(Balance *b, usec_t now) {
        usec_t next = b->boundary_at;
        bool resting = now < b->rest_until;

        if (b->busy || resting)
                next = MIN(next, now + (resting && !b->busy ? b->rest_until - now : b->busy_period));
        watch_set(b, !b->busy && !resting);
        if (!b->timer)
                return;
        if (next == USEC_INFINITY)
                (void) sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(b->timer, next);
                (void) sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT);
        }
}

/* ---- the slots ---- */

static bool entries_match(Balance *b) {
        size_t n = 0;

        FOREACH_GENERATION(g, b->host.service)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Entry *e = entry_find(b, g->slots[i]);
                        if (!e || e->slot_id != g->slots[i]->id)
                                return false;
                        n++;
                }
        return n == b->n;
}

/* A slot seen for the first time: a new slot's listeners count from 0 (a slot takes no new connection before
 * its worker is ready, and the manager syncs before that); a slot that serves, drains or was taken over
 * after an rpsupd restart may have counted already, at times not known: counted from now. */
static void entry_init(Balance *b, Entry *e, Slot *slot, usec_t now) {
        Strategy *st = b->host.strategy;
        SlotStats stats = { .accept_queue = -1 };
        bool counted_before = slot_is_serving(slot) || slot_is_warm(slot) || slot->retiring ||
                              (slot->worker && slot->worker->adopted);

        *e = (Entry) { .slot = slot, .slot_id = slot->id, .queue = -1 };
        for (size_t k = 0; k < MARKS; k++)
                e->high_water[k] = -1;
        if (counted_before && st->ops->slot_stats(st, slot, &stats) >= 0)
                balance_ring_start(&e->ring, stats.syns, now);
        else
                balance_ring_start(&e->ring, 0, now);
}

/* Returns whether the slots changed. */
static bool entries_sync(Balance *b) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        Entry *entries;
        size_t n = 0;

        if (entries_match(b))
                return false;
        FOREACH_GENERATION(g, b->host.service)
                n += g->n_slots;
        entries = calloc(MAX(n, 1u), sizeof(Entry));
        if (!entries) {
                log_ratelimit(LOG_WARNING, "Out of memory: the balance figures do not follow the workers for now.");
                return false;
        }
        n = 0;
        FOREACH_GENERATION(g, b->host.service)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Entry *old = entry_find(b, slot);

                        if (old) {
                                entries[n] = *old;
                                if (old->slot_id != slot->id) {
                                        /* New listeners (a hung worker's were evacuated): their counters
                                         * start from 0. */
                                        entries[n].slot_id = slot->id;
                                        balance_ring_restart(&entries[n].ring);
                                }
                        } else
                                entry_init(b, &entries[n], slot, now);
                        n++;
                }
        qsort(entries, n, sizeof(Entry), entry_compare);
        free(b->entries);
        b->entries = entries;
        b->n = n;
        return true;
}

void balance_sync(Balance *b) {
        if (!b)
                return;
        watch_sync(b, entries_sync(b));
        schedule(b, now_usec(CLOCK_MONOTONIC));
}

void balance_sample(Balance *b) {
        usec_t now;

        if (!b)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        entries_follow(b);
        sample_now(b, now);
        schedule(b, now);
}

static Scraper *scraper_find(const Balance *b, uid_t uid) {
        for (size_t i = 0; b && uid != BALANCE_NO_CALLER && i < b->n_scrapers; i++)
                if (b->scrapers[i].uid == uid)
                        return (Scraper *) &b->scrapers[i];
        return NULL;
}

/* The mark of `caller`: since its last scrape, or since the slot was first seen if it has none. */
static size_t mark_of(const Balance *b, uid_t caller) {
        const Scraper *sc = scraper_find(b, caller);

        return sc ? 1 + (size_t) (sc - b->scrapers) : 0;
}

void balance_slot(const Balance *b, const Slot *slot, uid_t caller, BalanceSlot *ret) {
        const Entry *e = entry_find(b, slot);

        *ret = (BalanceSlot) { .last_minute = -1, .queue_high_water = -1 };
        if (!e)
                return;
        ret->queue_high_water = e->high_water[mark_of(b, caller)];
        if (!uncounted(b))
                /* As of the last sample (status and metrics take one first). */
                ret->last_minute = (int64_t) balance_ring_last_minute(&e->ring, e->ring.last,
                                                                      now_usec(CLOCK_MONOTONIC));
}

void balance_summary(const Balance *b, BalanceSummary *ret) {
        Generation *g = b ? b->host.service->live : NULL;
        _cleanup_free_ uint64_t *counts = NULL;
        size_t n = 0;

        *ret = (BalanceSummary) { .uncounted = b ? uncounted(b) : "not sampled" };
        if (!g || ret->uncounted)
                return;
        counts = calloc(MAX(g->n_slots, 1u), sizeof(uint64_t));
        if (!counts)
                return;
        for (size_t i = 0; i < g->n_slots; i++) {
                BalanceSlot x;

                if (!slot_is_serving(g->slots[i]))
                        continue;
                balance_slot(b, g->slots[i], BALANCE_NO_CALLER, &x);
                if (x.last_minute >= 0)
                        counts[n++] = (uint64_t) x.last_minute;
        }
        balance_figures(counts, n, &ret->live);
}

void balance_scraped(Balance *b, uid_t caller) {
        Scraper *sc;
        size_t k;

        if (!b || caller == BALANCE_NO_CALLER)
                return;
        sc = scraper_find(b, caller);
        if (!sc && b->n_scrapers < BALANCE_SCRAPERS_MAX)
                sc = &b->scrapers[b->n_scrapers++];
        else if (!sc) {
                /* Full: the row of the uid that scraped least recently; its next scrape has the marks since
                 * the slots were first seen. */
                sc = &b->scrapers[0];
                for (size_t i = 1; i < b->n_scrapers; i++)
                        if (b->scrapers[i].last < sc->last)
                                sc = &b->scrapers[i];
                log_debug("Accept-queue high-water marks are kept for %u scraping uids: uid %u's are dropped for "
                          "uid %u's.", BALANCE_SCRAPERS_MAX, (unsigned) sc->uid, (unsigned) caller);
        }
        *sc = (Scraper) { .uid = caller, .last = ++b->scrapes };
        k = 1 + (size_t) (sc - b->scrapers);
        for (size_t i = 0; i < b->n; i++)
                b->entries[i].high_water[k] = -1;
}

int balance_new(const BalanceHost *host, Balance **ret) {
        _cleanup_free_ Balance *b = calloc(1, sizeof(Balance));
        int r;

        if (!b)
                return -ENOMEM;
        *b = (Balance) { .host = *host, .epfd = -EBADF, .boundary_at = USEC_INFINITY,
                         .busy_period = BALANCE_BUSY_USEC };
        r = sd_event_add_time(host->event, &b->timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC, on_timer, b);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
        *ret = TAKE_PTR(b);
        return 0;
}

Balance *balance_free(Balance *b) {
        if (!b)
                return NULL;
        watch_drop(b);
        sd_event_source_disable_unref(b->timer);
        free(b->entries);
        free(b);
        return NULL;
}
