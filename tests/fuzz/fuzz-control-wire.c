/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What a control client sends, cut into units (control-wire.c) before any of it reaches sd-bus. Input: one
 * byte that chooses how the bytes arrive (read sizes from 1 to 256), then the bytes themselves. Checks: the
 * wire never holds more than CONTROL_MESSAGE_MAX bytes; every unit it hands on is whole (SASL lines end in
 * CRLF, the last one is BEGIN; a message is exactly the size its header announces); nothing is lost or
 * invented (units + what is buffered = what was read); a refusal is -EMSGSIZE or -EBADMSG and the SASL
 * exchange never passes CONTROL_AUTH_SIZE_MAX. */

#include <endian.h>
#include <errno.h>

#include "control-wire.h"
#include "fuzz.h"
#include "rpsup-limits.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

static size_t announced_size(const uint8_t *h) {
        uint32_t body, fields;

        memcpy(&body, h + 4, sizeof(body));
        memcpy(&fields, h + 12, sizeof(fields));
        body = h[0] == 'l' ? le32toh(body) : be32toh(body);
        fields = h[0] == 'l' ? le32toh(fields) : be32toh(fields);
        return 16 + (((size_t) fields + 7) & ~(size_t) 7) + body;
}

/* The unit's last line (CRLF-terminated; the exchange opens with a NUL byte) is exactly BEGIN. */
static bool last_line_is_begin(const uint8_t *unit, size_t n, bool first) {
        size_t line = first && unit[0] == 0 ? 1 : 0;

        for (size_t i = 0; i + 2 < n; i++)
                if (unit[i] == '\r' && unit[i + 1] == '\n')
                        line = i + 2;
        return n - 2 - line == 5 && memcmp(unit + line, "BEGIN", 5) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ControlWire w;
        size_t read_size, fed = 0, taken = 0, auth = 0;
        bool began = false;
        int r = 0;

        if (size < 1 || size > FUZZ_INPUT_MAX)
                return 0;
        read_size = (size_t) data[0] + 1;
        data++;
        size--;
        fuzz_check(control_wire_init(&w) >= 0, "out of memory");

        while (r >= 0) {
                const uint8_t *unit;
                uint8_t *p;
                bool message;
                size_t space = control_wire_space(&w, &p), n;

                fuzz_check(w.n <= CONTROL_MESSAGE_MAX, "the wire holds %zu bytes", w.n);
                if (space == 0) {
                        /* A whole unit waits: hand it on. */
                        n = control_wire_unit(&w, &unit, &message);
                        fuzz_check(n > 0 && n <= w.n, "no unit, or one of %zu bytes of %zu, and no room", n, w.n);
                        if (message) {
                                fuzz_check(began, "a message before BEGIN");
                                fuzz_check(n >= 16 && announced_size(unit) == n,
                                           "a message unit of %zu bytes that announces %zu", n,
                                           n >= 16 ? announced_size(unit) : 0);
                        } else {
                                fuzz_check(!began, "SASL after BEGIN");
                                fuzz_check(n >= 2 && unit[n - 2] == '\r' && unit[n - 1] == '\n',
                                           "a SASL unit that does not end in CRLF");
                                began = last_line_is_begin(unit, n, auth == 0);
                                auth += n;
                                fuzz_check(auth <= CONTROL_AUTH_SIZE_MAX, "%zu bytes of SASL passed", auth);
                        }
                        taken += n;
                        r = control_wire_next(&w);
                        continue;
                }
                if (fed == size)
                        break;
                n = MIN(MIN(space, read_size), size - fed);
                memcpy(p, data + fed, n);
                fed += n;
                r = control_wire_fill(&w, n);
        }
        fuzz_check(r >= 0 || r == -EMSGSIZE || r == -EBADMSG, "refused with %d", r);
        if (r >= 0)
                fuzz_check(taken + w.n == fed, "%zu bytes read, %zu handed on, %zu held", fed, taken, w.n);
        control_wire_done(&w);
        return 0;
}
