/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "readiness-probe-http.h"
#include "string-util.h"

int probe_target(const Config *c, size_t *ret_index, SocketAddress *ret) {
        for (size_t i = 0; i < c->n_listen; i++) {
                SocketAddress a = c->listen[i].address;

                if (a.type != SOCK_STREAM)
                        continue;
                /* A wildcard address listens on loopback too, the one address that is surely there. */
                if (a.sa.sa_family == AF_INET && a.in.sin_addr.s_addr == htonl(INADDR_ANY))
                        a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr))
                        a.in6.sin6_addr = in6addr_loopback;
                *ret_index = i;
                *ret = a;
                return 0;
        }
        return -ENOENT;
}

const char *probe_target_format(const SocketAddress *a, char *buf, size_t l) {
        return socket_address_format(a, buf, l);
}

int http_probe_request(const char *path, const SocketAddress *target, char **ret, size_t *ret_size) {
        char host[SOCKET_ADDRESS_STRING_MAX];
        char *s;

        if (target->sa.sa_family == AF_INET)
                socket_address_format(target, host, sizeof(host));
        else if (target->sa.sa_family == AF_INET6) {
                char a[INET6_ADDRSTRLEN];
                /* A zone (%eth0) has no place in Host: without escaping; the server needs no zone. */
                inet_ntop(AF_INET6, &target->in6.sin6_addr, a, sizeof(a));
                snprintf(host, sizeof(host), "[%s]:%u", a, ntohs(target->in6.sin6_port));
        } else
                snprintf(host, sizeof(host), "localhost");

        s = strdup_printf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rpsup-probe\r\nAccept: */*\r\n"
                          "Connection: close\r\n\r\n", path, host);
        if (!s)
                return -ENOMEM;
        *ret_size = strlen(s);
        *ret = s;
        return 0;
}

char *probe_sanitize(const char *s, size_t n, char *buf, size_t l) {
        size_t o = 0;

        if (l == 0)
                return buf;
        for (size_t i = 0; i < n; i++) {
                if (o + 1 >= l) {
                        /* Cut: the last three characters say so. */
                        if (l >= 4)
                                memcpy(buf + l - 4, "...", 3);
                        o = l - 1;
                        break;
                }
                buf[o++] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
        }
        buf[o] = 0;
        return buf;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

int http_status_parse(const char *buf, size_t n, bool eof, unsigned *ret_code, char *what, size_t what_size) {
        static const char prefix[] = "HTTP/";
        const size_t np = strlen(prefix);
        const char *nl = memchr(buf, '\n', n);
        size_t line = nl ? (size_t) (nl - buf) : n;
        char reason[PROBE_WHAT_MAX];
        size_t p, r;
        unsigned code;

        if (line > 0 && buf[line - 1] == '\r')
                line--;
        /* What is there must be the start of "HTTP/": else it is not HTTP, and more bytes will not help. */
        if (memcmp(buf, prefix, MIN(n, np)) != 0)
                goto bad;
        if (!nl && !eof)
                return 0;
        /* HTTP/DIGIT[.DIGIT] SP 3DIGIT [SP reason] */
        p = np;
        if (p >= line || !is_digit(buf[p]))
                goto bad;
        p++;
        if (p + 1 < line && buf[p] == '.' && is_digit(buf[p + 1]))
                p += 2;
        if (p + 4 > line || buf[p] != ' ' || !is_digit(buf[p + 1]) || !is_digit(buf[p + 2]) || !is_digit(buf[p + 3]))
                goto bad;
        code = (unsigned) (buf[p + 1] - '0') * 100 + (unsigned) (buf[p + 2] - '0') * 10 + (unsigned) (buf[p + 3] - '0');
        p += 4;
        if (p < line && buf[p] != ' ')
                goto bad;
        if (code < 100)
                goto bad;
        r = p < line ? p + 1 : line;
        probe_sanitize(buf + r, line - r, reason, sizeof(reason) - 16);
        snprintf(what, what_size, "HTTP %u%s%s", code, reason[0] ? " " : "", reason);
        *ret_code = code;
        return 1;

bad: {
        char shown[64];

        if (n == 0)
                snprintf(what, what_size, "no answer");
        else
                snprintf(what, what_size, "an answer that is not HTTP: \"%s\"",
                         probe_sanitize(buf, line, shown, sizeof(shown)));
        return -EBADMSG;
}
}

bool http_status_passes(unsigned code) {
        return code >= 200 && code < 400;
}
