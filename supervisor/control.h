/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server side of the control interface io.rpsup.Supervisor1 (protocol/): a direct D-Bus connection
 * per client on the "control" socket, served with sd-bus on rpsupd's event loop. It reads the state
 * through a StatusView and changes it through the handlers: it does not see the manager. */

#include <systemd/sd-event.h>

#include "control-status.h"
#include "macro.h"
#include "service.h"

typedef struct ControlServer ControlServer;

typedef struct ControlHandlers {
        /* Fills in what the status methods report, as of now. */
        void (*view)(void *userdata, StatusView *ret);
        /* The operations; each calls `done` exactly once. `by` says who asked, for the log and status. */
        void (*reload)(void *userdata, const ReloadOptions *o, ServiceDone done, void *done_userdata);
        void (*scale)(void *userdata, unsigned n, ServiceDone done, void *done_userdata);
        /* During a soak: end it now (promote), or flip back to the warm generation (rollback). */
        void (*promote)(void *userdata, const char *by, ServiceDone done, void *done_userdata);
        void (*rollback)(void *userdata, const char *by, ServiceDone done, void *done_userdata);
        /* Switches the steering policy at once; `by` is the caller's uid. On failure *ret_error may say why. */
        int (*steer)(void *userdata, SteeringPolicy policy, uid_t by, char **ret_error);
        /* Starts (or restarts) a shadow policy, or stops it (shadow < 0); `by` is the caller's uid. */
        int (*steer_shadow)(void *userdata, SteeringPolicy shadow, uid_t by, char **ret_error);
        /* Schedules a reexec (rpsupd executes its binary again, in the same process) once the answer is out:
         * *ret_seq is its number, which status reports with its outcome. On refusal *ret_error says why. */
        int (*reexec)(void *userdata, uint64_t *ret_seq, char **ret_error);
} ControlHandlers;

/* Listens on path (or adopts `fd`, if >= 0, already listening). `handlers` and `userdata` must outlive
 * the server. */
int control_server_new(sd_event *event, const ControlHandlers *handlers, void *userdata, const char *path, int fd,
                       ControlServer **ret);
/* The socket file at `path` (rpsupd bound it: nothing will take it over) is removed when the server is
 * freed, if it is still the same file: a socket left behind would look like a service to clients. */
int control_server_remove_at_exit(ControlServer *cs, const char *path);
ControlServer *control_server_free(ControlServer *cs);
int control_server_fd(ControlServer *cs);
