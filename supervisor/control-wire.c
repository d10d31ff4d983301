/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control-wire.h"
#include "macro.h"
#include "rpsup-limits.h"

/* The fixed part of a D-Bus message header: endianness, type, flags, version, body length, serial, length
 * of the header fields array. */
#define HEADER_SIZE 16u

int control_wire_init(ControlWire *w) {
        *w = (ControlWire) {};
        w->buf = malloc(CONTROL_MESSAGE_MAX);
        return w->buf ? 0 : -ENOMEM;
}

void control_wire_done(ControlWire *w) {
        w->buf = mfree(w->buf);
}

/* The size of the whole message, as its header announces it (computed as sd-bus does). */
static int message_size(const uint8_t *h, size_t *ret) {
        uint32_t body, fields;
        uint64_t total;

        memcpy(&body, h + 4, sizeof(body));
        memcpy(&fields, h + 12, sizeof(fields));
        if (h[0] == 'l') {
                body = le32toh(body);
                fields = le32toh(fields);
        } else if (h[0] == 'B') {
                body = be32toh(body);
                fields = be32toh(fields);
        } else
                return -EBADMSG;
        if (h[3] != 1)
                return -EBADMSG;
        total = HEADER_SIZE + (((uint64_t) fields + 7) & ~(uint64_t) 7) + body;
        if (total > CONTROL_MESSAGE_MAX)
                return -EMSGSIZE;
        *ret = (size_t) total;
        return 0;
}

/* Finds the complete unit at the front, if there is one. */
static int parse(ControlWire *w) {
        if (w->unit > 0)
                return 0;

        if (w->state == CONTROL_WIRE_AUTH) {
                /* All complete lines go on at once: the client waits for the answers to them. */
                for (size_t start = 0;;) {
                        const uint8_t *e = memmem(w->buf + start, w->n - start, "\r\n", 2);
                        size_t line, end;

                        if (!e)
                                break;
                        end = (size_t) (e - w->buf) + 2;
                        /* The exchange begins with a NUL byte before the first line. */
                        line = start == 0 && w->auth == 0 && w->n > 0 && w->buf[0] == 0 ? 1 : start;
                        w->unit = end;
                        if (end - 2 - line == 5 && memcmp(w->buf + line, "BEGIN", 5) == 0) {
                                w->state = CONTROL_WIRE_BEGIN;
                                return 0;
                        }
                        start = end;
                }
                return w->auth + w->n >= CONTROL_AUTH_SIZE_MAX ? -EMSGSIZE : 0;
        }

        if (w->state != CONTROL_WIRE_MESSAGES || w->n < HEADER_SIZE)
                return 0;
        if (w->need == 0) {
                int r = message_size(w->buf, &w->need);
                if (r < 0)
                        return r;
        }
        if (w->n >= w->need)
                w->unit = w->need;
        return 0;
}

size_t control_wire_space(ControlWire *w, uint8_t **ret) {
        size_t space;

        if (w->unit > 0)
                return 0;
        if (w->state == CONTROL_WIRE_AUTH)
                /* May read beyond BEGIN: what follows it stays in buf for the message state. */
                space = CONTROL_AUTH_SIZE_MAX - w->auth - w->n;
        else
                space = (w->need > 0 ? w->need : HEADER_SIZE) - w->n;
        if (ret)
                *ret = w->buf + w->n;
        return space;
}

int control_wire_fill(ControlWire *w, size_t k) {
        w->n += k;
        return parse(w);
}

size_t control_wire_unit(const ControlWire *w, const uint8_t **ret, bool *ret_message) {
        *ret = w->buf;
        *ret_message = w->state == CONTROL_WIRE_MESSAGES;
        return w->unit;
}

int control_wire_next(ControlWire *w) {
        if (w->unit == 0)
                return 0;
        memmove(w->buf, w->buf + w->unit, w->n - w->unit);
        w->n -= w->unit;
        if (w->state == CONTROL_WIRE_MESSAGES)
                w->need = 0;
        else {
                w->auth += w->unit;
                if (w->state == CONTROL_WIRE_BEGIN)
                        w->state = CONTROL_WIRE_MESSAGES;
        }
        w->unit = 0;
        return parse(w);
}

bool control_wire_partial(const ControlWire *w) {
        return w->state == CONTROL_WIRE_MESSAGES && w->n > 0 && w->unit == 0;
}
