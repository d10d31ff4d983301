/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* reuseport-exec: the plain SO_REUSEPORT baseline of the benchmarks, without rpsupd.
 *
 *     reuseport-exec [--backlog N] [--name NAME] [--datagram] HOST:PORT COMMAND [ARG...]
 *
 * Creates a TCP listener (with --datagram: a UDP socket) of its own on HOST:PORT with SO_REUSEPORT (so that every process started this way
 * joins the same reuseport group and gets its own accept queue), puts it at fd 3 and execs COMMAND with
 * LISTEN_FDS=1, LISTEN_PID=<its own pid> and LISTEN_FDNAMES=NAME: socket activation as systemd does it, one
 * listener per process, nothing held by anyone else. When the process closes the listener (or exits), the
 * listener and its accept queue are gone, exactly as with servers that each open their own reuseport
 * socket. */

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_FD 3

static int arg_backlog = 4096;
static const char *arg_name = "web";
static int arg_type = SOCK_STREAM;

static void help(void) {
        printf("reuseport-exec [--backlog N] [--name NAME] HOST:PORT COMMAND [ARG...]\n\n"
               "Listen on HOST:PORT with a SO_REUSEPORT socket of our own, pass it as fd 3 (LISTEN_FDS=1)\n"
               "and execute COMMAND.\n\n"
               "     --backlog N   listen(2) backlog (default: 4096)\n"
               "     --name NAME   LISTEN_FDNAMES (default: web)\n"
               "     --datagram    a UDP socket instead of a TCP listener\n"
               "  -h --help        Show this help\n");
}

static int split_address(const char *s, char *host, size_t size, const char **port) {
        const char *colon;
        size_t n;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');

                if (!end || end[1] != ':')
                        return -EINVAL;
                n = (size_t) (end - s - 1);
                if (n >= size)
                        return -EINVAL;
                memcpy(host, s + 1, n);
                *port = end + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - s);
                if (n >= size)
                        return -EINVAL;
                memcpy(host, s, n);
                *port = colon + 1;
        }
        host[n] = 0;
        return **port ? 0 : -EINVAL;
}

static int listen_reuseport(const char *address) {
        struct addrinfo hints = { .ai_socktype = arg_type, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        const char *port;
        char host[256];
        int fd, one = 1, r;

        if (split_address(address, host, sizeof(host), &port) < 0) {
                fprintf(stderr, "reuseport-exec: \"%s\" is not HOST:PORT or [HOST]:PORT\n", address);
                return -1;
        }
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                fprintf(stderr, "reuseport-exec: %s: %s\n", address, gai_strerror(r));
                return -1;
        }
        fd = socket(ai->ai_family, arg_type, 0); /* no CLOEXEC: it is for the command */
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            (arg_type == SOCK_STREAM && listen(fd, arg_backlog) < 0)) {
                fprintf(stderr, "reuseport-exec: cannot listen on %s: %m\n", address);
                freeaddrinfo(ai);
                return -1;
        }
        freeaddrinfo(ai);
        return fd;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "backlog", required_argument, NULL, 'b' },
                { "name", required_argument, NULL, 'n' },
                { "datagram", no_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        char pid[32];
        int c, fd;

        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'b':
                        arg_backlog = atoi(optarg);
                        if (arg_backlog <= 0) {
                                fprintf(stderr, "reuseport-exec: bad backlog \"%s\"\n", optarg);
                                return 2;
                        }
                        break;
                case 'n':
                        arg_name = optarg;
                        break;
                case 'd':
                        arg_type = SOCK_DGRAM;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (argc - optind < 2) {
                fprintf(stderr, "reuseport-exec: HOST:PORT and COMMAND are required; see --help\n");
                return 2;
        }

        fd = listen_reuseport(argv[optind]);
        if (fd < 0)
                return 1;
        if (fd != LISTEN_FD) {
                if (dup2(fd, LISTEN_FD) < 0) {
                        fprintf(stderr, "reuseport-exec: dup2() failed: %m\n");
                        return 1;
                }
                close(fd);
        }

        snprintf(pid, sizeof(pid), "%d", (int) getpid()); /* exec keeps the pid */
        if (setenv("LISTEN_FDS", "1", 1) < 0 || setenv("LISTEN_PID", pid, 1) < 0 ||
            setenv("LISTEN_FDNAMES", arg_name, 1) < 0) {
                fprintf(stderr, "reuseport-exec: setenv() failed: %m\n");
                return 1;
        }
        execvp(argv[optind + 1], argv + optind + 1);
        fprintf(stderr, "reuseport-exec: cannot execute %s: %m\n", argv[optind + 1]);
        return 127;
}
