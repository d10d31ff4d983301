/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* ListenStream=/ListenDatagram= addresses. Input: the address as written.
 * Every address accepted is formatted (as status and the fd store names show it) and parsed again: that
 * must give the same address, and formatting it again the same text. */

#include "fuzz.h"
#include "socket-address.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        char text[SOCKET_ADDRESS_STRING_MAX], text2[SOCKET_ADDRESS_STRING_MAX];
        SocketAddress a, b;
        int type, r;

        if (size > 1024)
                return -1;
        s = fuzz_string(data, size);
        /* Both socket types go through the same parser; the type must survive the round trip. */
        type = size % 2 ? SOCK_DGRAM : SOCK_STREAM;

        r = socket_address_parse(s, type, &a);
        if (r < 0) {
                fuzz_check(r == -EINVAL || r == -ENODEV, "\"%s\": unexpected error %d", s, r);
                return 0;
        }
        fuzz_check(a.type == type, "\"%s\": type %d became %d", s, type, a.type);
        fuzz_check(a.size > 0 && a.size <= sizeof(a.storage), "\"%s\": size %u", s, (unsigned) a.size);
        fuzz_check(socket_address_equal(&a, &a), "\"%s\" is not equal to itself", s);

        socket_address_format(&a, text, sizeof(text));
        fuzz_check(strlen(text) < sizeof(text) - 1, "\"%s\" formatted to a truncated \"%s\"", s, text);
        r = socket_address_parse(text, type, &b);
        fuzz_check(r >= 0, "\"%s\" formatted to \"%s\", which does not parse: %d", s, text, r);
        fuzz_check(socket_address_equal(&a, &b), "\"%s\" formatted to \"%s\", which parses to another address", s,
                   text);
        fuzz_check(a.size == b.size, "\"%s\" and its formatted \"%s\" have sizes %u and %u", s, text,
                   (unsigned) a.size, (unsigned) b.size);
        fuzz_check(memcmp(&a.storage, &b.storage, a.size) == 0, "\"%s\" and its formatted \"%s\" differ in their bytes",
                   s, text);
        fuzz_check(socket_address_hash(&a) == socket_address_hash(&b), "\"%s\" and \"%s\" hash differently", s, text);
        socket_address_format(&b, text2, sizeof(text2));
        fuzz_check(streq(text, text2), "\"%s\" formats as \"%s\", then as \"%s\"", s, text, text2);
        return 0;
}
