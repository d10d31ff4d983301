/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "string-util.h"
#include "strv.h"
#include "worker-environment.h"

extern char **environ;

/* Variables that describe rpsupd's own relation to systemd, or that rpsupd sets per worker or probe. */
static const char *const env_not_inherited[] = {
        "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
        "MAINPID", "RPSUP_SERVICE", "RPSUP_GENERATION", "RPSUP_WORKER", "RPSUP_LOG_LEVEL", "RPSUP_PROBE_ADDRESS",
};

static bool env_inherited(const char *e) {
        for (size_t i = 0; i < ELEMENTSOF(env_not_inherited); i++) {
                size_t n = strlen(env_not_inherited[i]);
                if (strncmp(e, env_not_inherited[i], n) == 0 && e[n] == '=')
                        return false;
        }
        return true;
}

int env_set_consume(char ***env, char *assignment) {
        int r;

        if (!assignment)
                return -ENOMEM;
        r = strv_env_set(env, assignment);
        free(assignment);
        return r;
}

int worker_environment(const Worker *w, const char *service_name, char ***ret) {
        const Config *c = w->slot->generation->config;
        _cleanup_strv_free_ char **env = calloc(1, sizeof(char *));
        int r;

        if (!env)
                return -ENOMEM;
        for (char **e = environ; e && *e; e++)
                if (env_inherited(*e) && strchr(*e, '=')) {
                        r = strv_extend(&env, *e);
                        if (r < 0)
                                return r;
                }
        /* As systemd does: the user's variables first, then Environment= (which may override them, e.g.
         * SHELL= for a daemon that runs commands with $SHELL under a user whose shell is nologin). */
        if (c->user) {
                const char *name = c->user_name ?: c->user;
                if ((r = env_set_consume(&env, strdup_printf("USER=%s", name))) < 0 ||
                    (r = env_set_consume(&env, strdup_printf("LOGNAME=%s", name))) < 0 ||
                    (c->home && (r = env_set_consume(&env, strdup_printf("HOME=%s", c->home))) < 0) ||
                    (c->shell && (r = env_set_consume(&env, strdup_printf("SHELL=%s", c->shell))) < 0))
                        return r;
        }
        STRV_FOREACH(e, c->environment) {
                r = strv_env_set(&env, *e);
                if (r < 0)
                        return r;
        }
        if ((r = env_set_consume(&env, strdup_printf("RPSUP_SERVICE=%s", service_name))) < 0 ||
            (r = env_set_consume(&env, strdup_printf("RPSUP_GENERATION=%" PRIu64, w->slot->generation->id))) < 0 ||
            (r = env_set_consume(&env, strdup_printf("RPSUP_WORKER=%u", w->slot->index))) < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}
