/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* UTF-8 as D-Bus carries it: sd-bus refuses a string ('s') that is not valid UTF-8, so text that comes
 * from a worker or a file is checked, or made valid, before it can reach a reply. */

#include "macro.h"

/* Valid: RFC 3629 (no overlong forms, no surrogates, nothing above U+10FFFF) and, as sd-bus requires,
 * no noncharacters (U+FDD0..U+FDEF, U+nFFFE, U+nFFFF). A NUL byte within the n bytes is not valid. */
bool utf8_is_valid_n(const char *s, size_t n);
static inline bool utf8_is_valid(const char *s) {
        return utf8_is_valid_n(s, strlen(s));
}
/* The offset of the first byte that does not start a valid character, or n if there is none. */
size_t utf8_first_invalid(const char *s, size_t n);

typedef enum Utf8SanitizeFlags {
        UTF8_REPLACE_CONTROL = 1 << 0, /* control characters (C0, DEL, C1) become spaces */
} Utf8SanitizeFlags;

typedef enum Utf8SanitizeResult {
        UTF8_REPLACED_INVALID = 1 << 0, /* bytes that did not form a valid character became U+FFFD */
        UTF8_REPLACED_CONTROL = 1 << 1, /* control characters became spaces */
        UTF8_CUT = 1 << 2,              /* the text did not fit and was cut */
} Utf8SanitizeResult;

/* Copies the n bytes at s to buf as valid UTF-8: each byte that does not start a valid character becomes
 * U+FFFD (and so does a NUL). The copy ends at a character boundary before the first character that does
 * not fit: at most size - 1 bytes and a NUL (size must be > 0). Returns the bytes written (without the
 * NUL); *ret_what (optional) says what was changed (Utf8SanitizeResult bits). */
size_t utf8_sanitize(const char *s, size_t n, char *buf, size_t size, Utf8SanitizeFlags flags, unsigned *ret_what);
/* The whole string made valid (invalid bytes as U+FFFD), newly allocated; NULL when out of memory. */
char *utf8_sanitize_dup(const char *s, Utf8SanitizeFlags flags);
