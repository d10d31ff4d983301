/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* rpsup-metrics-http's request parser (ctl/http-request.c): which status each request gets, also while it
 * arrives byte by byte, and how its metrics of several services are merged (ctl/metrics-merge.c). */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-request.h"
#include "metrics-merge.h"
#include "prometheus-label.h"

static const struct {
        const char *request;
        int status;
        HttpMethod method;
} cases[] = {
        { "GET /metrics HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET /metrics HTTP/1.0\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET /metrics HTTP/1.0\n\n", 200, HTTP_METHOD_GET },
        { "HEAD /metrics HTTP/1.1\r\nhost:h\r\n\r\n", 200, HTTP_METHOD_HEAD },
        { "GET /metrics?a=b&c HTTP/1.1\r\nHost: h\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET http://h:9/metrics HTTP/1.1\r\nHost: h:9\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nX-Value: \t caf\xc3\xa9 \t\r\n\r\n", 200, HTTP_METHOD_GET },
        { "GET /metrics/ HTTP/1.1\r\nHost: h\r\n\r\n", 404, HTTP_METHOD_GET },
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 404, HTTP_METHOD_GET },
        { "GET /metricsx HTTP/1.1\r\nHost: h\r\n\r\n", 404, HTTP_METHOD_GET },
        { "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 404, HTTP_METHOD_GET },
        { "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", 405, HTTP_METHOD_OTHER },
        { "get /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 405, HTTP_METHOD_OTHER },
        { "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 404, HTTP_METHOD_OTHER },
        { "GET /metrics HTTP/2.0\r\nHost: h\r\n\r\n", 505, HTTP_METHOD_GET },
        { "GET /metrics HTTP/0.9\r\n\r\n", 505, HTTP_METHOD_GET },
        { "GET /metrics\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\n\r\n", 400, 0 },                       /* no Host */
        { "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 0 },  /* two */
        { "GET /metrics HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, 0 },
        { "GET  /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { " GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1 \r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.10\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /metrics http/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /metrics#x HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET http:///metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /m\xc3\xa9trics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\rHost: h\r\n\r\n", 400, 0 },              /* bare CR */
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost : h\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, 0 },
        { "GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, 0 },
        { "\r\nGET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400, 0 },
        { "garbage\r\n\r\n", 400, 0 },
};

static void test_statuses(void **state) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *s = cases[i].request;
                HttpRequest req = { .method = 42 };
                int r = http_request_parse(s, strlen(s), &req);
                if (r != cases[i].status)
                        print_error("case %zu: %d, expected %d\n", i, r, cases[i].status);
                assert_int_equal(r, cases[i].status);
                if (r == 200)
                        assert_int_equal(req.method, cases[i].method);
        }
}

/* Byte by byte: 0 (more) until the end of the head for a good request; a bad one is refused once its
 * line is there, and garbage in the request line at once. */
static void test_incremental(void **state) {
        static const char good[] = "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n";
        static const char tls[] = "\x16\x03\x01\x02\x00";
        HttpRequest req;

        for (size_t n = 0; n < strlen(good); n++)
                assert_int_equal(http_request_parse(good, n, &req), 0);
        assert_int_equal(http_request_parse(good, strlen(good), &req), 200);
        assert_int_equal(http_request_parse(tls, 1, &req), 400);
        assert_int_equal(http_request_parse("GET /metrics HTTX", 17, &req), 400);
        assert_int_equal(http_request_parse("GET /metrics HTTP/1.1\r", 22, &req), 0);
        assert_int_equal(http_request_parse("GET /metrics HTTP/1.1\r\nHost: h\r\n", 32, &req), 0);
}

/* A head that does not end within HTTP_REQUEST_HEAD_MAX bytes: 431, whatever its shape. */
static void test_size_bound(void **state) {
        size_t n = HTTP_REQUEST_HEAD_MAX + 100;
        char *buf = malloc(n);
        HttpRequest req;
        size_t pos;

        assert_non_null(buf);
        pos = (size_t) snprintf(buf, n, "GET /metrics HTTP/1.1\r\nHost: h\r\n");
        while (pos + 12 < n)
                pos += (size_t) snprintf(buf + pos, n - pos, "X-A: 12345\r\n");
        assert_int_equal(http_request_parse(buf, HTTP_REQUEST_HEAD_MAX - 10, &req), 0);
        assert_int_equal(http_request_parse(buf, HTTP_REQUEST_HEAD_MAX, &req), 431);
        assert_int_equal(http_request_parse(buf, pos, &req), 431);

        memcpy(buf, "GET /", 5);
        memset(buf + 5, 'a', n - 5);
        assert_int_equal(http_request_parse(buf, HTTP_REQUEST_HEAD_MAX, &req), 431);
        free(buf);
}

/* Two services' families, each once, samples together, in the order of first appearance; a family with
 * another TYPE in the second leaves out that one's samples; samples without a header are untyped. */
static void test_merge(void **state) {
        static const char a[] = "# HELP x_total X.\n# TYPE x_total counter\nx_total{service=\"a\"} 1\n"
                                "# HELP y Y.\n# TYPE y gauge\ny{service=\"a\",k=\"1\"} 2\ny{service=\"a\",k=\"2\"} 3\n";
        static const char b[] = "# HELP y Y.\n# TYPE y gauge\ny{service=\"b\",k=\"1\"} 4\n"
                                "# HELP x_total X, another text.\n# TYPE x_total gauge\nx_total{service=\"b\"} 5\n"
                                "# HELP z Z.\n# TYPE z counter\nz_total{service=\"b\"} 6\n# a comment\n\nu 7\n";
        MetricsMerge *m = metrics_merge_new();
        char *out = NULL;
        size_t size = 0;
        FILE *f;

        assert_non_null(m);
        assert_int_equal(metrics_merge_add(m, a), 0);
        assert_int_equal(metrics_merge_add(m, b), 1);
        f = open_memstream(&out, &size);
        assert_non_null(f);
        metrics_merge_write(m, f);
        fclose(f);
        assert_string_equal(out, "# HELP x_total X.\n# TYPE x_total counter\nx_total{service=\"a\"} 1\n"
                                 "# HELP y Y.\n# TYPE y gauge\ny{service=\"a\",k=\"1\"} 2\ny{service=\"a\",k=\"2\"} 3\n"
                                 "y{service=\"b\",k=\"1\"} 4\n"
                                 "# HELP z Z.\n# TYPE z counter\nz_total{service=\"b\"} 6\n"
                                 "u 7\n");
        free(out);
        metrics_merge_free(m);
}

static void test_label_value(void **state) {
        char *s = prometheus_label_value("we\"b\\x2d\napi\xff");

        assert_string_equal(s, "we\\\"b\\\\x2d\\napi\xef\xbf\xbd");
        free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_statuses),
                cmocka_unit_test(test_incremental),
                cmocka_unit_test(test_size_bound),
                cmocka_unit_test(test_merge),
                cmocka_unit_test(test_label_value),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
