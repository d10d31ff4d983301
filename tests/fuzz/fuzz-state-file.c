/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The state file a restarted rpsupd reads to take over its predecessor's workers. Input: the file.
 * state_load() reads a path: the input goes to a memfd, read through /proc/self/fd/N, the way a real file
 * would be. What it accepts must be something takeover can use: within the bounds of rpsup-limits.h, every
 * slot in a generation of the file, workers with a pid, known states. */

#include <fcntl.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "rpsup-limits.h"
#include "takeover-state.h"

static int state_fd = -EBADF;
static char state_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        state_fd = memfd_create("rpsup-state", MFD_CLOEXEC);
        if (state_fd < 0) {
                perror("memfd_create");
                abort();
        }
        snprintf(state_path, sizeof(state_path), "/proc/self/fd/%d", state_fd);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SavedState st;
        int r;

        if (size > FUZZ_INPUT_MAX)
                return -1;
        if (ftruncate(state_fd, 0) < 0 || pwrite(state_fd, data, size, 0) != (ssize_t) size) {
                perror("writing the memfd");
                abort();
        }

        r = state_load(state_path, &st);
        if (r < 0) {
                fuzz_check(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -E2BIG || r == -ENOMEM,
                           "unexpected error %d", r);
                return 0;
        }
        fuzz_check(st.strategy == _STRATEGY_INVALID || (st.strategy >= 0 && st.strategy < _STRATEGY_MAX),
                   "strategy %d", st.strategy);
        fuzz_check(st.n_generations <= GENERATIONS_MAX && st.n_slots <= STATE_SLOTS_MAX, "%zu generations, %zu slots",
                   st.n_generations, st.n_slots);
        fuzz_check(st.scaled_workers <= WORKERS_MAX && st.scaled_base <= WORKERS_MAX, "scaled %u %u",
                   st.scaled_workers, st.scaled_base);
        for (size_t i = 0; i < st.n_generations; i++)
                fuzz_check(st.generations[i].state >= 0 && st.generations[i].state < _GENERATION_STATE_MAX,
                           "generation %" PRIu64 " in state %d", st.generations[i].id, st.generations[i].state);
        for (size_t i = 0; i < st.n_slots; i++) {
                const SavedSlot *slot = &st.slots[i];
                bool known = false;

                /* Takeover adopts slots generation by generation: a slot of no generation is nobody's. */
                for (size_t j = 0; j < st.n_generations; j++)
                        known = known || st.generations[j].id == slot->generation;
                fuzz_check(known, "slot %" PRIu64 " of generation %" PRIu64 ", which is not in the file", slot->id,
                           slot->generation);
                fuzz_check(slot->index < WORKERS_MAX, "slot %" PRIu64 " has index %u", slot->id, slot->index);
                if (!slot->has_worker)
                        continue;
                fuzz_check(slot->worker.pid > 0, "slot %" PRIu64 ": worker pid %d", slot->id, (int) slot->worker.pid);
                fuzz_check(slot->worker.state >= 0 && slot->worker.state < _WORKER_STATE_MAX,
                           "slot %" PRIu64 ": worker state %d", slot->id, slot->worker.state);
        }
        saved_state_done(&st);
        return 0;
}
