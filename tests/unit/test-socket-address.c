/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ListenStream=/ListenDatagram= addresses (supervisor/socket-address.c): parsing, formatting,
 * comparison and the hash that names stored fds. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket-address.h"

static SocketAddress parse_ok(const char *s, int type) {
        SocketAddress a;
        int r;

        memset(&a, 0xaa, sizeof(a));
        r = socket_address_parse(s, type, &a);
        if (r < 0)
                print_error("socket_address_parse(\"%s\"): %d\n", s, r);
        assert_int_equal(r, 0);
        assert_int_equal(a.type, type);
        return a;
}

static void check_format(const SocketAddress *a, const char *want) {
        char buf[SOCKET_ADDRESS_STRING_MAX];

        assert_string_equal(socket_address_format(a, buf, sizeof(buf)), want);
}

/* s parses, formats as `canonical`, and that parses back to an equal address. */
static void check_round_trip(const char *s, const char *canonical) {
        char buf[SOCKET_ADDRESS_STRING_MAX];
        SocketAddress a = parse_ok(s, SOCK_STREAM), b;

        assert_ptr_equal(socket_address_format(&a, buf, sizeof(buf)), buf);
        assert_string_equal(buf, canonical);
        b = parse_ok(buf, SOCK_STREAM);
        assert_true(socket_address_equal(&a, &b));
        assert_int_equal(a.size, b.size);
        assert_true(socket_address_hash(&a) == socket_address_hash(&b));
}

static void check_invalid(const char *s) {
        SocketAddress a;
        int r;

        memset(&a, 0xaa, sizeof(a));
        r = socket_address_parse(s, SOCK_STREAM, &a);
        if (r != -EINVAL)
                print_error("socket_address_parse(\"%s\") = %d, expected -EINVAL\n", s, r);
        assert_int_equal(r, -EINVAL);
        /* Nothing is stored on failure. */
        assert_int_equal(a.type, (int) 0xaaaaaaaa);
}

static void test_port_only(void **state) {
        SocketAddress a = parse_ok("8080", SOCK_STREAM);

        /* The IPv6 any address (dual stack). */
        assert_int_equal(a.sa.sa_family, AF_INET6);
        assert_int_equal(ntohs(a.in6.sin6_port), 8080);
        assert_memory_equal(&a.in6.sin6_addr, &in6addr_any, sizeof(struct in6_addr));
        assert_int_equal(a.in6.sin6_scope_id, 0);
        assert_int_equal(a.size, sizeof(struct sockaddr_in6));
        assert_true(socket_address_is_inet(&a));
        check_format(&a, "[::]:8080");
        check_round_trip("8080", "[::]:8080");
        check_round_trip("1", "[::]:1");
        check_round_trip("65535", "[::]:65535");
}

static void test_ipv4(void **state) {
        SocketAddress a = parse_ok("127.0.0.1:8080", SOCK_STREAM);

        assert_int_equal(a.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(a.in.sin_port), 8080);
        assert_int_equal(ntohl(a.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(a.size, sizeof(struct sockaddr_in));
        assert_true(socket_address_is_inet(&a));
        check_round_trip("127.0.0.1:8080", "127.0.0.1:8080");
        check_round_trip("0.0.0.0:53", "0.0.0.0:53");
        check_round_trip("192.168.1.254:65535", "192.168.1.254:65535");

        a = parse_ok("10.0.0.1:53", SOCK_DGRAM);
        assert_int_equal(a.type, SOCK_DGRAM);
        check_format(&a, "10.0.0.1:53");
}

static void test_ipv6(void **state) {
        SocketAddress a = parse_ok("[::1]:8080", SOCK_STREAM);
        struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;

        assert_int_equal(a.sa.sa_family, AF_INET6);
        assert_int_equal(ntohs(a.in6.sin6_port), 8080);
        assert_memory_equal(&a.in6.sin6_addr, &lo, sizeof(lo));
        assert_int_equal(a.size, sizeof(struct sockaddr_in6));
        check_round_trip("[::1]:8080", "[::1]:8080");
        check_round_trip("[::]:80", "[::]:80");
        check_round_trip("[2001:db8::42]:443", "[2001:db8::42]:443");
        /* Formatting is canonical. */
        check_round_trip("[2001:0DB8:0:0::0042]:443", "[2001:db8::42]:443");
        check_round_trip("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80");
}

static void test_ipv6_scope(void **state) {
        SocketAddress a = parse_ok("[fe80::1%7]:80", SOCK_STREAM);
        unsigned lo = if_nametoindex("lo");

        assert_int_equal(a.in6.sin6_scope_id, 7);
        check_format(&a, "[fe80::1%7]:80");
        check_round_trip("[fe80::1%7]:80", "[fe80::1%7]:80");

        if (lo > 0) {
                char want[64];

                a = parse_ok("[fe80::1%lo]:80", SOCK_STREAM);
                assert_int_equal(a.in6.sin6_scope_id, lo);
                snprintf(want, sizeof(want), "[fe80::1%%%u]:80", lo);
                check_round_trip("[fe80::1%lo]:80", want);
        }

        assert_int_equal(socket_address_parse("[fe80::1%nosuchif0]:80", SOCK_STREAM, &a), -ENODEV);
        assert_int_equal(socket_address_parse("[fe80::1%]:80", SOCK_STREAM, &a), -ENODEV);
}

static void test_unix_path(void **state) {
        SocketAddress a = parse_ok("/run/rpsup/web.sock", SOCK_STREAM);

        assert_int_equal(a.sa.sa_family, AF_UNIX);
        assert_string_equal(a.un.sun_path, "/run/rpsup/web.sock");
        /* The terminating NUL is part of the address. */
        assert_int_equal(a.size, offsetof(struct sockaddr_un, sun_path) + strlen("/run/rpsup/web.sock") + 1);
        assert_false(socket_address_is_inet(&a));
        check_round_trip("/run/rpsup/web.sock", "/run/rpsup/web.sock");
        check_round_trip("/x", "/x");

        a = parse_ok("/run/dgram", SOCK_DGRAM);
        check_format(&a, "/run/dgram");
}

static void test_unix_abstract(void **state) {
        SocketAddress a = parse_ok("@rpsup-web", SOCK_STREAM);

        assert_int_equal(a.sa.sa_family, AF_UNIX);
        assert_int_equal(a.un.sun_path[0], 0);
        assert_memory_equal(a.un.sun_path + 1, "rpsup-web", strlen("rpsup-web"));
        /* No terminating NUL in an abstract address. */
        assert_int_equal(a.size, offsetof(struct sockaddr_un, sun_path) + 1 + strlen("rpsup-web"));
        assert_false(socket_address_is_inet(&a));
        check_round_trip("@rpsup-web", "@rpsup-web");
        check_round_trip("@x", "@x");
}

static void test_unix_length_limits(void **state) {
        const size_t max = sizeof(((struct sockaddr_un *) NULL)->sun_path); /* 108 */
        char s[256];
        SocketAddress a;

        /* A path: at most max - 1 characters, as its NUL must fit. */
        memset(s, 'p', sizeof(s));
        s[0] = '/';
        s[max - 1] = 0;
        a = parse_ok(s, SOCK_STREAM);
        assert_int_equal(a.size, sizeof(struct sockaddr_un));
        check_round_trip(s, s);
        s[max - 1] = 'p';
        s[max] = 0;
        check_invalid(s);

        /* An abstract name: '@' stands for the leading NUL, the name may fill the rest of sun_path. */
        memset(s, 'a', sizeof(s));
        s[0] = '@';
        s[max] = 0;
        a = parse_ok(s, SOCK_STREAM);
        assert_int_equal(a.size, sizeof(struct sockaddr_un));
        check_round_trip(s, s);
        s[max] = 'a';
        s[max + 1] = 0;
        check_invalid(s);
}

static void test_invalid(void **state) {
        static const char *const bad[] = {
                "",
                /* ports */
                "0", "65536", "99999", "-1", "+80", " 80", "80 ", "http", "8o",
                "127.0.0.1:0", "127.0.0.1:65536", "[::1]:0", "[::1]:65536",
                /* missing port */
                "127.0.0.1", "127.0.0.1:", "[::1]", "[::1]:", "[::1]80",
                /* bad IPv4 */
                "256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "localhost:80", ":80", "1.2.3.4 :80",
                /* bad or unterminated IPv6 */
                "[::1:80", "[zz::1]:80", "[]:80", "[1.2.3.4]:80", "::1:80",
                /* Unix */
                "/", "@",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                check_invalid(bad[i]);

        SocketAddress a;
        assert_int_equal(socket_address_parse(NULL, SOCK_STREAM, &a), -EINVAL);
}

static void test_equal(void **state) {
        SocketAddress a, b;

        /* Different spellings of one address. */
        a = parse_ok("8080", SOCK_STREAM);
        b = parse_ok("[::]:8080", SOCK_STREAM);
        assert_true(socket_address_equal(&a, &b));
        assert_true(socket_address_equal(&b, &a));
        a = parse_ok("[2001:db8::1]:80", SOCK_STREAM);
        b = parse_ok("[2001:DB8:0::1]:80", SOCK_STREAM);
        assert_true(socket_address_equal(&a, &b));

        /* Same address, other type. */
        a = parse_ok("8080", SOCK_STREAM);
        b = parse_ok("8080", SOCK_DGRAM);
        assert_false(socket_address_equal(&a, &b));

        /* Other port, address, family, scope. */
        static const char *const pairs[][2] = {
                { "8080", "8081" },
                { "127.0.0.1:80", "127.0.0.2:80" },
                { "127.0.0.1:80", "127.0.0.1:81" },
                { "127.0.0.1:80", "[::ffff:127.0.0.1]:80" },
                { "0.0.0.0:80", "80" },
                { "[::1]:80", "[::2]:80" },
                { "[fe80::1%1]:80", "[fe80::1%2]:80" },
                { "[fe80::1%1]:80", "[fe80::1]:80" },
                { "/run/a", "/run/b" },
                { "/run/a", "/run/ab" },
                { "/a", "@a" },
                { "@a", "@ab" },
                { "/run/a", "127.0.0.1:80" },
        };
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                a = parse_ok(pairs[i][0], SOCK_STREAM);
                b = parse_ok(pairs[i][1], SOCK_STREAM);
                if (socket_address_equal(&a, &b))
                        print_error("\"%s\" and \"%s\" compare equal\n", pairs[i][0], pairs[i][1]);
                assert_false(socket_address_equal(&a, &b));
                assert_false(socket_address_equal(&b, &a));
                assert_true(socket_address_equal(&a, &a));
                assert_true(socket_address_equal(&b, &b));
        }
}

static void test_hash(void **state) {
        static const char *const addrs[] = {
                "8080", "8081", "127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080", "/run/a", "/run/b", "@a",
        };
        uint32_t h[ELEMENTSOF(addrs)][2];
        SocketAddress a, b;

        /* It names fds kept in systemd's fd store across rpsupd restarts and upgrades: pinned. */
        a = parse_ok("8080", SOCK_STREAM);
        assert_int_equal(socket_address_hash(&a), 0x5645ab6fu);
        a = parse_ok("8080", SOCK_DGRAM);
        assert_int_equal(socket_address_hash(&a), 0x4a813560u);
        a = parse_ok("127.0.0.1:8080", SOCK_STREAM);
        assert_int_equal(socket_address_hash(&a), 0x54c278f6u);
        a = parse_ok("@web", SOCK_STREAM);
        assert_int_equal(socket_address_hash(&a), 0x03615de9u);

        /* Stable: the same for equal addresses however written. */
        a = parse_ok("8080", SOCK_STREAM);
        b = parse_ok("[::]:8080", SOCK_STREAM);
        assert_int_equal(socket_address_hash(&a), socket_address_hash(&b));
        assert_int_equal(socket_address_hash(&a), socket_address_hash(&a));

        /* Different for different addresses and types. */
        for (size_t i = 0; i < ELEMENTSOF(addrs); i++) {
                a = parse_ok(addrs[i], SOCK_STREAM);
                b = parse_ok(addrs[i], SOCK_DGRAM);
                h[i][0] = socket_address_hash(&a);
                h[i][1] = socket_address_hash(&b);
                assert_true(h[i][0] != h[i][1]);
        }
        for (size_t i = 0; i < ELEMENTSOF(addrs); i++)
                for (size_t j = 0; j < ELEMENTSOF(addrs); j++)
                        for (int t = 0; t < 2; t++)
                                if (i != j)
                                        assert_true(h[i][t] != h[j][t] && h[i][t] != h[j][!t]);
}

static void test_type_name(void **state) {
        assert_string_equal(socket_type_name(SOCK_STREAM), "stream");
        assert_string_equal(socket_type_name(SOCK_DGRAM), "datagram");
        assert_string_equal(socket_type_name(SOCK_SEQPACKET), "other");
}

static void test_from_fd(void **state) {
        SocketAddress want, got, bound;
        char name[64];
        int fd;

        /* An abstract datagram socket: what socket_address_from_fd() reads back equals the parsed one. */
        snprintf(name, sizeof(name), "@rpsup-test-socket-address-%d", (int) getpid());
        want = parse_ok(name, SOCK_DGRAM);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, &want.sa, want.size), 0);
        assert_int_equal(socket_address_from_fd(fd, &got), 0);
        assert_int_equal(got.type, SOCK_DGRAM);
        assert_true(socket_address_equal(&want, &got));
        check_format(&got, name);
        close(fd);

        /* A TCP socket on an ephemeral port of 127.0.0.1. */
        want = parse_ok("127.0.0.1:1", SOCK_STREAM);
        want.in.sin_port = 0;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, &want.sa, want.size), 0);
        assert_int_equal(socket_address_from_fd(fd, &got), 0);
        assert_int_equal(got.type, SOCK_STREAM);
        assert_int_equal(got.sa.sa_family, AF_INET);
        assert_int_equal(ntohl(got.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_true(ntohs(got.in.sin_port) > 0);
        snprintf(name, sizeof(name), "127.0.0.1:%u", ntohs(got.in.sin_port));
        bound = parse_ok(name, SOCK_STREAM);
        assert_true(socket_address_equal(&bound, &got));
        close(fd);

        assert_int_equal(socket_address_from_fd(-1, &got), -EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_port_only),
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_ipv6_scope),
                cmocka_unit_test(test_unix_path),
                cmocka_unit_test(test_unix_abstract),
                cmocka_unit_test(test_unix_length_limits),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_equal),
                cmocka_unit_test(test_hash),
                cmocka_unit_test(test_type_name),
                cmocka_unit_test(test_from_fd),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
