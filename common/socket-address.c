/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "parse-util.h"
#include "path-util.h"
#include "socket-address.h"

static int parse_port(const char *s, uint16_t *ret) {
        unsigned p;

        if (parse_uint(s, &p) < 0 || p == 0 || p > 65535)
                return -EINVAL;
        *ret = (uint16_t) p;
        return 0;
}

int socket_address_parse(const char *s, int type, SocketAddress *ret) {
        SocketAddress a = { .type = type };
        uint16_t port;

        if (isempty(s))
                return -EINVAL;

        if (s[0] == '/' || s[0] == '@') {
                char path[sizeof(a.un.sun_path) * 2];
                size_t n = strlen(s);

                if (s[0] == '/') {
                        /* One file, one spelling: "//run/x.sock" and "/run/./x.sock" are "/run/x.sock", so that
                         * a duplicate is seen as one. ".." is refused: only the file system can resolve it. */
                        if (n >= sizeof(path) || path_has_dot_dot(s))
                                return -EINVAL;
                        memcpy(path, s, n + 1);
                        s = path_simplify(path);
                        n = strlen(s);
                }
                /* A path needs its terminating NUL in sun_path; an abstract name does not ('@' becomes the
                 * leading NUL), so it may use all of sun_path after that byte, as in systemd. */
                if (n > sizeof(a.un.sun_path) || (s[0] == '/' && n >= sizeof(a.un.sun_path)) || n < 2)
                        return -EINVAL;
                a.un.sun_family = AF_UNIX;
                memcpy(a.un.sun_path, s, n);
                if (s[0] == '@') {
                        a.un.sun_path[0] = 0; /* abstract: no terminating NUL is part of the name */
                        a.size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
                } else
                        a.size = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
                *ret = a;
                return 0;
        }

        if (s[0] == '[') {
                const char *e = strchr(s, ']');
                char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
                char *pct;

                if (!e || e[1] != ':' || (size_t) (e - s - 1) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, (size_t) (e - s - 1));
                host[e - s - 1] = 0;
                if (parse_port(e + 2, &port) < 0)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                pct = strchr(host, '%');
                if (pct) {
                        unsigned idx;
                        *pct = 0;
                        idx = if_nametoindex(pct + 1);
                        if (idx == 0 && parse_uint(pct + 1, &idx) < 0)
                                return -ENODEV;
                        a.in6.sin6_scope_id = idx;
                }
                if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.size = sizeof(a.in6);
                *ret = a;
                return 0;
        }

        const char *colon = strrchr(s, ':');
        if (!colon) {
                if (parse_port(s, &port) < 0)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.in6.sin6_addr = in6addr_any;
                a.size = sizeof(a.in6);
                *ret = a;
                return 0;
        }

        char host[INET_ADDRSTRLEN];
        if ((size_t) (colon - s) >= sizeof(host) || parse_port(colon + 1, &port) < 0)
                return -EINVAL;
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = 0;
        a.in.sin_family = AF_INET;
        a.in.sin_port = htons(port);
        if (inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
                return -EINVAL;
        a.size = sizeof(a.in);
        *ret = a;
        return 0;
}

const char *socket_address_format(const SocketAddress *a, char *buf, size_t l) {
        char host[INET6_ADDRSTRLEN];

        switch (a->sa.sa_family) {
        case AF_INET:
                inet_ntop(AF_INET, &a->in.sin_addr, host, sizeof(host));
                snprintf(buf, l, "%s:%u", host, ntohs(a->in.sin_port));
                break;
        case AF_INET6:
                inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof(host));
                if (a->in6.sin6_scope_id != 0)
                        snprintf(buf, l, "[%s%%%u]:%u", host, a->in6.sin6_scope_id, ntohs(a->in6.sin6_port));
                else
                        snprintf(buf, l, "[%s]:%u", host, ntohs(a->in6.sin6_port));
                break;
        case AF_UNIX: {
                size_t n = a->size > offsetof(struct sockaddr_un, sun_path)
                                   ? a->size - offsetof(struct sockaddr_un, sun_path)
                                   : 0;
                if (n > 0 && a->un.sun_path[0] == 0)
                        snprintf(buf, l, "@%.*s", (int) (n - 1), a->un.sun_path + 1);
                else
                        snprintf(buf, l, "%.*s", (int) strnlen(a->un.sun_path, n), a->un.sun_path);
                break;
        }
        default:
                snprintf(buf, l, "(family %d)", a->sa.sa_family);
        }
        return buf;
}

const char *socket_type_name(int type) {
        return type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram" : "other";
}

bool socket_address_equal(const SocketAddress *a, const SocketAddress *b) {
        if (a->type != b->type || a->sa.sa_family != b->sa.sa_family)
                return false;
        switch (a->sa.sa_family) {
        case AF_INET:
                return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        case AF_INET6:
                return a->in6.sin6_port == b->in6.sin6_port &&
                       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0 &&
                       a->in6.sin6_scope_id == b->in6.sin6_scope_id;
        case AF_UNIX: {
                char x[SOCKET_ADDRESS_STRING_MAX], y[SOCKET_ADDRESS_STRING_MAX];
                return streq(socket_address_format(a, x, sizeof(x)), socket_address_format(b, y, sizeof(y)));
        }
        default:
                return false;
        }
}

bool socket_address_is_inet(const SocketAddress *a) {
        return a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6;
}

int socket_address_from_fd(int fd, SocketAddress *ret) {
        SocketAddress a = {};
        socklen_t l = sizeof(a.type);

        a.size = sizeof(a.storage);
        if (getsockname(fd, &a.sa, &a.size) < 0)
                return -errno;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &a.type, &l) < 0)
                return -errno;
        *ret = a;
        return 0;
}

uint32_t socket_address_hash(const SocketAddress *a) {
        char buf[SOCKET_ADDRESS_STRING_MAX + 16], addr[SOCKET_ADDRESS_STRING_MAX];
        uint32_t h = 2166136261u;

        socket_address_format(a, addr, sizeof(addr));
        snprintf(buf, sizeof(buf), "%s %s", socket_type_name(a->type), addr);
        for (const char *p = buf; *p; p++) {
                h ^= (unsigned char) *p;
                h *= 16777619u;
        }
        return h;
}
