/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The entries of the control interface's records (a{sv}): one key and its value each. Strings are sent as
 * valid UTF-8 whatever they hold (sd-bus refuses a whole reply for one string that is not). */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

int entry_u64(sd_bus_message *m, const char *key, uint64_t v);
int entry_i64(sd_bus_message *m, const char *key, int64_t v);
int entry_u32(sd_bus_message *m, const char *key, uint32_t v);
int entry_double(sd_bus_message *m, const char *key, double v);
int entry_bool(sd_bus_message *m, const char *key, bool b);
/* NULL is sent as the empty string. */
int entry_str(sd_bus_message *m, const char *key, const char *s);
/* A string (the value of the record entry or property `key`), without the entry around it. */
int append_text(sd_bus_message *m, const char *key, const char *s);

/* Returns from the calling function on a negative result. */
#define TRY(x)                          \
        do {                            \
                int _r_ = (x);          \
                if (_r_ < 0)            \
                        return _r_;     \
        } while (0)
