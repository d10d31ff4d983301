/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a connection probe (ReadyProbe=tcp, http:/PATH) connects to, what it sends and how it reads the
 * answer: no I/O here (readiness-probe.c does it). */

#include "config.h"
#include "socket-address.h"

#define PROBE_WHAT_MAX 128 /* a probe's description of what it saw, with its NUL */

/* The address a probe connects to: the config's first ListenStream=, with a wildcard address replaced by
 * loopback (0.0.0.0 → 127.0.0.1, [::] → [::1]). *ret_index: its index in c->listen (for probe_aim()).
 * -ENOENT: the config has no ListenStream=. */
int probe_target(const Config *c, size_t *ret_index, SocketAddress *ret);

/* The value of RPSUP_PROBE_ADDRESS and of Host: "127.0.0.1:8080", "[::1]:8080", or a socket path (Host:
 * "localhost"). */
const char *probe_target_format(const SocketAddress *a, char *buf, size_t l);

/* "GET PATH HTTP/1.1" with Host:, User-Agent: rpsup-probe and Connection: close. */
int http_probe_request(const char *path, const SocketAddress *target, char **ret, size_t *ret_size);

/* Reads the status line at the start of an answer (`n` bytes so far; `eof`: nothing more will come).
 * Returns 1 and *ret_code (100..999) with *what ("HTTP 503 Service Unavailable", printable and bounded) once
 * the line is complete; 0 if more bytes are needed; -EBADMSG if it is not an HTTP status line (then *what
 * says what came, sanitised). */
int http_status_parse(const char *buf, size_t n, bool eof, unsigned *ret_code, char *what, size_t what_size);
/* Does a status code pass the probe: 2xx or 3xx. */
bool http_status_passes(unsigned code);

/* Copies at most `n` bytes of `s` into `buf` as printable ASCII ('?' for any other byte), bounded by `l`
 * ("..." marks a cut). */
char *probe_sanitize(const char *s, size_t n, char *buf, size_t l);
