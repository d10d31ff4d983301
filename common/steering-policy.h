/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The names of the steering policies (Steering= in the config, `rpsupctl steer`, "steering" in status):
 * how new connections pick a worker's listener within a generation. */

#include <errno.h>

typedef enum SteeringPolicy {
        STEERING_ROUND_ROBIN, /* TCP: turns; datagrams: by hash (the default) */
        STEERING_HASH,        /* by the connection's hash: a flow keeps its worker while the workers stay */
        STEERING_KERNEL,      /* the kernel's own reuseport selection, over every socket of the group */
        _STEERING_POLICY_MAX,
        _STEERING_POLICY_INVALID = -EINVAL,
} SteeringPolicy;

const char *steering_policy_to_string(SteeringPolicy p);
SteeringPolicy steering_policy_from_string(const char *s);
