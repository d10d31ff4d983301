/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "rpsup-limits.h"
#include "probe.h"
#include "strategy-handoff.h"
#include "strategy-reuseport.h"
#include "strategy-select.h"
#include "string-util.h"

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
static char *reuseport_obstacle(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (!socket_address_is_inet(&c->listen[i].address))
                        return strdup_printf("%s is a Unix socket, which cannot be shared with SO_REUSEPORT",
                                             c->listen[i].text);
        return NULL;
}

/* Why connections of `c` cannot migrate, or NULL. */
static char *migrate_obstacle(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type != SOCK_STREAM)
                        return strdup_printf("%s is a datagram socket; only TCP connections migrate",
                                             c->listen[i].text);
        return NULL;
}

/* The socket unit's listeners, passed to us by name, if any. */
static void socket_unit_fds(const Config *c, InheritedFds *in, int *fds, const char **texts, size_t *n) {
        *n = 0;
        for (size_t i = 0; in && i < in->n; i++) {
                SocketAddress a;
                if (in->fds[i].fd < 0 || !streq_ptr(in->fds[i].name, c->fdname) ||
                    socket_address_from_fd(in->fds[i].fd, &a) < 0)
                        continue;
                for (size_t j = 0; j < c->n_listen && *n < LISTEN_MAX; j++)
                        if (socket_address_equal(&a, &c->listen[j].address)) {
                                fds[*n] = in->fds[i].fd;
                                texts[*n] = c->listen[j].text;
                                (*n)++;
                        }
        }
}

static char *socket_unit_obstacle(const Config *c, InheritedFds *in) {
        int fds[LISTEN_MAX];
        const char *texts[LISTEN_MAX];
        size_t n;

        socket_unit_fds(c, in, fds, texts, &n);
        for (size_t i = 0; i < n; i++) {
                int one = 0;
                socklen_t l = sizeof(one);
                if (getsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, &l) < 0 || !one)
                        return strdup_printf("the socket unit's listener on %s has no SO_REUSEPORT (set ReusePort=yes "
                                             "in the .socket unit)", texts[i]);
        }
        return NULL;
}

/* Migrating between listeners whose options differ breaks applications (the kernel's own warning): the
 * per-worker listeners rpsupd creates have the defaults, so a socket unit's listener must too. */
static char *options_obstacle(const Config *c, InheritedFds *in) {
        static const struct {
                int level, name;
                const char *what;
        } options[] = {
                { IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT (DeferAcceptSec=)" },
                { IPPROTO_TCP, TCP_FASTOPEN, "TCP_FASTOPEN (FastOpen=)" },
                { IPPROTO_TCP, TCP_SAVE_SYN, "TCP_SAVE_SYN" },
                { IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY (NoDelay=)" },
                { SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE (KeepAlive=)" },
                { IPPROTO_IP, IP_TRANSPARENT, "IP_TRANSPARENT (Transparent=)" },
        };
        int fds[LISTEN_MAX];
        const char *texts[LISTEN_MAX];
        size_t n;

        socket_unit_fds(c, in, fds, texts, &n);
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < ELEMENTSOF(options); k++) {
                        int v = 0;
                        socklen_t l = sizeof(v);
                        if (getsockopt(fds[i], options[k].level, options[k].name, &v, &l) >= 0 && v != 0)
                                return strdup_printf("the socket unit's listener on %s sets %s, which rpsupd's "
                                                     "listeners do not: migrating between them is unsafe",
                                                     texts[i], options[k].what);
                }
        return NULL;
}

/* The size of a flow table created now: FlowTableSize= when the service has a datagram listener; else the
 * table would never be used (it is preallocated: 65,536 flows take about 7 MB of kernel memory), so 1 entry.
 * The size is fixed for the life of the maps (steer() says so when a reload asks for another). */
static uint32_t flow_table_size(const Config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                if (c->listen[i].address.type == SOCK_DGRAM)
                        return c->flow_table_size;
        return 1;
}

int strategy_select(Config *c, ListenerSet *set, InheritedFds *in, StrategyKind running, Strategy **ret,
                    char **ret_error) {
        StrategyKind want = running >= 0 ? running : c->strategy;
        uint32_t flow_max = flow_table_size(c);
        _cleanup_free_ char *obstacle = NULL, *why = NULL, *error = NULL, *reason = NULL;
        int r;

        *ret_error = NULL;
        if (running >= 0 && c->strategy != STRATEGY_AUTO && c->strategy != running)
                log_notice("Strategy=%s is configured, but the workers taken over run with %s; the change takes "
                           "effect after the service is stopped and started.", strategy_kind_to_string(c->strategy),
                           strategy_kind_to_string(running));

        if (want == STRATEGY_HANDOFF)
                return strategy_handoff_new(set, running >= 0 ? "taken over from the previous rpsupd"
                                                              : "Strategy=handoff is configured", ret);

        if (want == STRATEGY_AUTO) {
                obstacle = reuseport_obstacle(c) ?: socket_unit_obstacle(c, in);
                if (obstacle) {
                        reason = strdup_printf("auto: %s", obstacle);
                        return strategy_handoff_new(set, reason, ret);
                }
                why = migrate_obstacle(c) ?: options_obstacle(c, in);
                want = why ? STRATEGY_DRAIN : STRATEGY_MIGRATE;
                reason = why ? strdup_printf("auto: BPF steering works here, and %s", why)
                             : strdup_printf("auto: BPF steering and socket migration work here");
                r = strategy_reuseport_new(want, set, in, false, flow_max, reason, ret, &error);
                if (r >= 0)
                        return r;
                reason = mfree(reason);
                reason = strdup_printf("auto: BPF steering is not available (%s)", error ?: strerror(-r));
                return strategy_handoff_new(set, reason, ret);
        }

        /* Explicitly configured: it runs, or rpsupd says why not and does not start. */
        obstacle = reuseport_obstacle(c) ?: socket_unit_obstacle(c, in);
        if (!obstacle && want == STRATEGY_MIGRATE)
                obstacle = migrate_obstacle(c) ?: options_obstacle(c, in);
        if (obstacle) {
                *ret_error = strdup_printf("%s: Strategy=%s cannot run: %s", c->path, strategy_kind_to_string(want),
                                           obstacle);
                return -EOPNOTSUPP;
        }
        reason = strdup_printf("Strategy=%s is configured%s", strategy_kind_to_string(want),
                               running >= 0 ? " (taken over from the previous rpsupd)" : "");
        r = strategy_reuseport_new(want, set, in, false, flow_max, reason, ret, &error);
        if (r >= 0)
                return r;
        if (want == STRATEGY_MIGRATE) {
                ProbeResult p;
                probe_run(&p);
                if (p.migrate_sysctl == 1) {
                        log_warning("Strategy=migrate without BPF steering (%s): through net.ipv4.tcp_migrate_req=1, "
                                    "new connections are spread by the kernel's hash and migrate to a random "
                                    "listener.", error ?: strerror(-r));
                        reason = mfree(reason);
                        reason = strdup_printf("Strategy=migrate is configured; without BPF (%s), through "
                                               "net.ipv4.tcp_migrate_req=1", error ?: strerror(-r));
                        return strategy_reuseport_new(want, set, in, true, flow_max, reason, ret, ret_error);
                }
        }
        *ret_error = strdup_printf("%s: Strategy=%s cannot run: %s%s", c->path, strategy_kind_to_string(want),
                                   error ?: strerror(-r),
                                   want == STRATEGY_MIGRATE ? " (and net.ipv4.tcp_migrate_req is not 1)" : "");
        return r;
}

int strategy_check_steering(Strategy *st, const Config *c, char **ret_error) {
        *ret_error = NULL;
        if (c->steering == STEERING_ROUND_ROBIN || (st->ops->can_weigh && st->ops->can_weigh(st)))
                return 0;
        *ret_error = strdup_printf("%s: Steering=%s cannot run: it is a policy of rpsup's steering program, and %s",
                                   c->path, steering_policy_to_string(c->steering),
                                   st->kind == STRATEGY_HANDOFF ? "the service runs with handoff (one shared queue)"
                                                                : "the program is not loaded (see rpsupctl probe)");
        return -EOPNOTSUPP;
}

int strategy_check_reload(Strategy *st, Config *c, char **ret_error) {
        StrategyKind running = st->kind;
        _cleanup_free_ char *obstacle = NULL;
        int r;

        *ret_error = NULL;
        r = strategy_check_steering(st, c, ret_error);
        if (r < 0)
                return r;
        if (c->strategy != STRATEGY_AUTO && c->strategy != running) {
                *ret_error = strdup_printf("%s: Strategy=%s, but the service runs with %s: a reload cannot switch "
                                           "strategies; stop and start the service", c->path,
                                           strategy_kind_to_string(c->strategy), strategy_kind_to_string(running));
                return -EBADMSG;
        }
        if (running == STRATEGY_DRAIN)
                obstacle = reuseport_obstacle(c);
        else if (running == STRATEGY_MIGRATE)
                obstacle = reuseport_obstacle(c) ?: migrate_obstacle(c);
        if (obstacle) {
                *ret_error = strdup_printf("%s: the service runs with Strategy=%s, but %s", c->path,
                                           strategy_kind_to_string(running), obstacle);
                return -EBADMSG;
        }
        return 0;
}
