/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-metrics-http's request parser (ctl/http-request.c), which reads what anyone who reaches the port
 * sends. Input: the bytes of a connection. The answer is one of the statuses it documents; a head of
 * HTTP_REQUEST_HEAD_MAX bytes is always decided; and the bytes arriving in pieces decide as the whole does:
 * once a prefix gets a status, every longer prefix gets the same one. */

#include "fuzz.h"
#include "http-request.h"

static bool status_known(int r) {
        return r == 0 || r == 200 || r == 400 || r == 404 || r == 405 || r == 431 || r == 505;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        size_t step = size <= 512 ? 1 : size / 64;
        HttpRequest req;
        int whole, decided = 0;

        if (size > 2 * HTTP_REQUEST_HEAD_MAX)
                return -1;
        whole = http_request_parse(buf, size, &req);
        fuzz_check(status_known(whole), "status %d", whole);
        fuzz_check(whole != 0 || size < HTTP_REQUEST_HEAD_MAX, "%zu bytes and still undecided", size);
        if (whole == 200)
                fuzz_check(req.method == HTTP_METHOD_GET || req.method == HTTP_METHOD_HEAD, "200 for method %d",
                           (int) req.method);

        for (size_t n = 0; n <= size; n += step) {
                int r = http_request_parse(buf, n, &req);
                fuzz_check(status_known(r), "status %d after %zu bytes", r, n);
                if (decided)
                        fuzz_check(r == decided, "%d after %zu bytes, %d before", r, n, decided);
                decided = r;
        }
        if (decided)
                fuzz_check(whole == decided, "%d for the whole, %d for a prefix", whole, decided);
        return 0;
}
