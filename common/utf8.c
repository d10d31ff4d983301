/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "utf8.h"

#define REPLACEMENT_CHARACTER "\xef\xbf\xbd" /* U+FFFD */

/* The length of the valid character at s (of at most n bytes), or 0 if none starts there. glibc's
 * mbrtowc() would need a UTF-8 locale and accepts noncharacters, which sd-bus refuses. */
static size_t char_length(const unsigned char *s, size_t n, uint32_t *ret) {
        uint32_t c;
        size_t len;

        if (n == 0 || s[0] == 0)
                return 0;
        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] < 0xc2) /* a continuation byte, or the lead of an overlong 2-byte form */
                return 0;
        if (s[0] < 0xe0) {
                len = 2;
                c = s[0] & 0x1f;
        } else if (s[0] < 0xf0) {
                len = 3;
                c = s[0] & 0x0f;
        } else if (s[0] < 0xf5) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
                return 0; /* overlong, or beyond Unicode */
        if (c >= 0xd800 && c <= 0xdfff)
                return 0; /* a surrogate */
        if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe)
                return 0; /* a noncharacter */
        *ret = c;
        return len;
}

size_t utf8_first_invalid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        size_t i = 0;

        while (i < n) {
                uint32_t c;
                size_t len = char_length(p + i, n - i, &c);
                if (len == 0)
                        return i;
                i += len;
        }
        return n;
}

bool utf8_is_valid_n(const char *s, size_t n) {
        return utf8_first_invalid(s, n) == n;
}

static bool is_control(uint32_t c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

size_t utf8_sanitize(const char *s, size_t n, char *buf, size_t size, Utf8SanitizeFlags flags, unsigned *ret_what) {
        const unsigned char *p = (const unsigned char *) s;
        unsigned what = 0;
        size_t i = 0, o = 0;

        while (i < n) {
                const char *add;
                size_t len, add_len;
                uint32_t c;

                len = char_length(p + i, n - i, &c);
                if (len == 0) {
                        add = REPLACEMENT_CHARACTER;
                        add_len = strlen(REPLACEMENT_CHARACTER);
                        len = 1;
                        what |= UTF8_REPLACED_INVALID;
                } else if ((flags & UTF8_REPLACE_CONTROL) && is_control(c)) {
                        add = " ";
                        add_len = 1;
                        what |= UTF8_REPLACED_CONTROL;
                } else {
                        add = s + i;
                        add_len = len;
                }
                if (o + add_len > size - 1) {
                        what |= UTF8_CUT;
                        break;
                }
                memcpy(buf + o, add, add_len);
                o += add_len;
                i += len;
        }
        buf[o] = 0;
        if (ret_what)
                *ret_what = what;
        return o;
}

char *utf8_sanitize_dup(const char *s, Utf8SanitizeFlags flags) {
        size_t n = strlen(s), size;
        char *buf;

        /* Each byte becomes at most the three of U+FFFD. */
        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        size = n * 3 + 1;
        buf = malloc(size);
        if (!buf)
                return NULL;
        utf8_sanitize(s, n, buf, size, flags, NULL);
        return buf;
}
