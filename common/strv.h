/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* NULL-terminated string arrays. */

#include "macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
/* Appends `s` and takes ownership of it (freed on failure). */
int strv_consume(char ***l, char *s);
/* Appends a copy of `s`. */
int strv_extend(char ***l, const char *s);
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);

/* Environment blocks ("KEY=VALUE" entries). strv_env_set replaces an existing KEY. */
bool env_assignment_is_valid(const char *e);
int strv_env_set(char ***l, const char *assignment);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
