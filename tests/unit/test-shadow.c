/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shadow steering policies (rpsupctl steer --shadow) in the service, on a fake strategy: what is refused, the
 * window of counts status compares (it starts with the shadow, again when it is set again and when the policy
 * changes; slots given fresh listeners and counters that were reset count from 0), and the state file lines
 * that carry it across an rpsupd restart. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service-fake.h"
#include "takeover.h"
#include "takeover-state.h"
#include "worker-fdstore.h"

static void counts(Slot *slot, uint64_t *actual, uint64_t *projected) {
        slot_shadow_counts(slot, &fake.stats[slot->index], actual, projected);
}

static void test_shadow_refusals(void **state) {
        Service *s = start_running(2);
        char *error = NULL;

        /* The kernel's choice cannot be computed by the program: refused, saying why. */
        assert_int_equal(service_steer_shadow(s, STEERING_KERNEL, 0, &error), -EINVAL);
        assert_non_null(strstr(error, "cannot be shadowed"));
        assert_false(s->shadow_runs);
        free(error);
        assert_int_equal(service_steer_shadow(s, _STEERING_POLICY_MAX, 0, &error), -EINVAL);
        free(error);
        /* Off when none runs: nothing to do. */
        assert_int_equal(service_steer_shadow(s, _STEERING_POLICY_INVALID, 0, &error), 0);
        assert_null(error);

        /* No steering program with handoff. */
        fake_strategy.kind = STRATEGY_HANDOFF;
        assert_int_equal(service_steer_shadow(s, STEERING_HASH, 0, &error), -EINVAL);
        assert_non_null(strstr(error, "handoff"));
        free(error);
        fake_strategy.kind = STRATEGY_DRAIN;
        teardown(s);
}

static void test_shadow_window(void **state) {
        Service *s = start_running(2);
        Slot *a = s->live->slots[0], *b = s->live->slots[1];
        unsigned steers = fake.steers;
        uint64_t actual, projected;
        char *error = NULL;
        usec_t began;

        fake.stats_known = true;
        fake.stats[0] = (SlotStats) { .syns = 100, .projected = 50 };
        fake.stats[1] = (SlotStats) { .syns = 200, .projected = 80 };
        advance(s, USEC_PER_SEC);
        assert_int_equal(service_steer_shadow(s, STEERING_HASH, 1000, &error), 0);
        assert_null(error);
        assert_true(s->shadow_runs);
        assert_int_equal(s->shadow, STEERING_HASH);
        assert_int_equal(s->shadow_by, 1000);
        assert_int_equal(s->shadow_since, fake.now);
        assert_int_equal(fake.steers, steers + 1); /* one steering update */
        counts(a, &actual, &projected);
        assert_int_equal(actual, 0);
        assert_int_equal(projected, 0);

        fake.stats[0].syns += 10;
        fake.stats[0].projected += 20;
        fake.stats[1].syns += 10;
        counts(a, &actual, &projected);
        assert_int_equal(actual, 10);
        assert_int_equal(projected, 20);
        counts(b, &actual, &projected);
        assert_int_equal(actual, 10);
        assert_int_equal(projected, 0);

        /* Set again: a fresh window. */
        began = s->shadow_since;
        advance(s, USEC_PER_SEC);
        assert_int_equal(service_steer_shadow(s, STEERING_ROUND_ROBIN, 0, &error), 0);
        assert_true(s->shadow_since > began);
        counts(a, &actual, &projected);
        assert_int_equal(actual + projected, 0);

        /* The policy changes: the window restarts, so that actual counts one policy. */
        fake.stats[1].syns += 5;
        began = s->shadow_since;
        advance(s, USEC_PER_SEC);
        assert_int_equal(service_steer(s, STEERING_HASH, 0, &error), 0);
        assert_true(s->shadow_since > began);
        counts(b, &actual, &projected);
        assert_int_equal(actual, 0);
        /* The same policy again is no change: the window stays. */
        fake.stats[1].syns += 5;
        began = s->shadow_since;
        assert_int_equal(service_steer(s, STEERING_HASH, 0, &error), 0);
        assert_int_equal(s->shadow_since, began);
        counts(b, &actual, &projected);
        assert_int_equal(actual, 5);

        /* Counters that were reset (a program loaded afresh) count from 0; so does a slot that got fresh
         * listeners (a new id). */
        fake.stats[1] = (SlotStats) { .syns = 3, .projected = 4 };
        counts(b, &actual, &projected);
        assert_int_equal(actual, 3);
        assert_int_equal(projected, 4);
        fake.stats[0].syns += 7;
        a->id = s->next_slot_id++;
        counts(a, &actual, &projected);
        assert_int_equal(actual, fake.stats[0].syns);

        /* Off: one steering update, and nothing is counted. */
        steers = fake.steers;
        assert_int_equal(service_steer_shadow(s, _STEERING_POLICY_INVALID, 0, &error), 0);
        assert_false(s->shadow_runs);
        assert_int_equal(fake.steers, steers + 1);
        fake.stats_known = false;
        teardown(s);
}

static uint64_t start_time(Worker *w) {
        return 42;
}

/* Appends `text` to a freshly saved state file; state_load() returns `expected`. */
static void append_load(Service *s, const char *path, const char *text, int expected) {
        SavedState st;
        FILE *f;

        assert_int_equal(state_save(path, s, start_time), 0);
        f = fopen(path, "ae");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(state_load(path, &st), expected);
        if (expected >= 0)
                saved_state_done(&st);
}

static void test_shadow_state_file(void **state) {
        char path[] = "/tmp/rpsup-test-shadow-XXXXXX";
        Service *s = start_running(2);
        SavedState st;
        char *error = NULL;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        fake.stats_known = true;
        fake.stats[0] = (SlotStats) { .syns = 11, .projected = 12 };
        fake.stats[1] = (SlotStats) { .syns = 21, .projected = 22 };
        assert_int_equal(service_steer_shadow(s, STEERING_HASH, 1000, &error), 0);
        assert_int_equal(state_save(path, s, start_time), 0);
        assert_int_equal(state_load(path, &st), 0);
        assert_true(st.has_shadow);
        assert_int_equal(st.shadow, STEERING_HASH);
        assert_int_equal(st.shadow_since, s->shadow_since);
        assert_int_equal(st.shadow_by, 1000);
        assert_int_equal(st.n_slots, 2);
        assert_true(st.slots[0].has_shadow_base && st.slots[1].has_shadow_base);
        assert_int_equal(st.slots[0].shadow_base_syns, 11);
        assert_int_equal(st.slots[0].shadow_base_projected, 12);
        assert_int_equal(st.slots[1].shadow_base_syns, 21);
        assert_int_equal(st.slots[1].shadow_base_projected, 22);
        saved_state_done(&st);

        /* Without a shadow (and as an older rpsupd wrote it): no shadow lines, and none is taken over. */
        assert_int_equal(service_steer_shadow(s, _STEERING_POLICY_INVALID, 0, &error), 0);
        assert_int_equal(state_save(path, s, start_time), 0);
        assert_int_equal(state_load(path, &st), 0);
        assert_false(st.has_shadow);
        assert_false(st.slots[0].has_shadow_base);
        saved_state_done(&st);

        /* The kernel cannot be a shadow; a base must follow its slot; known optional records are checked. */
        append_load(s, path, "#+shadow kernel 1 0\n", -EBADMSG);
        append_load(s, path, "#+shadow-base 99 1 2\n", -EBADMSG);
        append_load(s, path, "#+shadow hash\n", -EBADMSG);
        append_load(s, path, "#+\n", -EBADMSG);
        /* Shadow records are optional ones only: as plain lines, an unknown record. */
        append_load(s, path, "shadow hash 1 0\n", -EBADMSG);
        /* A retiring worker's drain deadline (for a reexec) follows its slot's worker, once. */
        {
                Slot *last = s->live->slots[s->live->n_slots - 1];
                char text[128];

                snprintf(text, sizeof(text), "#+drain %" PRIu64 " 5\n", last->id);
                append_load(s, path, text, 0);
                snprintf(text, sizeof(text), "#+drain %" PRIu64 " 5\n#+drain %" PRIu64 " 6\n", last->id, last->id);
                append_load(s, path, text, -EBADMSG);
                append_load(s, path, "#+drain 99 5\n", -EBADMSG);
        }
        /* The workers' fd store: which of a slot index's fds went to its last worker, carried over. */
        {
                WorkerFdStore *store = NULL;
                sd_event *e = NULL;

                assert_true(sd_event_new(&e) >= 0);
                assert_int_equal(worker_fdstore_new(e, &store), 0);
                worker_fdstore_handed(store, 3, 17);
                s->strategy->fdstore = store;
                assert_int_equal(state_save(path, s, start_time), 0);
                s->strategy->fdstore = NULL;
                assert_int_equal(state_load(path, &st), 0);
                assert_true(st.fdstore_handed[3] == 17);
                assert_true(st.fdstore_handed[0] == 0);
                saved_state_done(&st);
                worker_fdstore_free(store);
                sd_event_unref(e);
                append_load(s, path, "#+fdstore-handed 511 5\n", 0);
                append_load(s, path, "#+fdstore-handed 512 5\n", -EBADMSG);
                append_load(s, path, "#+fdstore-handed 1\n", -EBADMSG);
        }
        /* A newer rpsupd's optional records, unknown here: skipped. */
        append_load(s, path, "#+flow-table 65536 12 x y\n#+shadow-window-2 1\n", 0);

        unlink(path);
        fake.stats_known = false;
        teardown(s);
}

/* What an older rpsupd reads: every line but the '#' ones (its parser skips comments). */
static char *without_comments(const char *path, bool only_optional) {
        char line[1024], *text = NULL;
        size_t size = 0;
        FILE *in = fopen(path, "re"), *out = open_memstream(&text, &size);

        assert_non_null(in);
        assert_non_null(out);
        while (fgets(line, sizeof(line), in))
                if (only_optional ? strncmp(line, "#+", 2) != 0 : line[0] != '#')
                        fputs(line, out);
        fclose(in);
        fclose(out);
        return text;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* Downgrade: a state file written while a shadow runs is, to an rpsupd that knows nothing of optional
 * records, the file written without one; and a file of the previous format loads. */
static void test_state_file_compatible(void **state) {
        char path[] = "/tmp/rpsup-test-shadow-XXXXXX";
        Service *s = start_running(2);
        char *with, *plain, *without, *error = NULL;
        SavedState st, before;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        fake.stats_known = true;
        fake.stats[0] = (SlotStats) { .syns = 11, .projected = 12 };
        assert_int_equal(service_steer_shadow(s, STEERING_ROUND_ROBIN, 1000, &error), 0);
        assert_int_equal(state_save(path, s, start_time), 0);
        with = without_comments(path, false);
        plain = without_comments(path, true);
        assert_int_equal(service_steer_shadow(s, _STEERING_POLICY_INVALID, 0, &error), 0);
        assert_int_equal(state_save(path, s, start_time), 0);
        without = without_comments(path, false);
        assert_int_equal(state_load(path, &before), 0);
        /* The shadow adds nothing but optional records... */
        assert_string_equal(with, without);
        /* ...so a parser that skips them loads what it loaded before the shadow existed. */
        write_text(path, plain);
        assert_int_equal(state_load(path, &st), 0);
        assert_false(st.has_shadow);
        assert_int_equal(st.n_generations, before.n_generations);
        assert_int_equal(st.n_slots, before.n_slots);
        for (size_t i = 0; i < st.n_slots; i++) {
                assert_false(st.slots[i].has_shadow_base);
                assert_int_equal(st.slots[i].id, before.slots[i].id);
                assert_int_equal(st.slots[i].worker.pid, before.slots[i].worker.pid);
        }
        assert_int_equal(st.steering, before.steering);
        saved_state_done(&st);
        saved_state_done(&before);

        /* The previous format, as the previous release wrote it. */
        write_text(path, "# What a restarted rpsupd takes over. Written by rpsupd; do not edit.\n"
                         "version 1\n"
                         "strategy migrate\n"
                         "next-generation 3\n"
                         "next-slot 9\n"
                         "scaled 0 0\n"
                         "steering hash round-robin 5000000 1000 2\n"
                         "generation 2 live\n"
                         "slot 2 0 7 0 0 0\n"
                         "worker 7 4242 42 ready 4000000\n"
                         "slot 2 1 8 0 1 0\n"
                         "departing 4343 43\n");
        assert_int_equal(state_load(path, &st), 0);
        assert_false(st.has_shadow);
        assert_int_equal(st.steering, STEERING_HASH);
        assert_int_equal(st.n_slots, 2);
        assert_true(st.slots[0].has_worker);
        assert_false(st.slots[0].has_shadow_base || st.slots[1].has_shadow_base);
        assert_int_equal(st.n_departing, 1);
        saved_state_done(&st);

        free(with);
        free(plain);
        free(without);

        unlink(path);
        fake.stats_known = false;
        teardown(s);
}

/* After an rpsupd restart the saved window goes on only if the steering program's counters did (its maps
 * were taken over); a program loaded afresh counts from 0 again, and so does a fresh window. */
static void test_shadow_takeover(void **state) {
        char path[] = "/tmp/rpsup-test-shadow-XXXXXX";
        Service *s = start_running(2);
        uint64_t actual, projected;
        char *error = NULL;
        SavedState st;
        usec_t since;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        fake.stats_known = true;
        fake.stats[0] = (SlotStats) { .syns = 100, .projected = 50 };
        fake.stats[1] = (SlotStats) { .syns = 200, .projected = 80 };
        assert_int_equal(service_steer_shadow(s, STEERING_HASH, 1000, &error), 0);
        since = s->shadow_since;
        assert_int_equal(state_save(path, s, start_time), 0);
        assert_int_equal(state_load(path, &st), 0);
        unlink(path);
        teardown(s);
        /* No process to take over: the slots alone. */
        for (size_t i = 0; i < st.n_slots; i++)
                st.slots[i].has_worker = false;

        for (int restored = 0; restored <= 1; restored++) {
                Service *t = setup_service();
                Config *c = config_new(2);
                Slot *a;

                fake.now = since + 10 * USEC_PER_SEC;
                fake.stats_known = true;
                /* The counters: the previous rpsupd's, or those of a program loaded afresh. */
                fake.stats[0] = restored ? (SlotStats) { .syns = 100, .projected = 50 } : (SlotStats) {};
                fake.stats[1] = restored ? (SlotStats) { .syns = 200, .projected = 80 } : (SlotStats) {};
                fake_strategy.steering_restored = restored;
                assert_int_equal(takeover_restore(&(TakeoverHost) { .service = t, .config = c }, &st), 0);
                assert_true(t->shadow_runs);
                assert_int_equal(t->shadow, STEERING_HASH);
                assert_int_equal(t->shadow_by, 1000);
                a = t->live->slots[0];
                /* 150 connections since, of which the shadow would have sent 60 to the first slot. */
                fake.stats[0].syns += 150;
                fake.stats[0].projected += 60;
                counts(a, &actual, &projected);
                assert_int_equal(actual, 150);
                assert_int_equal(projected, 60);
                /* The window: the saved one, or one that began at the takeover. */
                assert_int_equal(t->shadow_since, restored ? since : fake.now);
                fake_strategy.steering_restored = false;
                teardown(t);
                config_unref(c);
        }
        saved_state_done(&st);
        fake.stats_known = false;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shadow_refusals),
                cmocka_unit_test(test_shadow_window),
                cmocka_unit_test(test_shadow_state_file),
                cmocka_unit_test(test_state_file_compatible),
                cmocka_unit_test(test_shadow_takeover),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
