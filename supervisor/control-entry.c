/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "control-entry.h"
#include "log.h"
#include "string-util.h"
#include "utf8.h"

static int entry_begin(sd_bus_message *m, const char *key, const char *type) {
        int r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        return sd_bus_message_open_container(m, 'v', type);
}

static int entry_end(sd_bus_message *m) {
        int r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

#define DEFINE_ENTRY(name, ctype, sig)                                                          \
        int name(sd_bus_message *m, const char *key, ctype v) {                                \
                int r = entry_begin(m, key, sig);                                               \
                if (r < 0)                                                                      \
                        return r;                                                               \
                r = sd_bus_message_append_basic(m, sig[0], &v);                                 \
                return r < 0 ? r : entry_end(m);                                                \
        }

DEFINE_ENTRY(entry_u64, uint64_t, "t")
DEFINE_ENTRY(entry_i64, int64_t, "x")
DEFINE_ENTRY(entry_u32, uint32_t, "u")
DEFINE_ENTRY(entry_double, double, "d")

int entry_bool(sd_bus_message *m, const char *key, bool b) {
        int v = b, r = entry_begin(m, key, "b");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 'b', &v);
        return r < 0 ? r : entry_end(m);
}

int append_text(sd_bus_message *m, const char *key, const char *s) {
        _cleanup_free_ char *valid = NULL;

        /* Text is validated where it enters (worker notifications, the config); should something else slip
         * through (the environment's NOTIFY_SOCKET, say), sd-bus would refuse the whole reply for one string
         * that is not UTF-8. */
        if (s && !utf8_is_valid(s)) {
                log_ratelimit(LOG_WARNING, "Status field \"%s\" is not valid UTF-8; sending it with U+FFFD in "
                              "place of the invalid bytes.", key);
                valid = utf8_sanitize_dup(s, 0);
                if (!valid)
                        return -ENOMEM;
                s = valid;
        }
        return sd_bus_message_append_basic(m, 's', s ?: "");
}

int entry_str(sd_bus_message *m, const char *key, const char *s) {
        int r = entry_begin(m, key, "s");
        if (r < 0)
                return r;
        r = append_text(m, key, s);
        return r < 0 ? r : entry_end(m);
}
