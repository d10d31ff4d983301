/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A strict reader of the Prometheus text exposition format 0.0.4, for checking what rpsupd writes: every
 * line a comment, "# HELP name text", "# TYPE name type" or "name{label="value",...} value [timestamp]";
 * names and label names well formed; label values valid UTF-8 (as utf8.h has it) with exactly \\, \" and
 * \n escaped; HELP and TYPE once per family and before its samples; each family's lines in one contiguous
 * group; every sample of a declared family; no series twice. */

/* 0 when `text` is valid; otherwise -EINVAL and *ret_error says which line and why (caller frees). */
int prometheus_check(const char *text, char **ret_error);
