/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <string.h>

#include "strv.h"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **t;

        if (!s)
                return -ENOMEM;
        t = realloc(*l, sizeof(char *) * (n + 2));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

char **strv_copy(char *const *l) {
        _cleanup_strv_free_ char **c = calloc(1, sizeof(char *));

        if (!c)
                return NULL;
        STRV_FOREACH(s, l)
                if (strv_extend(&c, *s) < 0)
                        return NULL;
        return TAKE_PTR(c);
}

bool strv_contains(char *const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

static bool env_name_is_valid(const char *name, size_t n) {
        if (n == 0 || isdigit((unsigned char) name[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) name[i]) || name[i] == '_'))
                        return false;
        return true;
}

bool env_assignment_is_valid(const char *e) {
        const char *eq = strchr(e, '=');

        return eq && env_name_is_valid(e, (size_t) (eq - e));
}

static char **env_find(char *const *l, const char *name, size_t n) {
        for (char *const *p = l; p && *p; p++)
                if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
                        return (char **) p;
        return NULL;
}

int strv_env_set(char ***l, const char *assignment) {
        const char *eq = strchr(assignment, '=');
        char **existing, *copy;

        if (!eq || !env_name_is_valid(assignment, (size_t) (eq - assignment)))
                return -EINVAL;
        existing = env_find(*l, assignment, (size_t) (eq - assignment));
        if (!existing)
                return strv_extend(l, assignment);
        copy = strdup(assignment);
        if (!copy)
                return -ENOMEM;
        free(*existing);
        *existing = copy;
        return 0;
}
