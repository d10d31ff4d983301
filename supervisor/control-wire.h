/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a control client sends, cut into the units rpsupd hands to sd-bus one at a time: first the lines
 * of the SASL exchange, up to and including BEGIN, then whole D-Bus messages. The size a message
 * announces in its fixed header is checked before its body is read, so that a client cannot make rpsupd
 * hold more than CONTROL_MESSAGE_MAX bytes of its input (sd-bus alone accepts 128 MiB). Does not log. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ControlWireState {
        CONTROL_WIRE_AUTH,      /* SASL lines */
        CONTROL_WIRE_BEGIN,     /* the unit at the front ends with BEGIN; D-Bus messages follow it */
        CONTROL_WIRE_MESSAGES,  /* D-Bus messages */
} ControlWireState;

typedef struct ControlWire {
        uint8_t *buf;           /* CONTROL_MESSAGE_MAX bytes */
        size_t n;               /* bytes in buf */
        size_t unit;            /* length of the complete unit at the front; 0 if none */
        size_t need;            /* messages: the size of the message at the front, once its header is in */
        size_t auth;            /* bytes of the SASL exchange so far */
        ControlWireState state;
} ControlWire;

int control_wire_init(ControlWire *w);
void control_wire_done(ControlWire *w);

/* Where the next bytes read go, and how many may be read; 0 while a complete unit waits to be taken. */
size_t control_wire_space(ControlWire *w, uint8_t **ret);
/* `k` bytes were read there. -EMSGSIZE: a message announces more than CONTROL_MESSAGE_MAX bytes, or the
 * SASL exchange is longer than CONTROL_AUTH_SIZE_MAX; -EBADMSG: not a D-Bus message header. */
int control_wire_fill(ControlWire *w, size_t k);
/* The complete unit at the front, and its length; 0 if none. *ret_message: it is a D-Bus message (else
 * SASL lines). */
size_t control_wire_unit(const ControlWire *w, const uint8_t **ret, bool *ret_message);
/* The unit at the front was handed on: the bytes after it move to the front. Errors as fill. */
int control_wire_next(ControlWire *w);
/* Part of a D-Bus message is in, not all of it. */
bool control_wire_partial(const ControlWire *w);
