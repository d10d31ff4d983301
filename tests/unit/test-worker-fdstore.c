/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The workers' fd store (supervisor/worker-fdstore.c, supervisor/worker-notify.c): FDNAME= validated as
 * systemd does, the fd store's fields parsed where a notification enters, and the names under which the
 * fds go to systemd's fd store encoded, parsed back, and refused when they could not be. Then the store
 * itself on real fds: the per-slot limit, FileDescriptorStoreMax=0, the same file sent twice, removal by
 * name, and a pipe that hangs up; what a retiring slot has handed on; the fds of a slot no generation has. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-util.h"
#include "worker-fdstore.h"
#include "worker-notify.h"

static void test_fdname_valid(void **state) {
        char longest[NOTIFY_FDNAME_MAX + 2];

        assert_true(notify_fdname_is_valid("stored"));
        assert_true(notify_fdname_is_valid("conn 17 (client.example)"));
        assert_true(notify_fdname_is_valid("~!@#$%^&*()"));
        assert_false(notify_fdname_is_valid(NULL));
        assert_false(notify_fdname_is_valid(""));
        assert_false(notify_fdname_is_valid("a:b"));
        assert_false(notify_fdname_is_valid("tab\there"));
        assert_false(notify_fdname_is_valid("del\x7f"));
        assert_false(notify_fdname_is_valid("caf\xc3\xa9"));

        memset(longest, 'x', sizeof(longest));
        longest[NOTIFY_FDNAME_MAX] = 0;
        assert_true(notify_fdname_is_valid(longest));
        longest[NOTIFY_FDNAME_MAX] = 'x';
        longest[NOTIFY_FDNAME_MAX + 1] = 0;
        assert_false(notify_fdname_is_valid(longest));
}

static void parse(const char *text, NotifyMessage *m) {
        char buf[NOTIFY_MESSAGE_MAX + 1];

        strcpy(buf, text);
        assert_int_equal(notify_parse(buf, strlen(text), m), 0);
}

static void test_parse(void **state) {
        NotifyMessage m;

        parse("FDSTORE=1\nFDNAME=conn-1\nFDPOLL=0", &m);
        assert_true(m.fdstore);
        assert_false(m.fdstore_remove);
        assert_true(m.fdpoll_off);
        assert_string_equal(m.fdname, "conn-1");
        assert_false(m.fdname_invalid);

        parse("FDSTOREREMOVE=1\nFDNAME=conn-1", &m);
        assert_false(m.fdstore);
        assert_true(m.fdstore_remove);
        assert_false(m.fdpoll_off);
        assert_string_equal(m.fdname, "conn-1");

        /* Only "FDPOLL=0" turns the watch off, as with systemd; the last FDNAME= counts. */
        parse("FDSTORE=1\nFDPOLL=1\nFDNAME=a\nFDNAME=b", &m);
        assert_false(m.fdpoll_off);
        assert_string_equal(m.fdname, "b");
        parse("FDSTORE=1\nFDNAME=ok\nFDNAME=not:ok", &m);
        assert_null(m.fdname);
        assert_true(m.fdname_invalid);
        parse("FDSTORE=1\nFDNAME=", &m);
        assert_null(m.fdname);
        assert_true(m.fdname_invalid);
        parse("FDSTORE=1", &m);
        assert_null(m.fdname);
        assert_false(m.fdname_invalid);
        parse("FDSTORE=0\nFDSTOREREMOVE=yes", &m);
        assert_false(m.fdstore);
        assert_false(m.fdstore_remove);
}

static void test_name_encoding(void **state) {
        char name[NOTIFY_FDNAME_MAX + 1];
        const char *back;
        char *s = NULL;
        unsigned index;
        uint64_t seq;
        bool poll;

        assert_int_equal(worker_fdstore_name(3, 17, true, "conn-1", &s), 0);
        assert_string_equal(s, "wfd.3.17.p.conn-1");
        assert_true(notify_fdname_is_valid(s));
        assert_int_equal(worker_fdstore_name_parse(s, &index, &seq, &poll, &back), 0);
        assert_int_equal(index, 3);
        assert_int_equal(seq, 17);
        assert_true(poll);
        assert_string_equal(back, "conn-1");
        free(s);

        /* A name with dots in it, FDPOLL=0. */
        assert_int_equal(worker_fdstore_name(0, 0, false, "a.b.c", &s), 0);
        assert_int_equal(worker_fdstore_name_parse(s, &index, &seq, &poll, &back), 0);
        assert_int_equal(index, 0);
        assert_int_equal(seq, 0);
        assert_false(poll);
        assert_string_equal(back, "a.b.c");
        free(s);

        /* The longest FDNAME= that always fits, whatever the slot and the number... */
        memset(name, 'n', sizeof(name));
        name[NOTIFY_FDNAME_MAX - 38] = 0;
        assert_int_equal(worker_fdstore_name(UINT32_MAX, UINT64_MAX, true, name, &s), 0);
        assert_int_equal(strlen(s), NOTIFY_FDNAME_MAX);
        /* ...(but a slot beyond WORKERS_MAX is no name of ours)... */
        assert_int_equal(worker_fdstore_name_parse(s, &index, &seq, &poll, &back), -EINVAL);
        free(s);
        /* ...and one that does not fit. */
        name[NOTIFY_FDNAME_MAX - 38] = 'n';
        name[NOTIFY_FDNAME_MAX - 37] = 0;
        assert_int_equal(worker_fdstore_name(UINT32_MAX, UINT64_MAX, true, name, &s), -ENAMETOOLONG);
        memset(name, 'n', NOTIFY_FDNAME_MAX);
        name[NOTIFY_FDNAME_MAX] = 0;
        assert_int_equal(worker_fdstore_name(0, 0, true, name, &s), -ENAMETOOLONG);
        assert_int_equal(worker_fdstore_name(0, 0, true, "a:b", &s), -EINVAL);

        /* Names that are not ours, or not well formed. */
        static const char *const bad[] = {
                "stored", "notify", "L.1", "wfd.", "wfd.1", "wfd.1.2", "wfd.1.2.p", "wfd.1.2.p.", "wfd.1.2.x.a",
                "wfd.01.2.p.a", "wfd.1.02.p.a", "wfd.-1.2.p.a", "wfd.1.-2.p.a", "wfd.+1.2.p.a", "wfd.1..p.a",
                "wfd.512.2.p.a", "wfd.1.99999999999999999999.p.a", "wfd.1.2.pp.a", "wfd.1.2.p.a:b", "wfd.1.2.p.a\tb",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(worker_fdstore_name_parse(bad[i], &index, &seq, &poll, &back), -EINVAL);
        assert_int_equal(worker_fdstore_name_parse("wfd.511.18446744073709551615.n.x", &index, &seq, &poll, &back), 0);
        assert_int_equal(index, 511);
        assert_true(seq == UINT64_MAX);
}

static void test_store(void **state) {
        _cleanup_(worker_fdstore_freep) WorkerFdStore *s = NULL;
        sd_event *e = NULL;
        int p[2], fds[4], out[8];
        const char *names[8];

        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(worker_fdstore_new(e, &s), 0);

        /* FileDescriptorStoreMax=2: the third of three is refused (and closed). */
        for (int i = 0; i < 3; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        worker_fdstore_add(s, 1, 100, 2, "null", true, fds, 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(fds[i], -EBADF);
        assert_int_equal(worker_fdstore_count(s, 1), 2);
        assert_int_equal(worker_fdstore_count(s, 0), 0);

        /* FileDescriptorStoreMax=0: refused. */
        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        worker_fdstore_add(s, 0, 101, 0, NULL, true, fds, 1);
        assert_int_equal(fds[0], -EBADF);
        assert_int_equal(worker_fdstore_total(s), 2);

        /* A pipe, watched; the same file again is kept once; the name defaults to "stored". */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fds[0] = p[0];
        fds[1] = fcntl(p[0], F_DUPFD_CLOEXEC, 3);
        worker_fdstore_add(s, 0, 101, 8, NULL, true, fds, 2);
        assert_int_equal(worker_fdstore_count(s, 0), 1);
        assert_int_equal(worker_fdstore_slot_fds(s, 0, out, names, 8), 1);
        assert_string_equal(names[0], "stored");

        /* Handed over in the order stored, and kept. */
        assert_int_equal(worker_fdstore_slot_fds(s, 1, out, names, 8), 2);
        assert_string_equal(names[0], "null");
        assert_int_equal(worker_fdstore_count(s, 1), 2);

        /* The write end closes: the read end hangs up and goes. */
        close(p[1]);
        assert_true(sd_event_run(e, 1000 * 1000) > 0);
        assert_int_equal(worker_fdstore_count(s, 0), 0);

        /* FDPOLL=0: kept though it hangs up. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fds[0] = p[0];
        worker_fdstore_add(s, 0, 101, 8, "quiet", false, fds, 1);
        close(p[1]);
        assert_int_equal(sd_event_run(e, 50 * 1000), 0);
        assert_int_equal(worker_fdstore_count(s, 0), 1);

        /* Removed by name, in its slot only. */
        worker_fdstore_remove(s, 1, "quiet");
        assert_int_equal(worker_fdstore_count(s, 0), 1);
        worker_fdstore_remove(s, 0, "quiet");
        assert_int_equal(worker_fdstore_count(s, 0), 0);
        worker_fdstore_remove(s, 1, "null");
        assert_int_equal(worker_fdstore_total(s), 0);

        s = worker_fdstore_free(s);
        sd_event_unref(e);
}

/* A retiring slot's stored sockets count as handed on once a successor of its index started with them. */
static void test_handed_on(void **state) {
        _cleanup_(worker_fdstore_freep) WorkerFdStore *st = NULL;
        Service svc = {};
        Generation old = { .service = &svc, .id = 1 }, new = { .service = &svc, .id = 2 };
        Slot old0 = { .generation = &old, .index = 0, .retiring = true }, new0 = { .generation = &new, .index = 0 };
        Slot *old_slots[] = { &old0 }, *new_slots[] = { &new0 };
        sd_event *e = NULL;
        uint32_t *inodes = NULL;
        size_t n;
        int sp[2], fds[2], out[4];

        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(worker_fdstore_new(e, &st), 0);
        TAILQ_INIT(&svc.generations);
        old.slots = old_slots;
        old.n_slots = 1;
        TAILQ_INSERT_TAIL(&svc.generations, &old, link);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        fds[0] = sp[0];
        worker_fdstore_add(st, 0, 100, 8, "conn-1", false, fds, 1);
        assert_int_equal(worker_fdstore_slot_inodes(st, 0, &inodes, &n), 0);
        assert_int_equal(n, 1);
        free(inodes);

        /* No successor (a scale-in, a stop): nothing is handed on. */
        assert_int_equal(worker_fdstore_handed_on(st, &old0, &inodes, &n), 0);
        assert_int_equal(n, 0);

        /* A successor that has not started yet: nothing either. */
        new.slots = new_slots;
        new.n_slots = 1;
        TAILQ_INSERT_TAIL(&svc.generations, &new, link);
        assert_int_equal(worker_fdstore_handed_on(st, &old0, &inodes, &n), 0);
        assert_int_equal(n, 0);

        /* Its worker starts with the connection: handed on. One stored after that is not. */
        assert_int_equal(worker_fdstore_slot_fds(st, 0, out, NULL, 4), 1);
        fds[0] = sp[1];
        worker_fdstore_add(st, 0, 100, 8, "conn-2", false, fds, 1);
        assert_int_equal(worker_fdstore_handed_on(st, &old0, &inodes, &n), 0);
        assert_int_equal(n, 1);
        free(inodes);
        assert_int_equal(worker_fdstore_slot_inodes(st, 0, &inodes, &n), 0);
        assert_int_equal(n, 2);
        free(inodes);

        /* The successor retires too (a stop): nothing is handed on. */
        new0.retiring = true;
        assert_int_equal(worker_fdstore_handed_on(st, &old0, &inodes, &n), 0);
        assert_int_equal(n, 0);

        /* Both generations gone: pruned once armed. */
        TAILQ_INIT(&svc.generations);
        worker_fdstore_prune(st, &svc);
        assert_int_equal(worker_fdstore_total(st), 2);
        worker_fdstore_arm(st);
        worker_fdstore_prune(st, &svc);
        assert_int_equal(worker_fdstore_total(st), 0);

        st = worker_fdstore_free(st);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fdname_valid),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_name_encoding),
                cmocka_unit_test(test_store),
                cmocka_unit_test(test_handed_on),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
