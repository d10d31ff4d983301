/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Bounds on everything a config file, an operator or a peer can make rpsupd allocate. */

#define WORKERS_MAX 512u            /* Workers= and "rpsupctl scale" */
#define LISTEN_MAX 32u              /* ListenStream= + ListenDatagram= entries */
#define ENVIRONMENT_MAX 512u        /* Environment= assignments */
#define CONFIG_SIZE_MAX (1024u * 1024u)
#define CONFIG_LINE_MAX (64u * 1024u)
#define GENERATIONS_MAX 16u         /* live + starting + draining generations at once */
#define CONTROL_CONNECTIONS_MAX 64u /* concurrent rpsupctl (or other) clients */
#define CONTROL_IDLE_USEC (60ULL * 1000000ULL) /* a client with nothing in flight is dropped after this */
#define NOTIFY_MESSAGE_MAX 4096u    /* a worker's sd_notify() datagram */
#define STATUS_TEXT_MAX 256u        /* a worker's STATUS= kept for display */
#define LISTENERS_MAX 4096u         /* listening sockets held at once, all generations (sockarray size) */
#define RESTART_DELAY_MIN_USEC (100ULL * 1000ULL)
#define RESTART_DELAY_MAX_USEC (30ULL * 1000000ULL)
#define RESTART_HEALTHY_USEC (10ULL * 1000000ULL) /* a worker up this long resets its slot's backoff */
#define CRASH_LOOP_FAILURES 5u      /* consecutive failures of one slot reported as a crash loop */
#define STALL_AUTO_USEC (5ULL * 1000000ULL) /* StallSec=auto */
