/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What is read from /proc, parsed (by rpsupctl fds, and by rpsupd for its workers' start times and
 * connections): the target of a /proc/PID/fd link, /proc/PID/stat, /proc/PID/fdinfo/FD and a line of
 * /proc/net/unix. Each returns 0 or -EINVAL for text of another form. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* "socket:[12345]" → 12345 (never 0). */
int parse_socket_link(const char *target, uint64_t *ret_inode);
/* "PID (COMM) STATE PPID ..." → PPID and COMM (which may hold spaces and parentheses: it ends at the last
 * ')'), truncated to comm_size - 1 bytes. */
int parse_proc_stat(const char *text, pid_t *ret_ppid, char *comm, size_t comm_size);
/* Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot (with the pid, this names
 * one process: a pid used again belongs to a process started later). */
int parse_proc_stat_start_time(const char *text, uint64_t *ret);
/* The "flags:" line of an fdinfo file (octal open flags, O_CLOEXEC included). */
int parse_fdinfo_flags(const char *text, unsigned *ret_flags);
/* "Num: RefCount Protocol Flags Type St Inode [Path]" → the inode, and the path (NULL when unbound; an
 * abstract name starts with '@'), pointing into line, without the line end. */
int parse_unix_line(const char *line, uint64_t *ret_inode, const char **ret_path, size_t *ret_path_len);
