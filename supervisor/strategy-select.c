/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "probe.h"
#include "strategy-handoff.h"
#include "strategy-select.h"

Strategy *strategy_free(Strategy *st) {
        if (!st)
                return NULL;
        if (st->ops && st->ops->free)
                st->ops->free(st);
        free(st->reason);
        free(st);
        return NULL;
}

/* Why the listeners of `c` rule out per-worker SO_REUSEPORT listeners, or NULL. */
static const char *reuseport_obstacle(const Config *c, char *buf, size_t l) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (!socket_address_is_inet(&c->listen[i].address)) {
                        snprintf(buf, l, "%s is a Unix socket, which cannot be shared with SO_REUSEPORT",
                                 c->listen[i].text);
                        return buf;
                }
        return NULL;
}

static const char *migrate_obstacle(const Config *c, char *buf, size_t l) {
        const char *r = reuseport_obstacle(c, buf, l);

        if (r)
                return r;
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type != SOCK_STREAM) {
                        snprintf(buf, l, "%s is a datagram socket; only TCP connections can migrate",
                                 c->listen[i].text);
                        return buf;
                }
        return NULL;
}

int strategy_select(Config *c, ListenerSet *set, StrategyKind running, Strategy **ret, char **ret_error) {
        StrategyKind want = running >= 0 ? running : c->strategy;
        char why[256];
        const char *obstacle;

        *ret_error = NULL;
        if (running >= 0 && c->strategy != STRATEGY_AUTO && c->strategy != running)
                log_notice("Strategy=%s is configured, but the workers taken over run with %s; the change takes "
                           "effect after the service is stopped and started.", strategy_kind_to_string(c->strategy),
                           strategy_kind_to_string(running));

        switch (want) {
        case STRATEGY_HANDOFF:
                return strategy_handoff_new(set, running >= 0 ? "taken over from the previous rpsupd"
                                                              : "Strategy=handoff is configured", ret);
        case STRATEGY_AUTO:
                obstacle = reuseport_obstacle(c, why, sizeof(why));
                if (obstacle) {
                        char reason[300];
                        snprintf(reason, sizeof(reason), "auto: %s", obstacle);
                        return strategy_handoff_new(set, reason, ret);
                }
                return strategy_handoff_new(set, "auto: BPF strategies are not built into this rpsupd", ret);
        case STRATEGY_DRAIN:
        case STRATEGY_MIGRATE:
                obstacle = want == STRATEGY_MIGRATE ? migrate_obstacle(c, why, sizeof(why))
                                                    : reuseport_obstacle(c, why, sizeof(why));
                if (asprintf(ret_error, "%s: Strategy=%s cannot run: %s", c->path, strategy_kind_to_string(want),
                             obstacle ?: "this rpsupd has no BPF steering") < 0)
                        *ret_error = NULL;
                return -EOPNOTSUPP;
        default:
                return -EINVAL;
        }
}

int strategy_check_reload(Strategy *st, Config *c, char **ret_error) {
        StrategyKind running = st->ops->kind;
        char why[256];
        const char *obstacle = NULL;

        *ret_error = NULL;
        if (c->strategy != STRATEGY_AUTO && c->strategy != running) {
                if (asprintf(ret_error, "%s: Strategy=%s, but the service runs with %s: a reload cannot switch "
                             "strategies; stop and start the service", c->path, strategy_kind_to_string(c->strategy),
                             strategy_kind_to_string(running)) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        if (running == STRATEGY_DRAIN)
                obstacle = reuseport_obstacle(c, why, sizeof(why));
        else if (running == STRATEGY_MIGRATE)
                obstacle = migrate_obstacle(c, why, sizeof(why));
        if (obstacle) {
                if (asprintf(ret_error, "%s: the service runs with Strategy=%s, but %s", c->path,
                             strategy_kind_to_string(running), obstacle) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        return 0;
}
