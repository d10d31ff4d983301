/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What rpsupctl fds and rpsupd read from /proc (common/proc-parse.c): fd link targets, /proc/PID/stat, fdinfo flags
 * and /proc/net/unix lines, as the kernel writes them and as they must not be misread. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "proc-parse.h"

static void test_socket_link(void **state) {
        uint64_t inode = 0;

        assert_int_equal(parse_socket_link("socket:[293166197]", &inode), 0);
        assert_int_equal(inode, 293166197);
        assert_int_equal(parse_socket_link("socket:[18446744073709551615]", &inode), 0);
        assert_true(inode == UINT64_MAX);
        assert_int_equal(parse_socket_link("socket:[18446744073709551616]", &inode), -EINVAL); /* overflows */
        assert_int_equal(parse_socket_link("socket:[]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[0]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[12", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[12]x", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("socket:[-1]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("pipe:[12]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("anon_inode:[eventpoll]", &inode), -EINVAL);
        assert_int_equal(parse_socket_link("/tmp/socket:[12]", &inode), -EINVAL);
}

static void test_proc_stat(void **state) {
        char comm[17];
        pid_t ppid = 0;

        assert_int_equal(parse_proc_stat("4242 (rpsupd) S 1 4242 4242 0 -1 4194560 ...\n", &ppid, comm, sizeof(comm)), 0);
        assert_int_equal(ppid, 1);
        assert_string_equal(comm, "rpsupd");
        /* A command name may hold spaces and parentheses: it ends at the last ')'. */
        assert_int_equal(parse_proc_stat("77 (a) b) (c) R 76 77 0", &ppid, comm, sizeof(comm)), 0);
        assert_int_equal(ppid, 76);
        assert_string_equal(comm, "a) b) (c");
        /* Truncated to the buffer. */
        assert_int_equal(parse_proc_stat("5 (rpsup-example-worker) S 4 5", &ppid, comm, 8), 0);
        assert_string_equal(comm, "rpsup-e");
        assert_int_equal(parse_proc_stat("1 (init) S 0", &ppid, comm, sizeof(comm)), 0);
        assert_int_equal(ppid, 0);
        assert_int_equal(parse_proc_stat("1 init S 0", &ppid, comm, sizeof(comm)), -EINVAL);
        assert_int_equal(parse_proc_stat("1 (init) S", &ppid, comm, sizeof(comm)), -EINVAL);
        assert_int_equal(parse_proc_stat("1 (init) S x", &ppid, comm, sizeof(comm)), -EINVAL);
        assert_int_equal(parse_proc_stat("1 (init) S 99999999999", &ppid, comm, sizeof(comm)), -EINVAL);
        assert_int_equal(parse_proc_stat("1 (init)S 0", &ppid, comm, sizeof(comm)), -EINVAL);
        assert_int_equal(parse_proc_stat(")(", &ppid, comm, sizeof(comm)), -EINVAL);
}

static void test_proc_stat_start_time(void **state) {
        /* A real line: the start time is field 22 (here 123456789). */
        const char *line = "4242 (rpsupd) S 1 4242 4242 0 -1 4194560 150 0 0 0 1 2 0 0 20 0 1 0 123456789 "
                           "12345678 300 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n";
        uint64_t t = 0;

        assert_int_equal(parse_proc_stat_start_time(line, &t), 0);
        assert_true(t == 123456789);
        /* ") " and spaces in the command name do not shift the fields. */
        assert_int_equal(parse_proc_stat_start_time("7 (a) 1 2 3 4 5) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 "
                                                    "777 1 2\n", &t), 0);
        assert_true(t == 777);
        /* The last field of the text. */
        assert_int_equal(parse_proc_stat_start_time("7 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 42", &t), 0);
        assert_true(t == 42);
        /* Too few fields, a field that is not a number, no name. */
        assert_int_equal(parse_proc_stat_start_time("7 (x) S 1 2 3", &t), -EINVAL);
        assert_int_equal(parse_proc_stat_start_time("7 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4x2", &t),
                         -EINVAL);
        assert_int_equal(parse_proc_stat_start_time("7 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18  42", &t),
                         -EINVAL);
        assert_int_equal(parse_proc_stat_start_time("7 x S", &t), -EINVAL);
}

static void test_fdinfo_flags(void **state) {
        unsigned flags = 0;

        assert_int_equal(parse_fdinfo_flags("pos:\t0\nflags:\t02000002\nmnt_id:\t9\nino:\t293166197\n", &flags), 0);
        assert_int_equal(flags, 02000002);
        assert_true(flags & O_CLOEXEC);
        assert_int_equal(parse_fdinfo_flags("pos:\t0\nflags:\t02\n", &flags), 0);
        assert_false(flags & O_CLOEXEC);
        assert_int_equal(parse_fdinfo_flags("flags:\t0100000", &flags), 0);
        assert_int_equal(flags, 0100000);
        assert_int_equal(parse_fdinfo_flags("pos:\t0\nmnt_id:\t9\n", &flags), -EINVAL);
        assert_int_equal(parse_fdinfo_flags("flags:\t08\n", &flags), -EINVAL);
        assert_int_equal(parse_fdinfo_flags("flags:\t-1\n", &flags), -EINVAL);
        assert_int_equal(parse_fdinfo_flags("flags:\t\n", &flags), -EINVAL);
        assert_int_equal(parse_fdinfo_flags("", &flags), -EINVAL);
}

static void test_unix_line(void **state) {
        const char *path;
        uint64_t inode;
        size_t len;

        assert_int_equal(parse_unix_line("0000000095509758: 00000003 00000000 00000000 0001 03 290080209\n", &inode,
                                         &path, &len), 0);
        assert_int_equal(inode, 290080209);
        assert_null(path);
        assert_int_equal(parse_unix_line("000000007a7da7c7: 00000003 00000000 00000000 0001 03  1657", &inode, &path,
                                         &len), 0);
        assert_int_equal(inode, 1657);
        assert_null(path);
        assert_int_equal(parse_unix_line("00000000d1b6a1c2: 00000002 00000000 00000000 0002 01 31337 "
                                         "/run/systemd/notify\n", &inode, &path, &len), 0);
        assert_int_equal(inode, 31337);
        assert_int_equal(len, strlen("/run/systemd/notify"));
        assert_memory_equal(path, "/run/systemd/notify", len);
        assert_int_equal(parse_unix_line("00000000d1b6a1c2: 00000002 00000000 00010000 0001 01 7 @/org/kernel/x\n",
                                         &inode, &path, &len), 0);
        assert_int_equal(len, strlen("@/org/kernel/x"));
        assert_memory_equal(path, "@/org/kernel/x", len);
        /* A path with spaces is taken whole. */
        assert_int_equal(parse_unix_line("0: 2 0 0 2 1 8 /tmp/a b\n", &inode, &path, &len), 0);
        assert_int_equal(len, strlen("/tmp/a b"));
        /* The header line, and broken ones. */
        assert_int_equal(parse_unix_line("Num       RefCount Protocol Flags    Type St Inode Path\n", &inode, &path,
                                         &len), -EINVAL);
        assert_int_equal(parse_unix_line("0: 2 0 0 2 1\n", &inode, &path, &len), -EINVAL);
        assert_int_equal(parse_unix_line("0: 2 0 0 2 1 x /p\n", &inode, &path, &len), -EINVAL);
        assert_int_equal(parse_unix_line("zz: 2 0 0 2 1 8 /p\n", &inode, &path, &len), -EINVAL);
        assert_int_equal(parse_unix_line("", &inode, &path, &len), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_socket_link),
                cmocka_unit_test(test_proc_stat),
                cmocka_unit_test(test_proc_stat_start_time),
                cmocka_unit_test(test_fdinfo_flags),
                cmocka_unit_test(test_unix_line),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
