/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "steering-policy.h"

static const char *const steering_policy_names[_STEERING_POLICY_MAX] = {
        [STEERING_ROUND_ROBIN] = "round-robin",
        [STEERING_HASH] = "hash",
        [STEERING_KERNEL] = "kernel",
};

const char *steering_policy_to_string(SteeringPolicy p) {
        return p >= 0 && p < _STEERING_POLICY_MAX ? steering_policy_names[p] : NULL;
}

SteeringPolicy steering_policy_from_string(const char *s) {
        for (int i = 0; i < _STEERING_POLICY_MAX; i++)
                if (streq_ptr(steering_policy_names[i], s))
                        return (SteeringPolicy) i;
        return _STEERING_POLICY_INVALID;
}
