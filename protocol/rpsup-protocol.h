/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The control interface of rpsupd: names shared by the server (supervisor/control.c) and its clients
 * (rpsupctl). The interface is described in io.rpsup.Supervisor1.xml and CONTROL.md. */

#include <systemd/sd-bus.h>

#define RPSUP_OBJECT_PATH "/io/rpsup/Supervisor1"
#define RPSUP_INTERFACE "io.rpsup.Supervisor1"

/* Files in a service's runtime directory. */
#define RPSUP_CONTROL_SOCKET "control"
#define RPSUP_NOTIFY_SOCKET "notify"
#define RPSUP_STATE_FILE "state"
#define RPSUP_RUNTIME_PARENT_DEFAULT "/run/rpsup"

/* Errors. Each maps to an errno so that C callers can branch on it (rpsup_error_map). */
#define RPSUP_ERROR_PERMISSION_DENIED "io.rpsup.Error.PermissionDenied" /* EPERM */
#define RPSUP_ERROR_BUSY "io.rpsup.Error.Busy"                          /* EBUSY */
#define RPSUP_ERROR_INVALID_ARGUMENT "io.rpsup.Error.InvalidArgument"   /* EINVAL */
#define RPSUP_ERROR_CONFIG_INVALID "io.rpsup.Error.ConfigInvalid"       /* EBADMSG */
#define RPSUP_ERROR_ROLLED_BACK "io.rpsup.Error.RolledBack"             /* ECANCELED */
#define RPSUP_ERROR_SHUTTING_DOWN "io.rpsup.Error.ShuttingDown"         /* ESHUTDOWN */
#define RPSUP_ERROR_LIMIT "io.rpsup.Error.LimitExceeded"                /* E2BIG */
#define RPSUP_ERROR_NOT_SOAKING "io.rpsup.Error.NotSoaking"             /* ESRCH */
#define RPSUP_ERROR_FAILED "io.rpsup.Error.Failed"                      /* EIO */

extern const sd_bus_error_map rpsup_error_map[];

/* The D-Bus error name for an errno, for replies. */
const char *rpsup_error_name(int error);

/* Path of a service's control socket: DIR/NAME/control, or RUNTIME_DIR/control when `name` is NULL. */
int rpsup_control_path(const char *runtime_parent, const char *name, char **ret);

/* Connects to rpsupd's control socket (a direct D-Bus connection, no bus daemon). */
int rpsup_connect(const char *socket_path, sd_bus **ret);
