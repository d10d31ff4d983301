/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http-request.h"

/* tchar of RFC 9110: the characters of a method or a field name. */
static bool is_tchar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* "HTTP/1.1", or the first `n` bytes of something like it while the line is incomplete. */
static bool version_matches(const char *v, size_t n) {
        static const char pattern[] = "HTTP/#.#";

        if (n > sizeof(pattern) - 1)
                return false;
        for (size_t i = 0; i < n; i++)
                if (pattern[i] == '#' ? !is_digit(v[i]) : v[i] != pattern[i])
                        return false;
        return true;
}

/* The path of a request target without its query: origin-form ("/metrics?x"), absolute-form
 * ("http://host:9/metrics"), asterisk-form ("*"). NULL if the target is none of these. */
static const char *target_path(const char *t, size_t n, size_t *ret_len) {
        size_t skip = 0, len;

        if (memchr(t, '#', n))
                return NULL; /* a fragment is never sent */
        if (n == 1 && t[0] == '*') {
                *ret_len = 1;
                return t;
        }
        if (t[0] != '/') {
                const char *p;
                if (n > 7 && strncasecmp(t, "http://", 7) == 0)
                        skip = 7;
                else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
                        skip = 8;
                else
                        return NULL;
                p = t + skip;
                while (p < t + n && *p != '/' && *p != '?')
                        p++;
                if (p == t + skip)
                        return NULL; /* no authority */
                skip = p - t;
        }
        t += skip;
        n -= skip;
        for (len = 0; len < n && t[len] != '?'; len++)
                ;
        *ret_len = len;
        return t;
}

/* The request line; `complete` is false while its end has not arrived: then only what is there is checked,
 * so that garbage is refused at once. Returns 0 (need more), or the status. */
static int request_line(const char *s, size_t len, bool complete, HttpRequest *req, bool *ret_http11) {
        const char *target, *v, *path;
        size_t i = 0, t, vlen, path_len;

        while (i < len && is_tchar(s[i]))
                i++;
        if (i == len)
                return complete ? 400 : 0;
        if (i == 0 || s[i] != ' ')
                return 400;
        if (i == 3 && memcmp(s, "GET", 3) == 0)
                req->method = HTTP_METHOD_GET;
        else if (i == 4 && memcmp(s, "HEAD", 4) == 0)
                req->method = HTTP_METHOD_HEAD;
        else
                req->method = HTTP_METHOD_OTHER;

        t = ++i;
        while (i < len && s[i] >= 0x21 && s[i] <= 0x7e)
                i++;
        if (i == len)
                return complete ? 400 : 0;
        if (i == t || s[i] != ' ')
                return 400;
        target = s + t;

        v = s + i + 1;
        vlen = len - i - 1;
        if (!version_matches(v, vlen))
                return 400;
        if (!complete)
                return 0;
        if (vlen != 8)
                return 400;
        if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
                return 505;
        *ret_http11 = v[7] == '1';

        path = target_path(target, i - t, &path_len);
        if (!path)
                return 400;
        if (path_len != strlen("/metrics") || memcmp(path, "/metrics", path_len) != 0)
                return 404;
        if (req->method == HTTP_METHOD_OTHER)
                return 405;
        return 200;
}

typedef struct Fields {
        unsigned hosts;
        bool content_length;
        uint64_t content_length_value;
        bool transfer_encoding;
} Fields;

/* One header field line: name ":" OWS value OWS. Returns false if it is malformed. */
static bool field_line(const char *s, size_t len, Fields *f) {
        size_t i = 0, b, e;

        while (i < len && is_tchar(s[i]))
                i++;
        if (i == 0 || i == len || s[i] != ':')
                return false; /* also an obsolete line folding (a line that starts with a blank) */
        for (size_t j = i + 1; j < len; j++) {
                unsigned char c = s[j];
                if (!(c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80))
                        return false;
        }
        for (b = i + 1; b < len && (s[b] == ' ' || s[b] == '\t'); b++)
                ;
        for (e = len; e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'); e--)
                ;

        if (i == 4 && strncasecmp(s, "host", 4) == 0)
                f->hosts++;
        else if (i == 14 && strncasecmp(s, "content-length", 14) == 0) {
                uint64_t n = 0;
                if (b == e || e - b > 18)
                        return false;
                for (size_t j = b; j < e; j++) {
                        if (!is_digit(s[j]))
                                return false;
                        n = n * 10 + (uint64_t) (s[j] - '0');
                }
                if (f->content_length && f->content_length_value != n)
                        return false;
                f->content_length = true;
                f->content_length_value = n;
        } else if (i == 17 && strncasecmp(s, "transfer-encoding", 17) == 0)
                f->transfer_encoding = true;
        return true;
}

int http_request_parse(const char *buf, size_t n, HttpRequest *ret) {
        HttpRequest req = { .method = HTTP_METHOD_OTHER };
        Fields fields = {};
        bool http11 = false;
        int decided = 0;
        size_t pos = 0;

        for (unsigned line = 0;; line++) {
                const char *s = buf + pos, *lf = memchr(s, '\n', n - pos);
                size_t len = lf ? (size_t) (lf - s) : n - pos;
                bool complete = lf != NULL;

                /* A CR only right before the LF; no NUL anywhere. */
                if (complete && len > 0 && s[len - 1] == '\r')
                        len--;
                if (memchr(s, '\0', len) || memchr(s, '\r', complete ? len : (len > 0 ? len - 1 : 0)))
                        return 400;
                if (!complete) {
                        if (line == 0) {
                                int r = request_line(s, len - (len > 0 && s[len - 1] == '\r'), false, &req, &http11);
                                if (r > 0)
                                        return r;
                        }
                        return n >= HTTP_REQUEST_HEAD_MAX ? 431 : 0;
                }
                if ((size_t) (lf - buf) + 1 > HTTP_REQUEST_HEAD_MAX)
                        return 431;

                if (line == 0) {
                        decided = request_line(s, len, true, &req, &http11);
                        if (decided == 400 || decided == 505)
                                return decided;
                } else if (len == 0) {
                        /* The end of the head. */
                        if ((http11 && fields.hosts != 1) || fields.hosts > 1)
                                return 400;
                        if (fields.content_length && fields.transfer_encoding)
                                return 400;
                        *ret = req;
                        return decided;
                } else if (!field_line(s, len, &fields))
                        return 400;
                pos = (size_t) (lf - buf) + 1;
        }
}

const char *http_status_reason(int status) {
        switch (status) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 408:
                return "Request Timeout";
        case 431:
                return "Request Header Fields Too Large";
        case 500:
                return "Internal Server Error";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Error";
        }
}
