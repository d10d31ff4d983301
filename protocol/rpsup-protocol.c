/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpsup-protocol.h"

const sd_bus_error_map rpsup_error_map[] = {
        SD_BUS_ERROR_MAP(RPSUP_ERROR_PERMISSION_DENIED, EPERM),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_CONFIG_INVALID, EBADMSG),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_ROLLED_BACK, ECANCELED),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_SHUTTING_DOWN, ESHUTDOWN),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_LIMIT, E2BIG),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_NOT_SOAKING, ESRCH),
        SD_BUS_ERROR_MAP(RPSUP_ERROR_FAILED, EIO),
        SD_BUS_ERROR_MAP_END,
};

const char *rpsup_error_name(int error) {
        if (error < 0)
                error = -error;
        for (const sd_bus_error_map *m = rpsup_error_map; m->name; m++)
                if (m->code == error)
                        return m->name;
        if (error == EACCES)
                return RPSUP_ERROR_PERMISSION_DENIED;
        return RPSUP_ERROR_FAILED;
}

int rpsup_control_path(const char *runtime_parent, const char *name, char **ret) {
        char *p;

        if (name) {
                if (!name[0] || strchr(name, '/') || name[0] == '.')
                        return -EINVAL;
                if (asprintf(&p, "%s/%s/%s", runtime_parent, name, RPSUP_CONTROL_SOCKET) < 0)
                        return -ENOMEM;
        } else if (asprintf(&p, "%s/%s", runtime_parent, RPSUP_CONTROL_SOCKET) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int rpsup_connect(const char *socket_path, sd_bus **ret) {
        sd_bus *bus = NULL;
        char *address = NULL;
        int r;

        r = sd_bus_error_add_map(rpsup_error_map);
        if (r < 0)
                return r;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        if (asprintf(&address, "unix:path=%s", socket_path) < 0) {
                sd_bus_unref(bus);
                return -ENOMEM;
        }
        r = sd_bus_set_address(bus, address);
        free(address);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}
