/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "parse-util.h"
#include "user-util.h"
#include "utf8.h"

bool uid_is_valid(uid_t uid) {
        return uid != (uid_t) UINT32_C(0xFFFFFFFF) && uid != (uid_t) UINT32_C(0xFFFF);
}

int parse_uid(const char *s, uid_t *ret) {
        unsigned v;
        int r;

        /* Strict, so that only what looks like an id is taken as one; the rest is a name for NSS. */
        if (isempty(s) || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1]))
                return -EINVAL;
        r = parse_uint(s, &v);
        if (r < 0)
                return r;
        if (!uid_is_valid((uid_t) v))
                return -ENXIO;
        if (ret)
                *ret = (uid_t) v;
        return 0;
}

bool user_group_name_or_id_is_valid(const char *s) {
        size_t n;

        if (isempty(s))
                return false;
        if (parse_uid(s, NULL) >= 0)
                return true;
        n = strlen(s);
        if (s[0] == ' ' || s[n - 1] == ' ' || !utf8_is_valid(s))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f || *p == ':' || *p == '/')
                        return false;
        /* All digits (or a minus and digits) would read as an id, and every such string that is not a valid
         * id (65535, 4294967295, 0100, 99999999999) is refused rather than looked up as a name. */
        if (strspn(s + (s[0] == '-'), "0123456789") == n - (s[0] == '-'))
                return false;
        return !streq(s, ".") && !streq(s, "..");
}
