/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the kernel did while a generation retired: the network namespace's TcpExt counters
 * (TCPMigrateReqSuccess/Failure, ListenDrops, ListenOverflows) from the moment it stopped taking new
 * connections until its last worker was gone. An operator reads there that nothing was dropped. */

#include <stdint.h>

#include "netstat.h"
#include "time-util.h"

#define RETIREMENTS_MAX 16

typedef struct Retirement {
        uint64_t generation;
        usec_t began, ended;     /* CLOCK_MONOTONIC; ended 0 while it retires */
        NetstatCounters at_begin;
        NetstatCounters delta;   /* final once ended; so far while it retires */
} Retirement;

typedef struct Retirements {
        Retirement list[RETIREMENTS_MAX]; /* oldest first */
        unsigned n;
} Retirements;

void retirements_begin(Retirements *r, uint64_t generation);
/* Returns the finished record, or NULL if the generation's start was not recorded. */
const Retirement *retirements_end(Retirements *r, uint64_t generation);
/* The record of a generation, with delta brought up to date if it still retires. */
const Retirement *retirements_get(Retirements *r, uint64_t generation);
const Retirement *retirements_last_finished(const Retirements *r);
