/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What rpsupd keeps of what it stores (supervisor/systemd-fdstore.c), for a reexec: a copy of every fd under
 * its name, whether or not systemd's store exists; several under one name, as systemd keeps them; a removal
 * drops every fd of the name; the copies are rpsupd's own (O_CLOEXEC, other numbers); at FDSTORE_KEPT_MAX one
 * more is refused and a reexec is refused from then on. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rpsup-limits.h"
#include "systemd-fdstore.h"

static size_t count(const char *name) {
        const StoredFd *kept;
        size_t n = fdstore_kept(&kept), k = 0;

        for (size_t i = 0; i < n; i++)
                k += strcmp(kept[i].name, name) == 0;
        return k;
}

static void test_kept(void **state) {
        const StoredFd *kept;
        int p[2];

        unsetenv("NOTIFY_SOCKET"); /* outside systemd */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(fdstore_add(p[0], "a"), 0);
        assert_int_equal(fdstore_add(p[1], "a"), 0);
        assert_int_equal(fdstore_add(p[0], "b"), 0);
        assert_int_equal(fdstore_kept(&kept), 3);
        assert_int_equal(count("a"), 2);
        for (size_t i = 0; i < 3; i++) {
                assert_true(kept[i].fd != p[0] && kept[i].fd != p[1]);
                assert_true(fcntl(kept[i].fd, F_GETFD) & FD_CLOEXEC);
        }
        /* The copies stay when the caller closes its own. */
        close(p[0]);
        close(p[1]);
        assert_int_equal(fdstore_remove("a"), 0);
        assert_int_equal(count("a"), 0);
        assert_int_equal(count("b"), 1);
        assert_int_equal(fdstore_remove("nothing"), 0);
        assert_int_equal(fdstore_kept(&kept), 1);
        assert_true(fcntl(kept[0].fd, F_GETFD) >= 0);
        assert_true(fdstore_kept_complete());
        fdstore_kept_done();
        assert_int_equal(fdstore_kept(&kept), 0);
}

static void test_bound(void **state) {
        struct rlimit rl = { FDSTORE_KEPT_MAX + 64, FDSTORE_KEPT_MAX + 64 };
        const StoredFd *kept;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                skip();
        for (unsigned i = 0; i < FDSTORE_KEPT_MAX; i++)
                assert_int_equal(fdstore_add(fd, "x"), 0);
        assert_true(fdstore_kept_complete());
        assert_int_equal(fdstore_add(fd, "y"), 0); /* systemd's store (none here) is asked all the same */
        assert_int_equal(fdstore_kept(&kept), FDSTORE_KEPT_MAX);
        assert_int_equal(count("y"), 0);
        assert_false(fdstore_kept_complete());
        fdstore_kept_done();
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kept),
                cmocka_unit_test(test_bound),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
