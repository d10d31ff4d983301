/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The little of org.freedesktop.DBus that bus clients (busctl, gdbus) call before anything else, answered
 * on a direct connection: there is no bus daemon, so rpsupd speaks for it (see control-bus.c). */

#include <systemd/sd-bus.h>

#define CONTROL_BUS_NAME "org.freedesktop.DBus"
#define CONTROL_BUS_PATH "/org/freedesktop/DBus"

extern const sd_bus_vtable control_bus_vtable[];
