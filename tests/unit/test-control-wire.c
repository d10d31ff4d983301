/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* How a control client's bytes are cut into units for sd-bus, and what is refused before it is read
 * (supervisor/control-wire.c). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "control-wire.h"
#include "macro.h"
#include "rpsup-limits.h"

#define AUTH "\0AUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n"
#define AUTH_SIZE (sizeof(AUTH) - 1)

/* A message header: `e` 'l' or 'B', the body and header fields lengths it announces. */
static size_t header(uint8_t *h, char e, uint32_t body, uint32_t fields) {
        memset(h, 0, 16);
        h[0] = (uint8_t) e;
        h[1] = 1;
        h[3] = 1;
        for (int i = 0; i < 4; i++) {
                int shift = e == 'l' ? 8 * i : 8 * (3 - i);
                h[4 + i] = (uint8_t) (body >> shift);
                h[12 + i] = (uint8_t) (fields >> shift);
        }
        return 16;
}

typedef struct Units {
        uint8_t auth[CONTROL_AUTH_SIZE_MAX + 16];
        size_t n_auth;
        size_t messages[8];
        size_t n_messages;
} Units;

/* Feeds `data` in pieces of at most `chunk` bytes, taking each unit as it is complete. */
static int drive(const uint8_t *data, size_t size, size_t chunk, Units *u) {
        ControlWire w;
        size_t pos = 0;
        int r = 0;

        *u = (Units) {};
        assert_int_equal(control_wire_init(&w), 0);
        for (;;) {
                const uint8_t *p;
                bool message;
                size_t n = control_wire_unit(&w, &p, &message);

                if (n > 0) {
                        if (message) {
                                assert_true(u->n_messages < 8);
                                u->messages[u->n_messages++] = n;
                        } else {
                                assert_true(u->n_auth + n <= sizeof(u->auth));
                                memcpy(u->auth + u->n_auth, p, n);
                                u->n_auth += n;
                        }
                        r = control_wire_next(&w);
                        if (r < 0)
                                break;
                        continue;
                }
                if (pos == size)
                        break;
                uint8_t *to;
                size_t space = control_wire_space(&w, &to), k = size - pos;
                assert_true(space > 0);
                k = k < chunk ? k : chunk;
                k = k < space ? k : space;
                memcpy(to, data + pos, k);
                pos += k;
                r = control_wire_fill(&w, k);
                if (r < 0)
                        break;
        }
        control_wire_done(&w);
        return r;
}

static void test_units(void **state) {
        static uint8_t data[512];
        size_t n = 0;
        Units u;

        memcpy(data, AUTH, AUTH_SIZE);
        n = AUTH_SIZE;
        n += header(data + n, 'l', 8, 0);         /* 16 + 8 */
        n += 8;
        n += header(data + n, 'B', 3, 5);         /* 16 + 8 (5 aligned) + 3 */
        n += 8 + 3;

        /* Byte by byte, and all at once: the same cut. */
        for (size_t chunk = 1; chunk <= sizeof(data); chunk *= 7) {
                assert_int_equal(drive(data, n, chunk, &u), 0);
                assert_int_equal(u.n_auth, AUTH_SIZE);
                assert_memory_equal(u.auth, AUTH, AUTH_SIZE);
                assert_int_equal(u.n_messages, 2);
                assert_int_equal(u.messages[0], 24);
                assert_int_equal(u.messages[1], 27);
        }
}

static void test_partial(void **state) {
        ControlWire w;
        uint8_t *to;
        const uint8_t *p;
        bool message;

        assert_int_equal(control_wire_init(&w), 0);
        assert_int_equal(control_wire_space(&w, &to), CONTROL_AUTH_SIZE_MAX);
        memcpy(to, AUTH, AUTH_SIZE);
        assert_int_equal(control_wire_fill(&w, AUTH_SIZE), 0);
        assert_false(control_wire_partial(&w));
        assert_int_equal(control_wire_unit(&w, &p, &message), AUTH_SIZE);
        assert_false(message);
        assert_int_equal(control_wire_next(&w), 0);

        /* The header first, then exactly the rest of the message: never more. */
        assert_int_equal(control_wire_space(&w, &to), 16);
        header(to, 'l', 100, 0);
        assert_int_equal(control_wire_fill(&w, 10), 0);
        assert_true(control_wire_partial(&w));
        assert_int_equal(control_wire_space(&w, &to), 6);
        assert_int_equal(control_wire_fill(&w, 6), 0);
        assert_int_equal(control_wire_space(&w, &to), 100);
        assert_int_equal(control_wire_fill(&w, 100), 0);
        assert_false(control_wire_partial(&w));
        assert_int_equal(control_wire_space(&w, &to), 0);
        assert_int_equal(control_wire_unit(&w, &p, &message), 116);
        assert_true(message);
        assert_int_equal(control_wire_next(&w), 0);
        assert_false(control_wire_partial(&w));
        control_wire_done(&w);
}

static int message_after_auth(const uint8_t *h) {
        uint8_t data[AUTH_SIZE + 16];
        Units u;

        memcpy(data, AUTH, AUTH_SIZE);
        memcpy(data + AUTH_SIZE, h, 16);
        return drive(data, sizeof(data), sizeof(data), &u);
}

static void test_refused(void **state) {
        uint8_t h[16];

        /* The largest message passes its header; one byte more does not. */
        header(h, 'l', CONTROL_MESSAGE_MAX - 16 - 8, 8);
        assert_int_equal(message_after_auth(h), 0);
        header(h, 'l', CONTROL_MESSAGE_MAX - 16 - 8 + 1, 8);
        assert_int_equal(message_after_auth(h), -EMSGSIZE);
        header(h, 'B', 100 * 1024 * 1024, 0);
        assert_int_equal(message_after_auth(h), -EMSGSIZE);
        /* No overflow of the announced size. */
        header(h, 'l', UINT32_MAX, UINT32_MAX);
        assert_int_equal(message_after_auth(h), -EMSGSIZE);
        /* Neither byte order, or another protocol version: not D-Bus. */
        header(h, 'x', 8, 0);
        assert_int_equal(message_after_auth(h), -EBADMSG);
        header(h, 'l', 8, 0);
        h[3] = 2;
        assert_int_equal(message_after_auth(h), -EBADMSG);
}

static void test_auth_bounded(void **state) {
        static uint8_t data[CONTROL_AUTH_SIZE_MAX + 16];
        Units u;

        /* One endless line, or many lines without BEGIN. */
        memset(data, 'A', sizeof(data));
        data[0] = 0;
        assert_int_equal(drive(data, sizeof(data), 100, &u), -EMSGSIZE);
        for (size_t i = 1; i + 2 <= sizeof(data); i += 7)
                memcpy(data + i, "ERROR\r\n", MIN(7u, sizeof(data) - i));
        assert_int_equal(drive(data, sizeof(data), 1000, &u), -EMSGSIZE);
        assert_true(u.n_auth < CONTROL_AUTH_SIZE_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_units),
                cmocka_unit_test(test_partial),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_auth_bounded),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
