/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsupd NAME | rpsupd --config PATH: supervise one service's listeners and workers. */

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "manager.h"
#include "reexec.h"
#include "string-util.h"

static const char *arg_config;
static const char *arg_name;
static bool arg_check;

static void help(void) {
        printf("rpsupd [OPTIONS] NAME\n"
               "rpsupd [OPTIONS] --config PATH [NAME]\n\n"
               "Holds the listening sockets of one service and runs its workers on them, moving\n"
               "traffic between worker generations without losing a connection.\n\n"
               "  -c --config PATH   Read PATH instead of %s/NAME.conf\n"
               "     --check        Check the config and exit\n"
               "  -v --verbose      Log debug messages\n"
               "  -h --help         Show this help\n"
               "     --version      Show the version\n\n"
               "Signals: SIGHUP reloads, SIGUSR2 executes rpsupd's binary again (reexec),\n"
               "SIGTERM and SIGINT stop. See rpsupd(8).\n", RPSUP_CONFIG_DIR);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CHECK };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check", no_argument, NULL, ARG_CHECK },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:vh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CHECK:
                        arg_check = true;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("rpsupd %s\n", RPSUP_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                arg_name = argv[optind++];
        if (optind < argc) {
                log_error("Unexpected argument \"%s\". See rpsupd --help.", argv[optind]);
                return -EINVAL;
        }
        if (!arg_name && !arg_config) {
                log_error("No service given: rpsupd NAME, or rpsupd --config PATH. See rpsupd --help.");
                return -EINVAL;
        }
        return 1;
}

/* The service name from a config path: its file name without ".conf". */
static char *name_from_path(const char *path) {
        const char *base = strrchr(path, '/');
        size_t n;

        base = base ? base + 1 : path;
        n = strlen(base);
        if (n > 5 && streq(base + n - 5, ".conf"))
                n -= 5;
        return n > 0 ? strndup(base, n) : strdup("rpsup");
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_unrefp) Config *c = NULL;
        _cleanup_free_ char *path = NULL, *name = NULL, *error = NULL;
        int r, reexec;

        /* First, before anything opens an fd: what a reexec passed goes to 3, 4, ... */
        reexec = reexec_receive(argc, argv);
        log_setup("rpsupd");
        if (reexec < 0) {
                log_error_errno(reexec, "Cannot take the file descriptors passed by the previous image: %m");
                return 1;
        }
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        name = arg_name ? strdup(arg_name) : name_from_path(arg_config);
        if (arg_config)
                path = strdup(arg_config);
        else if (asprintf(&path, "%s/%s.conf", RPSUP_CONFIG_DIR, arg_name) < 0)
                path = NULL;
        if (!name || !path)
                return log_oom(), 1;
        if (strchr(name, '/') || name[0] == '.' || !name[0]) {
                log_error("\"%s\" is not a valid service name.", name);
                return 2;
        }
        log_set_prefix(name);

        /* A bad config ends here, before any socket is touched. Back after a reexec's refusal, this image
         * takes over with the config it ran with (the one on disk may be why the new image refused). */
        r = reexec_load_config(path, name, &c, &error);
        if (r < 0) {
                log_error("%s", error ?: "Failed to load the config");
                if (reexec_may_refuse()) {
                        _cleanup_free_ char *why = strdup_printf("the config cannot be loaded: %s",
                                                                 error ?: strerror(-r));
                        (void) reexec_refuse(why ?: "the config cannot be loaded", NULL);
                }
                return 1;
        }
        if (arg_check) {
                printf("%s: OK (%u worker%s, %zu listening address%s)\n", path, c->workers, c->workers == 1 ? "" : "s",
                       c->n_listen, c->n_listen == 1 ? "" : "es");
                return 0;
        }

        (void) reexec_setup(); /* logged: a reexec is refused then */
        r = manager_new(&(ManagerOptions) { .service_name = name, .config_path = path }, c, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                if (reexec_may_refuse()) {
                        _cleanup_free_ char *why = strdup_printf("it failed to set up: %s", strerror(-r));
                        (void) reexec_refuse(why ?: "it failed to set up", NULL);
                }
                return 1;
        }
        r = manager_start(m);
        if (r < 0)
                return 1;
        r = manager_run(m);
        return r < 0 ? 1 : r;
}
