/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A label value as the Prometheus text exposition format (0.0.4) has it: valid UTF-8 (invalid sequences
 * become U+FFFD), with backslash, double quote and newline escaped. NULL counts as "". Returns a new
 * string, or NULL when out of memory. */
char *prometheus_label_value(const char *s);
