/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A service's configuration: /etc/rpsup/NAME.conf, systemd's INI syntax, [Service] and [Socket]. */

#include <sys/types.h>

#include "macro.h"
#include "socket-address.h"
#include "steering-policy.h"
#include "strategy-kind.h"
#include "time-util.h"

typedef enum ReadyMode {
        READY_NOTIFY,
        READY_EXEC,
        _READY_MAX,
        _READY_INVALID = -EINVAL,
} ReadyMode;

/* ReadyProbe=: how a worker proves it serves before its generation takes connections. */
typedef enum ProbeKind {
        PROBE_NONE,
        PROBE_TCP,  /* a connection to the worker's listener is accepted (and answered or closed) by it */
        PROBE_HTTP, /* an HTTP/1.1 GET of probe_path is answered 2xx or 3xx by it */
        PROBE_EXEC, /* a command, run with the worker's RPSUP_* environment, exits 0 */
        _PROBE_KIND_MAX,
        _PROBE_KIND_INVALID = -EINVAL,
} ProbeKind;

typedef enum RestartMode {
        RESTART_NO,
        RESTART_ON_FAILURE,
        RESTART_ALWAYS,
        _RESTART_MAX,
        _RESTART_INVALID = -EINVAL,
} RestartMode;

typedef struct ListenSpec {
        SocketAddress address; /* .type is SOCK_STREAM for ListenStream=, SOCK_DGRAM for ListenDatagram= */
        char *text;            /* as written */
        unsigned line;         /* where, for errors */
} ListenSpec;

typedef struct Config {
        unsigned n_ref;
        char *path;
        char *service;
        char *source;        /* the text it was parsed from (a reexec that fails goes back with it) */
        size_t source_size;

        /* [Service] */
        char *exec_start;    /* as written */
        char **exec_words;   /* split and unquoted; $VARS expand at spawn time */
        char *exec_path;     /* the executable, resolved */
        unsigned workers;
        StrategyKind strategy;
        ReadyMode ready;
        usec_t ready_timeout;
        int kill_signal;
        usec_t stop_timeout;
        usec_t watchdog;     /* 0: off */
        usec_t stall;        /* USEC_INFINITY: auto; 0: off */
        usec_t drain;        /* USEC_INFINITY: auto */
        RestartMode restart;
        char **environment;
        char *user, *group;
        char *user_name, *home, *shell;  /* of User=, from the user database */
        gid_t *groups;                   /* User='s supplementary groups (with Group= or its own as the
                                          * primary one), resolved here: not in the event loop, not in a child */
        size_t n_groups;
        uid_t uid;
        gid_t gid;
        char *working_directory;
        bool working_directory_missing_ok;
        uint64_t capability_bounding_set; /* CapabilityBoundingSet=, with AmbientCapabilities=; default: none */
        uint64_t ambient_capabilities;    /* AmbientCapabilities= */
        bool no_new_privileges;           /* NoNewPrivileges= */

        /* Health gates. */
        ProbeKind probe;          /* ReadyProbe= */
        char *probe_text;         /* ReadyProbe= as written */
        char *probe_path;         /* http: the request target, "/..." */
        char **probe_argv;        /* exec: split and unquoted; $VARS expand when it runs */
        char *probe_exec_path;    /* exec: the executable, resolved */
        usec_t probe_timeout;     /* ReadyProbeTimeoutSec=: one attempt */
        usec_t probe_interval;    /* ReadyProbeIntervalSec=: between attempts */
        unsigned probe_passes;    /* ReadyProbePasses=: consecutive passes to be ready */
        unsigned probe_failures;  /* ReadyProbeFailures=: consecutive failures that fail the worker */
        usec_t soak;              /* SoakSec=: 0: none */
        unsigned canary;          /* Canary=: percent of new connections for a soaking generation; 0: all */
        SteeringPolicy steering;  /* Steering=: how new connections pick a worker (drain, migrate) */
        /* Datagram flows (drain, migrate): FlowTableSize= flows remembered, each keeps reaching the worker that
         * took its first datagram while that worker lives; 0: off. A retiring worker whose flows sent nothing
         * for FlowIdleSec= is idle. */
        uint32_t flow_table_size;
        usec_t flow_idle;
        /* FileDescriptorStoreMax=: fds a worker slot may keep with FDSTORE=1 (handed to the slot's next
         * worker); 0: FDSTORE=1 is refused. */
        unsigned fdstore_max;

        /* [Socket] */
        ListenSpec *listen;
        size_t n_listen;
        unsigned backlog;
        char *fdname;
} Config;

#define CONFIG_DIR "/etc/rpsup"

/* Reads and validates a config file. `service` is the service name (used for %i and the default
 * FileDescriptorName=). On failure returns a negative errno and sets *ret_error to "FILE:LINE: Key=: what
 * is wrong" (caller frees). Only a regular file is read, and nothing blocks (a FIFO is refused). Does not
 * log. Errors are valid UTF-8. */
int config_load(const char *path, const char *service, Config **ret, char **ret_error);
/* The same for a config in memory (`size` bytes, which need no NUL at the end); `path` is only used in
 * messages. */
int config_parse_buffer(const char *data, size_t size, const char *path, const char *service, Config **ret,
                        char **ret_error);

Config *config_ref(Config *c);
Config *config_unref(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_unref);

const char *restart_mode_to_string(RestartMode m);
const char *probe_kind_to_string(ProbeKind k);

/* systemd's rules for FileDescriptorName=/FDNAME=: printable ASCII except ':', 1..255 characters. */
bool fdname_is_valid(const char *s);
