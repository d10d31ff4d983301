/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What this kernel and these privileges really allow, found by trying: reuseport groups, BPF maps,
 * sk_reuseport programs (select, and select-or-migrate), attaching them, and the migration sysctl. Used by
 * rpsupd at start-up (Strategy=auto, and the answer to Probe, kept until a Reprobe) and by "rpsupctl probe".
 * Does not log (libbpf's own messages aside, see steer.h). */

#include <stdbool.h>

#include "strategy-kind.h"

#define PROBE_REASON_MAX 256

typedef struct ProbeResult {
        char kernel[160];
        bool reuseport;
        bool bpf_maps;             /* REUSEPORT_SOCKARRAY can be created (CAP_BPF) */
        bool select_prog;          /* sk_reuseport program loads and attaches */
        bool migrate_prog;         /* sk_reuseport/migrate program loads and attaches (Linux >= 5.14) */
        int migrate_sysctl;        /* net.ipv4.tcp_migrate_req in this namespace: -1 missing, 0, 1 */
        char bpf_reason[PROBE_REASON_MAX];
        bool available[_STRATEGY_MAX];
        char reason[_STRATEGY_MAX][PROBE_REASON_MAX];
} ProbeResult;

/* Set RPSUP_PROBE_DENY_BPF=1 to make every BPF step fail as if the kernel refused it (for tests of the
 * fallback). */
void probe_run(ProbeResult *ret);
