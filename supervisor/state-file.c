/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fd-util.h"
#include "state-file.h"
#include "strategy.h"

#define STATE_VERSION 1
#define STATE_ENTRIES_MAX 100000u

int state_save(const char *path, Service *s, uint64_t (*start_time)(Worker *w)) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int r;

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
        for (Generation *g = s->generations; g; g = g->next) {
                fprintf(f, "generation %" PRIu64 " %s\n", g->id, generation_state_to_string(g->state));
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        Worker *w = slot->worker;

                        fprintf(f, "slot %" PRIu64 " %u %" PRIu64 " %d %u %u\n", g->id, slot->index, slot->id,
                                slot->retiring, slot->restarts, slot->failures);
                        if (w)
                                fprintf(f, "worker %" PRIu64 " %d %" PRIu64 " %s %" PRIu64 "\n", slot->id,
                                        (int) w->pid, start_time(w), worker_state_to_string(w->state),
                                        w->started_at);
                }
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

static int grow(void **array, size_t *n, size_t size) {
        void *p;

        if (*n >= STATE_ENTRIES_MAX)
                return -E2BIG;
        p = realloc(*array, size * (*n + 1));
        if (!p)
                return -ENOMEM;
        memset((char *) p + size * *n, 0, size);
        *array = p;
        (*n)++;
        return 0;
}

int state_load(const char *path, SavedState *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        SavedState st = { .strategy = _STRATEGY_INVALID };
        char line[512];
        int version = -1, r = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;

        while (fgets(line, sizeof(line), f)) {
                char word[32], state[32];
                uint64_t a, b, c;
                unsigned u1, u2, u3;
                int i1, pid;

                if (line[0] == '#' || line[0] == '\n')
                        continue;
                if (sscanf(line, "version %d", &version) == 1)
                        continue;
                if (sscanf(line, "strategy %31s", word) == 1) {
                        st.strategy = strategy_kind_from_string(word);
                        continue;
                }
                if (sscanf(line, "next-generation %" SCNu64, &st.next_generation) == 1 ||
                    sscanf(line, "next-slot %" SCNu64, &st.next_slot) == 1 ||
                    sscanf(line, "scaled %u %u", &st.scaled_workers, &st.scaled_base) == 2)
                        continue;
                if (sscanf(line, "generation %" SCNu64 " %31s", &a, state) == 2) {
                        GenerationState gs = generation_state_from_string(state);
                        if (gs < 0) {
                                r = -EBADMSG;
                                break;
                        }
                        r = grow((void **) &st.generations, &st.n_generations, sizeof(SavedGeneration));
                        if (r < 0)
                                break;
                        st.generations[st.n_generations - 1] = (SavedGeneration) { .id = a, .state = gs };
                        continue;
                }
                if (sscanf(line, "slot %" SCNu64 " %u %" SCNu64 " %d %u %u", &a, &u1, &b, &i1, &u2, &u3) == 6) {
                        r = grow((void **) &st.slots, &st.n_slots, sizeof(SavedSlot));
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
                        SavedSlot *slot = NULL;
                        for (size_t i = 0; i < st.n_slots; i++)
                                if (st.slots[i].id == a)
                                        slot = &st.slots[i];
                        if (!slot || ws < 0 || pid <= 0) {
                                r = -EBADMSG;
                                break;
                        }
                        slot->has_worker = true;
                        slot->worker = (SavedWorker) { .pid = pid, .start_time = b, .state = ws, .started_at = c };
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
        *st = (SavedState) {};
}
