/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Capabilities by name, as systemd.exec(5) writes them ("CAP_NET_BIND_SERVICE"), and rpsupd's own. A set
 * is a mask of (1 << CAP_...). */

#include <stdint.h>

#include "macro.h"

#define CAPABILITY_MASK(cap) (UINT64_C(1) << (cap))

/* "CAP_NET_BIND_SERVICE", or NULL for a number the kernel headers rpsupd was built with do not name. */
const char *capability_to_name(int cap);
/* A name, in any case (systemd accepts "cap_net_raw" too); -EINVAL if it names no capability. */
int capability_from_name(const char *s);

/* Every capability this build knows by name. */
uint64_t capability_set_all(void);

/* One assignment of CapabilityBoundingSet= or AmbientCapabilities=: names separated by whitespace,
 * optionally "~" first (all capabilities but these). *ret_set is the named set, or with "~" every other
 * capability_set_all(); *ret_inverted says which. On an unknown name returns -EINVAL and a copy of it in *ret_unknown. */
int capability_set_parse(const char *text, uint64_t *ret_set, bool *ret_inverted, char **ret_unknown);

/* The first capability in `set`, or -1 if it is empty: for messages. */
int capability_set_first(uint64_t set);

/* This process's effective, permitted and bounding sets. */
int capability_get_own(uint64_t *ret_effective, uint64_t *ret_permitted, uint64_t *ret_bounding);
