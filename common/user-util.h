/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* User and group names and ids, by systemd's rules for User= and Group=. */

#include <sys/types.h>

#include "macro.h"

/* Not (uid_t) -1, which setresuid() and chown() read as "no change", nor the 16-bit -1, 65535. */
bool uid_is_valid(uid_t uid);
static inline bool gid_is_valid(gid_t gid) {
        return uid_is_valid((uid_t) gid);
}
/* A decimal uid without sign, leading zero or whitespace, and valid: 0, 1000; not 0100, +5, 65535. */
int parse_uid(const char *s, uid_t *ret);
/* A numeric id that parse_uid() takes, or a name by systemd's relaxed rules: valid UTF-8, no control
 * characters, no ':' or '/', no leading or trailing space, not "." or "..", not all digits. */
bool user_group_name_or_id_is_valid(const char *s);
