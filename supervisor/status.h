/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the control interface reports: the service, its generations, workers and listeners as D-Bus
 * records (a{sv}), and Prometheus metrics. Read-only views of the manager's state. */

#include <systemd/sd-bus.h>

#include "probe.h"

typedef struct Manager Manager;

int status_append_service(sd_bus_message *m, Manager *manager);
int status_append_generations(sd_bus_message *m, Manager *manager);
int status_append_workers(sd_bus_message *m, Manager *manager);
int status_append_listeners(sd_bus_message *m, Manager *manager);
/* The strategies as `p` (a probe made at `probed_usec`, CLOCK_REALTIME) found them. */
int status_append_probe(sd_bus_message *m, const ProbeResult *p, uint64_t probed_usec);
/* a(sh): the live generation's listeners; -EBUSY when nothing is live. */
int status_append_listener_fds(sd_bus_message *m, Manager *manager);
int status_metrics(Manager *manager, char **ret);
