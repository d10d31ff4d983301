/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one HTTP request rpsup-metrics-http answers, parsed strictly (RFC 9112): a request line
 * "METHOD SP TARGET SP HTTP/1.x", header fields "name: value", an empty line; CRLF or LF line ends. No
 * obsolete line folding, no bare CR, no NUL, no control characters in a value, exactly one Host: in
 * HTTP/1.1, no Content-Length with Transfer-Encoding. The request's body, if any, is not read. */

#include <stddef.h>

/* What the head of a request (request line and header fields) may take. */
#define HTTP_REQUEST_HEAD_MAX 8192U

typedef enum HttpMethod {
        HTTP_METHOD_OTHER,
        HTTP_METHOD_GET,
        HTTP_METHOD_HEAD,
} HttpMethod;

typedef struct HttpRequest {
        HttpMethod method; /* valid once the request line was read */
} HttpRequest;

/* Parses the first n bytes received on a connection. Returns 0 while the head is incomplete and still
 * well-formed so far (read more), else the status to answer: 200 (GET or HEAD of /metrics), 400 (malformed),
 * 404 (another path), 405 (another method), 431 (the head does not fit in HTTP_REQUEST_HEAD_MAX bytes),
 * 505 (an HTTP version other than 1.0 and 1.1). */
int http_request_parse(const char *buf, size_t n, HttpRequest *ret);

/* The reason phrase of a status this program sends. */
const char *http_status_reason(int status);
