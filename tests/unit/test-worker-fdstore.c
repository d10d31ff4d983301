/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The workers' fd store (supervisor/worker-fdstore.c, supervisor/worker-notify.c): FDNAME= validated as
 * systemd does, the fd store's fields parsed where a notification enters, and the names under which the
 * fds go to systemd's fd store encoded, parsed back, and refused when they could not be. Then the store
 * itself on real fds: the per-slot limit, FileDescriptorStoreMax=0, the same file sent twice, removal by
 * name, and a pipe that hangs up; what a retiring slot has handed on; the fds of a slot no generation has.
 * What no worker may store (listening sockets, rpsupd's listeners), the bytes their names may take (they go
 * into environment strings), the fd ceiling with rpsupd's copy counted, and rpsupd's copies (for a reexec)
 * following the store even when systemd's store refuses. */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "systemd-fdstore.h"
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

        /* A worker whose spawn failed got nothing: still nothing handed on. */
        uint64_t upto = worker_fdstore_next_seq(st);
        assert_int_equal(worker_fdstore_slot_fds(st, 0, out, NULL, 4), 1);
        assert_int_equal(worker_fdstore_handed_on(st, &old0, &inodes, &n), 0);
        assert_int_equal(n, 0);

        /* Its worker starts with the connection: handed on. One stored after that is not. */
        worker_fdstore_handed(st, 0, upto);
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

/* How many of rpsupd's copies (for a reexec) carry a worker-store name. */
static size_t kept_worker_copies(void) {
        const StoredFd *kept;
        size_t n = fdstore_kept(&kept), k = 0;

        for (size_t i = 0; i < n; i++)
                if (strncmp(kept[i].name, WORKER_FDSTORE_PREFIX, strlen(WORKER_FDSTORE_PREFIX)) == 0)
                        k++;
        return k;
}

/* NOTIFY_SOCKET names no socket here: every fdstore_add() to systemd fails, yet rpsupd's copies follow the
 * store (none left behind for a reexec to bring back), and the names stay within their budgets. */
static void test_copies_and_budget(void **state) {
        _cleanup_(worker_fdstore_freep) WorkerFdStore *s = NULL;
        char name[NOTIFY_FDNAME_MAX + 1];
        const char *names[512];
        size_t total = 0, bytes;
        sd_event *e = NULL;
        int fds[1], out[512];

        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(worker_fdstore_new(e, &s), 0);
        assert_int_equal(kept_worker_copies(), 0);

        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        worker_fdstore_add(s, 0, 100, 8, "conn", false, fds, 1);
        assert_int_equal(worker_fdstore_count(s, 0), 1);
        assert_int_equal(kept_worker_copies(), 1);
        worker_fdstore_remove(s, 0, "conn");
        assert_int_equal(worker_fdstore_count(s, 0), 0);
        assert_int_equal(kept_worker_copies(), 0);

        /* A name that cannot be encoded in systemd's store with the slot and a number: refused. */
        memset(name, 'n', NOTIFY_FDNAME_MAX);
        name[NOTIFY_FDNAME_MAX] = 0;
        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        worker_fdstore_add(s, 0, 100, 8, name, false, fds, 1);
        assert_int_equal(fds[0], -EBADF);
        assert_int_equal(worker_fdstore_total(s), 0);
        assert_int_equal(kept_worker_copies(), 0);

        /* 200-byte names: a slot keeps as many as fit in its budget (its next worker's LISTEN_FDNAMES)... */
        name[200] = 0;
        for (int i = 0; i < 400; i++) {
                fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                worker_fdstore_add(s, 0, 100, 4096, name, false, fds, 1);
        }
        assert_int_equal(worker_fdstore_count(s, 0), WORKER_FDSTORE_SLOT_NAMES_MAX / 201);
        bytes = 0;
        assert_int_equal(worker_fdstore_slot_fds(s, 0, out, names, 512), worker_fdstore_count(s, 0));
        for (size_t i = 0; i < worker_fdstore_count(s, 0); i++)
                bytes += strlen(names[i]) + 1;
        assert_true(bytes <= WORKER_FDSTORE_SLOT_NAMES_MAX);
        /* ...and the service as many as its names in systemd's store allow (rpsupd's LISTEN_FDNAMES). */
        for (unsigned slot = 1; slot < 4; slot++)
                for (int i = 0; i < 200; i++) {
                        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        worker_fdstore_add(s, slot, 100, 4096, name, false, fds, 1);
                }
        for (unsigned slot = 0; slot < 4; slot++)
                total += worker_fdstore_count(s, slot);
        assert_int_equal(worker_fdstore_total(s), total);
        assert_int_equal(kept_worker_copies(), total);
        bytes = 0;
        {
                const StoredFd *kept;
                size_t n = fdstore_kept(&kept);
                for (size_t i = 0; i < n; i++)
                        bytes += strlen(kept[i].name) + 1;
        }
        assert_true(bytes <= WORKER_FDSTORE_SERVICE_NAMES_MAX);
        assert_true(bytes + 220 > WORKER_FDSTORE_SERVICE_NAMES_MAX); /* full: the next would not fit */
        assert_true(worker_fdstore_count(s, 3) < 200);

        /* All dropped with their slots (no generation left): no copy stays. */
        Service svc = {};
        TAILQ_INIT(&svc.generations);
        worker_fdstore_arm(s);
        worker_fdstore_prune(s, &svc);
        assert_int_equal(worker_fdstore_total(s), 0);
        assert_int_equal(worker_fdstore_count(s, 0), 0);
        assert_int_equal(kept_worker_copies(), 0);
        /* Nothing left: the budgets are free again. */
        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        worker_fdstore_add(s, 2, 100, 8, name, false, fds, 1);
        assert_int_equal(worker_fdstore_count(s, 2), 1);

        s = worker_fdstore_free(s);
        fdstore_kept_done();
        sd_event_unref(e);
}

/* A listening socket is refused, and so is a socket that is one of rpsupd's listeners; connections are kept. */
static void test_listeners_refused(void **state) {
        _cleanup_(worker_fdstore_freep) WorkerFdStore *s = NULL;
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        sd_event *e = NULL;
        int fds[4], sp[2], lfd, dfd;

        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(worker_fdstore_new(e, &s), 0);

        /* rpsupd's datagram listener (abstract address), and a worker's copy of it. */
        dfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "rpsup-test-fdstore-%d", (int) getpid());
        assert_int_equal(bind(dfd, (struct sockaddr *) &a, sizeof(a)), 0);
        Listener l = { .fd = dfd };
        ListenerSet set = { .listeners = &l, .n = 1 };
        worker_fdstore_set_listeners(s, &set);

        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(lfd, (struct sockaddr *) &(struct sockaddr_un) { .sun_family = AF_UNIX },
                              sizeof(sa_family_t)), 0); /* an abstract address of the kernel's choice */
        assert_int_equal(listen(lfd, 4), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        fds[0] = lfd;
        fds[1] = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        fds[2] = sp[0];
        fds[3] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* a datagram socket of the worker's own */
        worker_fdstore_add(s, 0, 100, 8, "sock", false, fds, 4);
        for (int i = 0; i < 4; i++)
                assert_int_equal(fds[i], -EBADF);
        assert_int_equal(worker_fdstore_count(s, 0), 2);

        safe_close(sp[1]);
        safe_close(dfd);
        s = worker_fdstore_free(s);
        fdstore_kept_done();
        sd_event_unref(e);
}

/* The last FD_RESERVE fds below RLIMIT_NOFILE are rpsupd's: an fd kept costs its number and rpsupd's copy. */
static void test_fd_ceiling(void **state) {
        _cleanup_(worker_fdstore_freep) WorkerFdStore *s = NULL;
        struct rlimit old, rl;
        sd_event *e = NULL;
        int fds[1], ceiling = 64;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
        rl = (struct rlimit) { .rlim_cur = FD_RESERVE + (rlim_t) ceiling, .rlim_max = old.rlim_max };
        assert_true(sd_event_new(&e) >= 0);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        assert_int_equal(worker_fdstore_new(e, &s), 0);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

        /* Its copy would be the ceiling's number: refused. */
        fds[0] = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, ceiling - 1);
        assert_int_equal(fds[0], ceiling - 1);
        worker_fdstore_add(s, 0, 100, 8, "high", false, fds, 1);
        assert_int_equal(fds[0], -EBADF);
        assert_int_equal(worker_fdstore_count(s, 0), 0);
        /* Room for both. */
        fds[0] = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, ceiling - 2);
        assert_int_equal(fds[0], ceiling - 2);
        worker_fdstore_add(s, 0, 100, 8, "high", false, fds, 1);
        assert_int_equal(worker_fdstore_count(s, 0), 1);

        s = worker_fdstore_free(s);
        fdstore_kept_done();
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_copies_and_budget),
                cmocka_unit_test(test_listeners_refused),
                cmocka_unit_test(test_fd_ceiling),
                cmocka_unit_test(test_fdname_valid),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_name_encoding),
                cmocka_unit_test(test_store),
                cmocka_unit_test(test_handed_on),
        };

        /* systemd's store is there, but refuses everything. */
        char path[64];
        snprintf(path, sizeof(path), "@rpsup-test-no-notify-%d", (int) getpid());
        setenv("NOTIFY_SOCKET", path, 1);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
