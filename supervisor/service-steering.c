/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The steering policy of a service: how new connections pick a worker within a generation (round-robin,
 * hash, kernel). It comes from Steering= at start, from `rpsupctl steer` at run time, and from a reload whose
 * config changes Steering= (once its generation is promoted: a failed or rolled-back one changes nothing):
 * the last of these wins. A change is one steer() of the strategy: one map update
 * per reuseport group, which switches sets and policy together. */

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
        if (!s->strategy->ops->can_weigh || !s->strategy->ops->can_weigh(s->strategy)) {
                *ret_error = strdup_printf("steering policies are rpsup's steering program's, and %s",
                                           s->strategy->kind == STRATEGY_HANDOFF
                                           ? "the service runs with handoff (one shared queue)"
                                           : "it is not loaded (see rpsupctl probe)");
                return -EINVAL;
        }
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
        log_info("Steering policy %s (was %s), set by uid %u.", steering_policy_to_string(p),
                 steering_policy_to_string(old), (unsigned) by);
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
