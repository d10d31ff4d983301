/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the control interface reports: the service, its generations, workers and listeners as D-Bus
 * records (a{sv}), and the one-line summary that GetStatus and systemd's STATUS= show. Everything is read
 * from a StatusView, which the manager fills in when asked: nothing here sees the manager itself. */

#include <systemd/sd-bus.h>

#include "balance.h"
#include "config.h"
#include "listener.h"
#include "probe.h"
#include "reexec.h"
#include "retirement.h"
#include "cgroup-tree.h"
#include "service.h"
#include "strategy.h"

/* A read-only look at rpsupd's state, valid until the event loop runs again. */
typedef struct StatusView {
        const char *service_name;
        const char *config_path;
        const char *runtime_dir;
        usec_t started_at_realtime;
        const Config *config;          /* as last loaded (start or reload) */
        Service *service;
        Strategy *strategy;
        ListenerSet *listeners;
        Retirements *retirements;      /* read; a retiring generation's record is brought up to date */
        Balance *balance;              /* per-worker balance figures, sampled when read; NULL: unknown */
        CgroupTree *cgroups;           /* the service's cgroups (each generation's CPU and memory); NULL: none */
        const ReexecRecord *reexec;    /* reexecs so far and the last one's outcome; NULL: none */
        const struct WorkerFdStore *fdstore; /* what workers keep with FDSTORE=1; NULL: none */
        uid_t caller;                  /* who asks (high-water marks are per scraping uid); BALANCE_NO_CALLER */
} StatusView;

/* Monotonic timestamps (what the state machine keeps) as wall-clock microseconds (what people read); 0 for
 * 0 (never) and USEC_INFINITY (none). */
uint64_t to_realtime(usec_t t);

/* One line describing the service, as sent in STATUS= and reported as GetStatus's "status". */
int status_line(Service *s, StrategyKind kind, char **ret);

int status_append_service(sd_bus_message *m, const StatusView *v);
/* The value of one property of io.rpsup.Supervisor1 (the same as GetStatus's key of that meaning): Service,
 * Version, State, Strategy, Status, LiveGeneration, Workers, ReadyWorkers; -ENOENT for another name. */
int status_append_property(sd_bus_message *m, const StatusView *v, const char *property);
int status_append_generations(sd_bus_message *m, const StatusView *v);
int status_append_workers(sd_bus_message *m, const StatusView *v);
int status_append_listeners(sd_bus_message *m, const StatusView *v);
/* The strategies as `p` (a probe made at `probed_usec`, CLOCK_REALTIME) found them. */
int status_append_probe(sd_bus_message *m, const ProbeResult *p, uint64_t probed_usec);
/* a(sh): the live generation's listeners; -EBUSY when nothing is live. */
int status_append_listener_fds(sd_bus_message *m, const StatusView *v);
