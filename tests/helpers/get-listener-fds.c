/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Test helper: get-listener-fds [--hold] CONTROL_SOCKET. Calls io.rpsup.Supervisor1.GetListenerFds on rpsupd's
 * control socket (a direct D-Bus connection) and prints, for each fd received, its name, whether it is a
 * listening socket, and the address it is bound to: "NAME listening ADDRESS" or "NAME not-listening". An
 * error reply is printed as "error NAME: MESSAGE" with exit status 1. With --hold it keeps a copy of every fd
 * it received, prints "holding", and exits when its stdin ends: a process outside the service that holds
 * listeners. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "rpsup-protocol.h"

static void describe(const char *name, int fd) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof(ss);
        int listening = 0;
        socklen_t ll = sizeof(listening);
        char host[INET6_ADDRSTRLEN] = "";

        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || !listening ||
            getsockname(fd, (struct sockaddr *) &ss, &l) < 0) {
                printf("%s not-listening\n", name);
                return;
        }
        if (ss.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                printf("%s listening %s:%u\n", name, host, ntohs(in->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                printf("%s listening [%s]:%u\n", name, host, ntohs(in6->sin6_port));
        } else
                printf("%s listening %s\n", name, ((struct sockaddr_un *) &ss)->sun_path);
}

int main(int argc, char *argv[]) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        const char *name;
        int hold = argc == 3 && strcmp(argv[1], "--hold") == 0;
        int fd, r;

        if (argc != 2 + hold) {
                fprintf(stderr, "usage: get-listener-fds [--hold] CONTROL_SOCKET\n");
                return 2;
        }
        argv += hold;
        r = rpsup_connect(argv[1], &bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", argv[1], strerror(-r));
                return 3;
        }
        r = sd_bus_call_method(bus, NULL, RPSUP_OBJECT_PATH, RPSUP_INTERFACE, "GetListenerFds", &error, &reply, NULL);
        if (r < 0) {
                printf("error %s: %s\n", error.name ?: "", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                sd_bus_close_unref(bus);
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sh)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sh)", &name, &fd)) > 0) {
                describe(name, fd);
                if (hold && fcntl(fd, F_DUPFD_CLOEXEC, 3) < 0)
                        r = -1;
        }
        sd_bus_message_unref(reply);
        sd_bus_close_unref(bus);
        if (hold && r >= 0) {
                char c;

                printf("holding\n");
                fflush(stdout);
                while (read(STDIN_FILENO, &c, 1) > 0)
                        ;
        }
        return r < 0 ? 1 : 0;
}
