/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The steering policy of a service: how new connections pick a worker within a generation (round-robin,
 * hash, kernel). It comes from Steering= at start, from `rpsupctl steer` at run time, and from a reload whose
 * config changes Steering= (once its generation is promoted: a failed or rolled-back one changes nothing):
 * the last of these wins. A change is one steer() of the strategy: one map update
 * per reuseport group, which switches sets and policy together. */

/* A shadow policy (`rpsupctl steer --shadow`) rides along in the same map update: the program computes where
 * it would have sent each new connection and counts that per listener, without changing where it goes. Its
 * window (the counts status compares) starts when it is set, again when it is set again, and when the
 * policy changes: actual and projected then always count the same connections under one policy. */

#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "service-internal.h"
#include "string-util.h"

static void steering_record(Service *s, SteeringPolicy p, uid_t by) {
        if (s->steering_set && s->steering != p)
                s->steering_changes++;
        s->steering = p;
        s->steering_since = now(s);
        s->steering_by = by;
        s->steering_set = true;
}

static bool canary_runs(Service *s) {
        return s->warm && s->canary > 0 && s->canary < 100;
}

/* Every slot's counts now are where the shadow's window begins (slots created later start at 0). Taken after
 * the map update that started it: a connection counted in one of the two counts is counted in both. */
static void shadow_rebase(Service *s) {
        s->shadow_since = now(s);
        FOREACH_GENERATION(g, s)
                for (size_t i = 0; i < g->n_slots; i++) {
                        Slot *slot = g->slots[i];
                        SlotStats st = {};

                        if (!s->strategy->ops->slot_stats || s->strategy->ops->slot_stats(s->strategy, slot, &st) < 0)
                                st = (SlotStats) {};
                        slot->shadow_base_id = slot->id;
                        slot->shadow_base_syns = st.syns;
                        slot->shadow_base_projected = st.projected;
                }
}

void slot_shadow_counts(const Slot *slot, const SlotStats *st, uint64_t *ret_actual, uint64_t *ret_projected) {
        /* A slot created since the window began, or given fresh listeners (replaced while hung): from 0. */
        bool based = slot->shadow_base_id == slot->id;
        uint64_t base_syns = based ? slot->shadow_base_syns : 0, base_projected = based ? slot->shadow_base_projected : 0;

        /* Counters reset (a program loaded afresh after an rpsupd restart): from 0 again. */
        *ret_actual = st->syns >= base_syns ? st->syns - base_syns : st->syns;
        *ret_projected = st->projected >= base_projected ? st->projected - base_projected : st->projected;
}

/* Policies and shadows are the steering program's: NULL if it runs, else why not (for *ret_error). */
static char *no_program(Service *s, const char *what) {
        if (s->strategy->ops->can_weigh && s->strategy->ops->can_weigh(s->strategy))
                return NULL;
        return strdup_printf("%s are rpsup's steering program's, and %s", what,
                             s->strategy->kind == STRATEGY_HANDOFF
                             ? "the service runs with handoff (one shared queue)"
                             : "it is not loaded (see rpsupctl probe)");
}

/* At start (or after a takeover without a recorded policy): the config's. */
void service_steering_init(Service *s, const Config *c) {
        if (s->steering_set)
                return;
        s->steering_config = c->steering;
        steering_record(s, c->steering, STEERING_BY_CONFIG);
}

SteeringPolicy service_steering_after_reload(Service *s, const Config *c) {
        return c->steering != s->steering_config ? c->steering : s->steering;
}

/* A reload was promoted: a Steering= that changed applies (the last action); the same one leaves a run-time
 * choice. */
void service_steering_reload(Service *s, const Config *c) {
        bool changed_config = c->steering != s->steering_config;

        s->steering_config = c->steering;
        if (!changed_config || c->steering == s->steering)
                return;
        log_info("Steering=%s in the reloaded config replaces steering policy %s.",
                 steering_policy_to_string(c->steering), steering_policy_to_string(s->steering));
        steering_record(s, c->steering, STEERING_BY_CONFIG);
        steering_update(s);
        if (s->shadow_runs)
                shadow_rebase(s);
}

int service_steer(Service *s, SteeringPolicy p, uid_t by, char **ret_error) {
        SERVICE_STEP(s);
        SteeringPolicy old;
        usec_t old_since;
        uid_t old_by;
        uint64_t old_changes;
        int r;

        *ret_error = NULL;
        if (p < 0 || p >= _STEERING_POLICY_MAX) {
                *ret_error = strdup("unknown steering policy (expected round-robin, hash or kernel)");
                return -EINVAL;
        }
        *ret_error = no_program(s, "steering policies");
        if (*ret_error)
                return -EINVAL;
        if (s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED || s->state == SERVICE_FAILED) {
                *ret_error = strdup_printf("the service is %s", service_state_to_string(s->state));
                return -EBUSY;
        }
        if (p == STEERING_KERNEL && canary_runs(s)) {
                *ret_error = strdup_printf("a canary runs (%u%% to generation %" PRIu64 "): the kernel's choice "
                                           "cannot share new connections out between generations; promote or roll "
                                           "back first", s->canary, s->live ? s->live->id : 0);
                return -EBUSY;
        }
        if (s->steering_set && p == s->steering)
                return 0;
        old = s->steering;
        old_since = s->steering_since;
        old_by = s->steering_by;
        old_changes = s->steering_changes;
        steering_record(s, p, by);
        r = s->strategy->ops->steer(s->strategy, s);
        if (r < 0) {
                /* What the maps hold is unknown: back to the previous policy, written again. */
                s->steering = old;
                s->steering_since = old_since;
                s->steering_by = old_by;
                s->steering_changes = old_changes;
                steering_update(s);
                *ret_error = strdup_printf("cannot write the steering maps: %s", strerror(-r));
                return log_error_errno(r, "Steering policy %s (asked by uid %u) could not be set, %s stays: %m",
                                       steering_policy_to_string(p), (unsigned) by,
                                       steering_policy_to_string(s->steering));
        }
        if (s->shadow_runs)
                shadow_rebase(s);
        log_info("Steering policy %s (was %s), set by uid %u.", steering_policy_to_string(p),
                 steering_policy_to_string(old), (unsigned) by);
        changed(s);
        return 0;
}

int service_steer_shadow(Service *s, SteeringPolicy shadow, uid_t by, char **ret_error) {
        SERVICE_STEP(s);
        bool old_runs = s->shadow_runs;
        SteeringPolicy old = s->shadow;
        usec_t old_since = s->shadow_since;
        uid_t old_by = s->shadow_by;
        int r;

        *ret_error = NULL;
        if (shadow == STEERING_KERNEL) {
                *ret_error = strdup("the kernel policy cannot be shadowed: the kernel's own reuseport selection "
                                    "runs only for connections the program leaves to it, so the program cannot "
                                    "see which of the group's sockets the kernel would have picked for one it "
                                    "steers itself (shadow round-robin or hash instead)");
                return -EINVAL;
        }
        if (shadow >= _STEERING_POLICY_MAX) {
                *ret_error = strdup("unknown shadow policy (expected round-robin or hash)");
                return -EINVAL;
        }
        *ret_error = no_program(s, "shadow policies");
        if (*ret_error)
                return -EINVAL;
        if (s->state == SERVICE_STOPPING || s->state == SERVICE_STOPPED || s->state == SERVICE_FAILED) {
                *ret_error = strdup_printf("the service is %s", service_state_to_string(s->state));
                return -EBUSY;
        }
        if (shadow < 0 && !s->shadow_runs)
                return 0;
        s->shadow_runs = shadow >= 0;
        if (shadow >= 0) {
                s->shadow = shadow;
                s->shadow_by = by;
        }
        r = s->strategy->ops->steer(s->strategy, s);
        if (r < 0) {
                s->shadow_runs = old_runs;
                s->shadow = old;
                s->shadow_since = old_since;
                s->shadow_by = old_by;
                steering_update(s);
                *ret_error = strdup_printf("cannot write the steering maps: %s", strerror(-r));
                return log_error_errno(r, "Shadow policy %s (asked by uid %u) could not be set: %m",
                                       shadow >= 0 ? steering_policy_to_string(shadow) : "off", (unsigned) by);
        }
        if (shadow >= 0) {
                /* Set again: a fresh window. */
                shadow_rebase(s);
                log_info("Shadow policy %s under steering policy %s, set by uid %u: new connections are counted "
                         "where it would send them.", steering_policy_to_string(shadow),
                         steering_policy_to_string(s->steering), (unsigned) by);
        } else
                log_info("Shadow policy %s stopped by uid %u.", steering_policy_to_string(old), (unsigned) by);
        changed(s);
        return 0;
}

void service_adopt_steering(Service *s, SteeringPolicy policy, SteeringPolicy config, usec_t since, uid_t by,
                            uint64_t changes) {
        s->steering = policy;
        s->steering_config = config;
        s->steering_since = since;
        s->steering_by = by;
        s->steering_changes = changes;
        s->steering_set = true;
}

void service_adopt_shadow(Service *s, SteeringPolicy shadow, usec_t since, uid_t by) {
        s->shadow_runs = true;
        s->shadow = shadow;
        s->shadow_since = since;
        s->shadow_by = by;
}

/* After a takeover whose steering program was loaded afresh (its counters started again from 0), once the
 * slots are adopted: the saved window's bases count what the old counters had, so a fresh window begins. */
void service_shadow_restart(Service *s) {
        if (!s->shadow_runs)
                return;
        shadow_rebase(s);
        log_info("Shadow policy %s counts from now on: the steering program was loaded afresh, so the counts of "
                 "its earlier window are gone.", steering_policy_to_string(s->shadow));
}

void service_adopt_slot_shadow(Slot *slot, uint64_t base_syns, uint64_t base_projected) {
        slot->shadow_base_id = slot->id;
        slot->shadow_base_syns = base_syns;
        slot->shadow_base_projected = base_projected;
}
