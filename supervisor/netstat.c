/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "fd-util.h"
#include "netstat.h"

int netstat_read(NetstatCounters *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *names = NULL, *values = NULL;
        size_t n1 = 0, n2 = 0;
        NetstatCounters c = {};
        char *sn, *sv, *name, *value;

        f = fopen("/proc/net/netstat", "re");
        if (!f)
                return -errno;
        /* Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...". */
        while (getline(&names, &n1, f) > 0 && getline(&values, &n2, f) > 0) {
                if (strncmp(names, "TcpExt:", 7) != 0)
                        continue;
                name = strtok_r(names + 7, " \n", &sn);
                value = strtok_r(values + 7, " \n", &sv);
                while (name && value) {
                        unsigned long long v = strtoull(value, NULL, 10);
                        if (streq(name, "ListenOverflows"))
                                c.listen_overflows = v;
                        else if (streq(name, "ListenDrops"))
                                c.listen_drops = v;
                        else if (streq(name, "TCPMigrateReqSuccess"))
                                c.migrate_req_success = v;
                        else if (streq(name, "TCPMigrateReqFailure"))
                                c.migrate_req_failure = v;
                        name = strtok_r(NULL, " \n", &sn);
                        value = strtok_r(NULL, " \n", &sv);
                }
                *ret = c;
                return 0;
        }
        return -ENODATA;
}
