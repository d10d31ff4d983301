/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The state file: one record a line, "KEY VALUE...", in the order state_load() describes. Every rpsupd skips
 * a line that starts with '#', so a record an older rpsupd can do without (it then merely loses what the
 * record keeps, never the workers) is written as an optional one, "#+KEY VALUE...": an older rpsupd skips it
 * as a comment; this one reads the keys it knows (refusing a malformed one like any other record) and skips
 * "#+" keys it does not know, which a newer rpsupd may write. Optional records: "#+shadow" (the shadow
 * policy, since when, who set it) and "#+shadow-base" (a slot's counts when the shadow's window began, after
 * that slot's records), "#+drain" (a retiring slot's drain deadline, after its worker's record: a reexec keeps
 * it; a restart stops retiring workers, as an older rpsupd does), "#+fdstore-handed" (a slot index's workers'
 * fd store: the number below which its stored fds went to the worker of that index started last). A record an older rpsupd must not ignore is a plain line (which it refuses) or a new
 * STATE_VERSION. Every line, optional ones too, stays within STATE_LINE_MAX: a longer one is refused before
 * it is read, by this rpsupd and older ones. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd-util.h"
#include "rpsup-limits.h"
#include "string-util.h"
#include "user-util.h"
#include "takeover-state.h"
#include "strategy.h"
#include "worker-fdstore.h"

#define STATE_VERSION 1

int state_save(const char *path, Service *s, uint64_t (*start_time)(Worker *w)) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n_generations = 0, n_slots = 0;
        int r;

        /* Never more than state_load() takes: a state that names only some workers would leave the others
         * to nobody after a restart. */
        FOREACH_GENERATION(g, s) {
                n_generations++;
                n_slots += g->n_slots;
        }
        if (n_generations > GENERATIONS_MAX || n_slots > STATE_SLOTS_MAX)
                return -E2BIG;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;

        fprintf(f, "# What a restarted rpsupd takes over. Written by rpsupd; do not edit.\n");
        fprintf(f, "version %d\n", STATE_VERSION);
        fprintf(f, "strategy %s\n", strategy_kind_to_string(s->strategy->kind));
        fprintf(f, "next-generation %" PRIu64 "\n", s->next_generation_id);
        fprintf(f, "next-slot %" PRIu64 "\n", s->next_slot_id);
        fprintf(f, "scaled %u %u\n", s->scaled_workers, s->scaled_base);
        if (s->steering_set) {
                char by[32] = "config";

                if (s->steering_by != STEERING_BY_CONFIG)
                        snprintf(by, sizeof(by), "%u", (unsigned) s->steering_by);
                fprintf(f, "steering %s %s %" PRIu64 " %s %" PRIu64 "\n", steering_policy_to_string(s->steering),
                        steering_policy_to_string(s->steering_config), s->steering_since, by, s->steering_changes);
        }
        if (s->shadow_runs)
                fprintf(f, "#+shadow %s %" PRIu64 " %u\n", steering_policy_to_string(s->shadow), s->shadow_since,
                        (unsigned) s->shadow_by);
        for (unsigned i = 0; s->strategy->fdstore && i < WORKERS_MAX; i++) {
                uint64_t upto = worker_fdstore_handed_upto(s->strategy->fdstore, i);
                if (upto > 0)
                        fprintf(f, "#+fdstore-handed %u %" PRIu64 "\n", i, upto);
        }
        FOREACH_GENERATION(g, s) {
                fprintf(f, "generation %" PRIu64 " %s\n", g->id, generation_state_to_string(g->state));
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;

                        fprintf(f, "slot %" PRIu64 " %u %" PRIu64 " %d %u %u\n", g->id, slot->index, slot->id,
                                slot->retiring, slot->restarts, slot->consecutive_failures);
                        if (w)
                                fprintf(f, "worker %" PRIu64 " %d %" PRIu64 " %s %" PRIu64 "\n", slot->id,
                                        (int) w->pid, start_time(w), worker_state_to_string(w->state),
                                        w->started_at);
                        if (w && w->state == WORKER_STARTING && w->claimed_ready)
                                fprintf(f, "claimed-ready %" PRIu64 "\n", slot->id);
                        /* Its drain window: only a reexec (same boot, same clock) carries it on. */
                        if (w && slot->retiring && w->state == WORKER_DRAINING && slot->drain_deadline != USEC_INFINITY)
                                fprintf(f, "#+drain %" PRIu64 " %" PRIu64 "\n", slot->id, slot->drain_deadline);
                        if (s->shadow_runs && slot->shadow_base_id == slot->id)
                                fprintf(f, "#+shadow-base %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", slot->id,
                                        slot->shadow_base_syns, slot->shadow_base_projected);
                }
        }
        {
                Worker *w;
                LIST_FOREACH(w, &s->departing, departing_link)
                        fprintf(f, "departing %d %" PRIu64 "\n", (int) w->pid, start_time(w));
        }
        r = fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static int grow(void **array, size_t *n, size_t size, size_t max) {
        void *p;

        if (*n >= max)
                return -E2BIG;
        p = realloc(*array, size * (*n + 1));
        if (!p)
                return -ENOMEM;
        memset((char *) p + size * *n, 0, size);
        *array = p;
        (*n)++;
        return 0;
}

/* An optional record, "#+" taken off: a known key must be well-formed and in its place; an unknown one (a
 * newer rpsupd's) is skipped. */
static int optional_record(const char *rec, SavedState *st, SavedSlot *last_s) {
        size_t n = strcspn(rec, " \n");
        char word[32], by[32];
        uint64_t a, b, c;

        if (n == 0)
                return -EBADMSG; /* "#+" names a key */
        if (n == strlen("shadow") && strncmp(rec, "shadow", n) == 0) {
                if (sscanf(rec, "shadow %31s %" SCNu64 " %31s", word, &a, by) != 3)
                        return -EBADMSG;
                st->shadow = steering_policy_from_string(word);
                st->shadow_since = a;
                if (st->shadow < 0 || st->shadow == STEERING_KERNEL || parse_uid(by, &st->shadow_by) < 0)
                        return -EBADMSG;
                st->has_shadow = true;
                return 0;
        }
        if (n == strlen("shadow-base") && strncmp(rec, "shadow-base", n) == 0) {
                if (sscanf(rec, "shadow-base %" SCNu64 " %" SCNu64 " %" SCNu64, &a, &b, &c) != 3 ||
                    !last_s || last_s->id != a || last_s->has_shadow_base)
                        return -EBADMSG;
                last_s->has_shadow_base = true;
                last_s->shadow_base_syns = b;
                last_s->shadow_base_projected = c;
                return 0;
        }
        if (n == strlen("fdstore-handed") && strncmp(rec, "fdstore-handed", n) == 0) {
                unsigned index;

                if (sscanf(rec, "fdstore-handed %u %" SCNu64, &index, &a) != 2 || index >= WORKERS_MAX)
                        return -EBADMSG;
                st->fdstore_handed[index] = a;
                return 0;
        }
        if (n == strlen("drain") && strncmp(rec, "drain", n) == 0) {
                if (sscanf(rec, "drain %" SCNu64 " %" SCNu64, &a, &b) != 2 || !last_s || last_s->id != a ||
                    !last_s->has_worker || last_s->has_drain || b == USEC_INFINITY)
                        return -EBADMSG;
                last_s->has_drain = true;
                last_s->drain_deadline = b;
                return 0;
        }
        return 0;
}

/* The file is rpsupd's own, written in one order: a generation (oldest first), then its slots, each followed
 * by its worker. Anything else is refused, so that every worker named is one that takeover reaches. */
int state_load(const char *path, SavedState *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        SavedState st = { .strategy = _STRATEGY_INVALID };
        char line[STATE_LINE_MAX];
        int version = -1, r = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;

        while (fgets(line, sizeof(line), f)) {
                SavedGeneration *last_g = st.n_generations > 0 ? &st.generations[st.n_generations - 1] : NULL;
                SavedSlot *last_s = st.n_slots > 0 ? &st.slots[st.n_slots - 1] : NULL;
                char word[32], state[32], by[32];
                uint64_t a, b, c;
                unsigned u1, u2, u3;
                int i1, pid;

                if (!strchr(line, '\n') && !feof(f)) {
                        r = -EBADMSG; /* longer than any line rpsupd writes */
                        break;
                }
                if (strncmp(line, "#+", 2) == 0) {
                        r = optional_record(line + 2, &st, last_s);
                        if (r < 0)
                                break;
                        continue;
                }
                if (line[0] == '#' || line[0] == '\n')
                        continue;
                if (sscanf(line, "version %d", &version) == 1)
                        continue;
                if (sscanf(line, "strategy %31s", word) == 1) {
                        st.strategy = strategy_kind_from_string(word);
                        continue;
                }
                if (sscanf(line, "next-generation %" SCNu64, &st.next_generation) == 1 ||
                    sscanf(line, "next-slot %" SCNu64, &st.next_slot) == 1)
                        continue;
                if (sscanf(line, "scaled %u %u", &st.scaled_workers, &st.scaled_base) == 2) {
                        if (st.scaled_workers > WORKERS_MAX || st.scaled_base > WORKERS_MAX) {
                                r = -EBADMSG;
                                break;
                        }
                        continue;
                }
                if (sscanf(line, "steering %31s %31s %" SCNu64 " %31s %" SCNu64, word, state, &a, by, &b) == 5) {
                        st.steering = steering_policy_from_string(word);
                        st.steering_config = steering_policy_from_string(state);
                        st.steering_since = a;
                        st.steering_changes = b;
                        st.steering_by = STEERING_BY_CONFIG;
                        if (st.steering < 0 || st.steering_config < 0 ||
                            (!streq(by, "config") && (parse_uid(by, &st.steering_by) < 0 ||
                                                      st.steering_by == STEERING_BY_CONFIG))) {
                                r = -EBADMSG;
                                break;
                        }
                        st.has_steering = true;
                        continue;
                }
                if (sscanf(line, "generation %" SCNu64 " %31s", &a, state) == 2) {
                        GenerationState gs = generation_state_from_string(state);
                        if (gs < 0 || (last_g && a <= last_g->id)) {
                                r = -EBADMSG;
                                break;
                        }
                        r = grow((void **) &st.generations, &st.n_generations, sizeof(SavedGeneration),
                                 GENERATIONS_MAX);
                        if (r < 0)
                                break;
                        st.generations[st.n_generations - 1] = (SavedGeneration) { .id = a, .state = gs };
                        continue;
                }
                if (sscanf(line, "slot %" SCNu64 " %u %" SCNu64 " %d %u %u", &a, &u1, &b, &i1, &u2, &u3) == 6) {
                        if (!last_g || a != last_g->id || u1 >= WORKERS_MAX) {
                                r = -EBADMSG;
                                break;
                        }
                        r = grow((void **) &st.slots, &st.n_slots, sizeof(SavedSlot), STATE_SLOTS_MAX);
                        if (r < 0)
                                break;
                        st.slots[st.n_slots - 1] = (SavedSlot) {
                                .generation = a, .index = u1, .id = b, .retiring = i1 != 0,
                                .restarts = u2, .failures = u3,
                        };
                        continue;
                }
                if (sscanf(line, "worker %" SCNu64 " %d %" SCNu64 " %31s %" SCNu64, &a, &pid, &b, state, &c) == 5) {
                        WorkerState ws = worker_state_from_string(state);
                        if (!last_s || last_s->id != a || last_s->has_worker || ws < 0 || pid <= 0) {
                                r = -EBADMSG;
                                break;
                        }
                        last_s->has_worker = true;
                        last_s->worker = (SavedWorker) { .pid = pid, .start_time = b, .state = ws, .started_at = c };
                        continue;
                }
                if (sscanf(line, "departing %d %" SCNu64, &pid, &b) == 2) {
                        if (pid <= 0) {
                                r = -EBADMSG;
                                break;
                        }
                        r = grow((void **) &st.departing, &st.n_departing, sizeof(SavedWorker), STATE_SLOTS_MAX);
                        if (r < 0)
                                break;
                        st.departing[st.n_departing - 1] = (SavedWorker) { .pid = pid, .start_time = b };
                        continue;
                }
                if (sscanf(line, "claimed-ready %" SCNu64, &a) == 1) {
                        if (!last_s || last_s->id != a || !last_s->has_worker || last_s->worker.state != WORKER_STARTING) {
                                r = -EBADMSG;
                                break;
                        }
                        last_s->worker.claimed_ready = true;
                        continue;
                }
                r = -EBADMSG;
                break;
        }
        if (r >= 0 && version != STATE_VERSION)
                r = -EPROTONOSUPPORT;
        if (r < 0) {
                saved_state_done(&st);
                return r;
        }
        *ret = st;
        return 0;
}

void saved_state_done(SavedState *st) {
        free(st->generations);
        free(st->slots);
        free(st->departing);
        *st = (SavedState) {};
}
