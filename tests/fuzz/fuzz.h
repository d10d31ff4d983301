/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every libFuzzer target of rpsup shares: the entry points, a way to cut the input into fields, and
 * a check that fails loudly (libFuzzer then keeps the input as a crash-* reproducer). */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Inputs larger than this teach nothing the small ones do not, and make each run slow. */
#define FUZZ_INPUT_MAX (64 * 1024)

/* An invariant of the code under test: when it does not hold, abort with what was expected. */
#define fuzz_check(expr, ...)                                                                   \
        do {                                                                                    \
                if (!(expr)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #expr); \
                        fprintf(stderr, __VA_ARGS__);                                           \
                        fputc('\n', stderr);                                                    \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* RPSUP_FUZZ_PRINT=1: the targets show what they produced, for a person replaying an input. */
static bool fuzz_print;

/* Quiet unless RPSUP_LOG_LEVEL asks for messages: logging every rejected input would be most of the
 * time spent. */
static inline void fuzz_setup_logging(void) {
        log_set_max_level(LOG_CRIT);
        log_setup("fuzz");
        fuzz_print = getenv("RPSUP_FUZZ_PRINT");
}

/* The input as a NUL-terminated string (a NUL in the input ends it early). Caller frees. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* Cuts the input into NUL-separated fields, in order; past the end, every field is NULL. */
typedef struct FuzzFields {
        const uint8_t *p, *end;
} FuzzFields;

static inline FuzzFields fuzz_fields(const uint8_t *data, size_t size) {
        return (FuzzFields) { .p = data, .end = data + size };
}

/* The next field as a string (caller frees), or NULL when the input is used up. */
static inline char *fuzz_next(FuzzFields *f) {
        const uint8_t *nul;
        char *s;

        if (f->p >= f->end)
                return NULL;
        nul = memchr(f->p, 0, (size_t) (f->end - f->p));
        if (!nul)
                nul = f->end;
        s = fuzz_string(f->p, (size_t) (nul - f->p));
        f->p = nul < f->end ? nul + 1 : f->end;
        return s;
}

/* The next byte of the input as a number, 0 when the input is used up. */
static inline uint8_t fuzz_byte(FuzzFields *f) {
        return f->p < f->end ? *f->p++ : 0;
}

static inline uint64_t fuzz_u64(FuzzFields *f) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | fuzz_byte(f);
        return v;
}
