/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-metrics-http's merge of the services' metrics (ctl/metrics-merge.c). Input: one exposition, as a
 * service's rpsupd would send it. Merged with itself (two services with the same families) it gives the
 * same HELP and TYPE lines, in the same order, as merged alone: each family once. */

#include "fuzz.h"
#include "metrics-merge.h"

/* The "# " lines of the merged text. */
static char *merged_headers(const char *text, bool twice) {
        _cleanup_(metrics_merge_freep) MetricsMerge *m = metrics_merge_new();
        _cleanup_free_ char *out = NULL;
        char *headers;
        size_t size = 0, n = 0;
        FILE *f;

        fuzz_check(m, "out of memory");
        fuzz_check(metrics_merge_add(m, text) >= 0, "out of memory");
        if (twice)
                fuzz_check(metrics_merge_add(m, text) >= 0, "out of memory");
        f = open_memstream(&out, &size);
        fuzz_check(f, "out of memory");
        metrics_merge_write(m, f);
        fuzz_check(fclose(f) == 0, "out of memory");
        headers = malloc(size + 1);
        fuzz_check(headers, "out of memory");
        for (const char *line = out; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) + 1 : strlen(line);
                if (len >= 2 && line[0] == '#' && line[1] == ' ') {
                        memcpy(headers + n, line, len);
                        n += len;
                }
                line += len;
        }
        headers[n] = 0;
        return headers;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup_logging();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL, *once = NULL, *twice = NULL;

        if (size > FUZZ_INPUT_MAX)
                return -1;
        text = fuzz_string(data, size);
        once = merged_headers(text, false);
        twice = merged_headers(text, true);
        fuzz_check(streq(once, twice), "headers merged alone:\n%s\nmerged with itself:\n%s", once, twice);
        return 0;
}
