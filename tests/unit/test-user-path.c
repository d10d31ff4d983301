/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* User=/Group= values by systemd's rules (common/user-util.c), and socket paths simplified so that one
 * file has one spelling (common/path-util.c, common/socket-address.c). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "path-util.h"
#include "socket-address.h"
#include "user-util.h"

static void test_parse_uid(void **state) {
        uid_t u;

        assert_int_equal(parse_uid("0", &u), 0);
        assert_int_equal(u, 0);
        assert_int_equal(parse_uid("65534", &u), 0);
        assert_int_equal(u, 65534);
        assert_int_equal(parse_uid("4294967294", &u), 0);
        assert_int_equal(u, 4294967294u);
        assert_int_equal(parse_uid("65536", &u), 0);

        /* (uid_t) -1 and the 16-bit -1 are not ids. */
        assert_int_equal(parse_uid("4294967295", &u), -ENXIO);
        assert_int_equal(parse_uid("65535", &u), -ENXIO);
        assert_true(parse_uid("4294967296", &u) < 0);
        assert_true(parse_uid("-1", &u) < 0);
        assert_true(parse_uid("+5", &u) < 0);
        assert_true(parse_uid("05", &u) < 0);
        assert_true(parse_uid(" 5", &u) < 0);
        assert_true(parse_uid("5 ", &u) < 0);
        assert_true(parse_uid("", &u) < 0);
        assert_true(parse_uid("root", &u) < 0);
}

static void test_user_group_name(void **state) {
        static const char *const good[] = {
                "root", "nobody", "www-data", "_apt", "0", "1000", "65534", "4294967294", "a.b", "DOMAIN\\user",
                "user@realm", "with space", "caf\xc3\xa9", "1a", "-a",
        };
        static const char *const bad[] = {
                "", "4294967295", "65535", "0100", "00", "-1", "-65535", "99999999999", " root", "root ", "a:b", "a/b",
                "a\nb", "a\tb", "a\x7f", ".", "..", "caf\xe9",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                if (!user_group_name_or_id_is_valid(good[i]))
                        print_error("\"%s\" is said to be invalid\n", good[i]);
                assert_true(user_group_name_or_id_is_valid(good[i]));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (user_group_name_or_id_is_valid(bad[i]))
                        print_error("\"%s\" is said to be valid\n", bad[i]);
                assert_false(user_group_name_or_id_is_valid(bad[i]));
        }
}

static void check_simplify(const char *in, const char *want) {
        char buf[256];

        snprintf(buf, sizeof(buf), "%s", in);
        assert_string_equal(path_simplify(buf), want);
}

static void test_path(void **state) {
        check_simplify("/tmp/s.sock", "/tmp/s.sock");
        check_simplify("//tmp/s.sock", "/tmp/s.sock");
        check_simplify("/tmp//s.sock", "/tmp/s.sock");
        check_simplify("/tmp/./s.sock", "/tmp/s.sock");
        check_simplify("/./tmp/././s.sock/", "/tmp/s.sock");
        check_simplify("/tmp/s.sock//", "/tmp/s.sock");
        check_simplify("/", "/");
        check_simplify("///", "/");
        check_simplify("/.", "/");
        check_simplify("/a/.b/c.", "/a/.b/c.");
        check_simplify("/a/../b", "/a/../b");
        check_simplify("a//b/", "a/b");
        check_simplify("./a", "a");
        check_simplify(".", ".");

        assert_true(path_has_dot_dot("/a/../b"));
        assert_true(path_has_dot_dot("/.."));
        assert_true(path_has_dot_dot("/a/.."));
        assert_true(path_has_dot_dot("/a//..//b"));
        assert_false(path_has_dot_dot("/a/..b"));
        assert_false(path_has_dot_dot("/a/b.."));
        assert_false(path_has_dot_dot("/a/.../b"));
        assert_false(path_has_dot_dot("/a/./b"));
}

static void test_socket_path(void **state) {
        static const char *const same[] = { "/tmp/s.sock", "//tmp/s.sock", "/tmp//s.sock", "/tmp/./s.sock",
                                            "/tmp/s.sock/", "///tmp/.//s.sock" };
        SocketAddress first, a;
        char buf[SOCKET_ADDRESS_STRING_MAX];

        /* Regression: "/tmp/s.sock" and "//tmp/s.sock" were two addresses, bound one after the other. */
        assert_int_equal(socket_address_parse(same[0], SOCK_STREAM, &first), 0);
        for (size_t i = 0; i < ELEMENTSOF(same); i++) {
                assert_int_equal(socket_address_parse(same[i], SOCK_STREAM, &a), 0);
                assert_string_equal(a.un.sun_path, "/tmp/s.sock");
                assert_int_equal(a.size, first.size);
                assert_true(socket_address_equal(&a, &first));
                assert_string_equal(socket_address_format(&a, buf, sizeof(buf)), "/tmp/s.sock");
        }
        assert_int_equal(socket_address_parse("/tmp/../s.sock", SOCK_STREAM, &a), -EINVAL);
        assert_int_equal(socket_address_parse("/..", SOCK_STREAM, &a), -EINVAL);
        assert_int_equal(socket_address_parse("//", SOCK_STREAM, &a), -EINVAL);
        assert_int_equal(socket_address_parse("/./", SOCK_STREAM, &a), -EINVAL);

        /* The length limit applies to the simplified path: padding with slashes does not get past it. */
        char longpath[sizeof(a.un.sun_path) + 16];
        memset(longpath, 'x', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(a.un.sun_path) - 1] = 0; /* 107 characters + NUL: fits */
        assert_int_equal(socket_address_parse(longpath, SOCK_STREAM, &a), 0);
        longpath[sizeof(a.un.sun_path) - 1] = 'x';
        longpath[sizeof(a.un.sun_path)] = 0;     /* 108: does not */
        assert_int_equal(socket_address_parse(longpath, SOCK_STREAM, &a), -EINVAL);
        char slashes[sizeof(longpath) + 8];
        snprintf(slashes, sizeof(slashes), "//////%s", longpath + 6);
        assert_int_equal(socket_address_parse(slashes, SOCK_STREAM, &a), 0);

        /* Abstract names are bytes, not paths: left as they are. */
        assert_int_equal(socket_address_parse("@a//b", SOCK_STREAM, &a), 0);
        assert_memory_equal(a.un.sun_path + 1, "a//b", 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_uid),
                cmocka_unit_test(test_user_group_name),
                cmocka_unit_test(test_path),
                cmocka_unit_test(test_socket_path),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
