/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Bounds on everything a config file, an operator or a peer can make rpsupd allocate. */

#define WORKERS_MAX 512u            /* Workers= and "rpsupctl scale" */
#define LISTEN_MAX 32u              /* ListenStream= + ListenDatagram= entries */
#define ENVIRONMENT_MAX 512u        /* Environment= assignments */
#define CONFIG_GROUPS_MAX 65536u    /* supplementary groups of User= (the kernel's NGROUPS_MAX) */
#define CONFIG_SIZE_MAX (1024u * 1024u)
#define CONFIG_LINE_MAX (64u * 1024u)
#define CONFIG_TIME_MAX_USEC (7ULL * 24ULL * 3600ULL * 1000000ULL) /* any time span in a config */
#define GENERATIONS_MAX 16u         /* live + starting + draining generations at once */
/* Slots named in the state file: every generation full, the live one with as many scaled-in slots still
 * draining. Beyond that the state is not written (logged): a restart could not take the workers over. */
#define STATE_SLOTS_MAX (2u * GENERATIONS_MAX * WORKERS_MAX)
#define STATE_LINE_MAX 256u         /* a line of the state file (rpsupd writes at most about 120 bytes) */
#define TAKEOVER_PIDFDS_MAX 512u    /* pidfds waited on at once when ending an earlier rpsupd's processes */
#define CGROUP_LEFTOVERS_MAX 65536u /* processes left in the service's cgroup ended at start-up; more: an error */
#define CGROUP_PENDING_REMOVALS_MAX 1024u /* cgroups watched until empty to be removed; more: left until their
                                           * generation goes or the service stops (logged) */
#define CGROUP_KILL_PIDS_MAX 65536u /* processes signalled per cgroup per pass where cgroup.kill is missing */
#define CGROUP_KILL_PASSES 16u      /* passes of SIGKILL over a cgroup where cgroup.kill is missing */
#define CGROUP_KILL_DEPTH 16u       /* cgroup levels below a worker's searched where cgroup.kill is missing */
#define CGROUP_REMOVE_RETRIES 50u   /* rmdir() of an emptied cgroup that the kernel still holds, 20 ms apart */
/* Copies rpsupd keeps of what it hands to the fd store (for a reexec): its listeners (LISTENERS_MAX), its
 * sockets and BPF objects, and whatever else goes through fdstore_add() (workers' stored fds, bounded by
 * their own limit). Beyond it an fd is not kept (logged) and a reexec is refused. */
#define FDSTORE_KEPT_MAX 16384u
/* Control clients: root and rpsupd's own uid have a budget of their own that other users cannot use up. */
#define CONTROL_CONNECTIONS_PRIVILEGED_MAX 32u   /* clients of uid 0 and rpsupd's uid */
#define CONTROL_CONNECTIONS_UNPRIVILEGED_MAX 32u /* clients of all other uids together */
#define CONTROL_CONNECTIONS_PER_UID_MAX 8u       /* clients of one unprivileged uid */
#define BALANCE_SCRAPERS_MAX 8u                  /* uids whose accept-queue high-water marks are kept since
                                                  * their own last GetMetrics (more: the least recent goes) */
#define CONTROL_BACKLOG 4096u                    /* connections waiting to be accepted (capped by somaxconn) */
#define CONTROL_AUTH_USEC (5ULL * 1000000ULL)    /* from connecting to BEGIN, however slowly the bytes come */
#define CONTROL_MESSAGE_USEC (5ULL * 1000000ULL) /* from a message's first byte to its last */
#define CONTROL_WRITE_USEC (10ULL * 1000000ULL)  /* replies waiting for a client that does not read them */
#define CONTROL_IDLE_USEC (60ULL * 1000000ULL)   /* no call and nothing in flight; bytes that do not complete a
                                                  * message do not count */
#define CONTROL_AUTH_SIZE_MAX 4096u              /* the SASL exchange before BEGIN */
#define CONTROL_MESSAGE_MAX (64u * 1024u)        /* an incoming control message, header included */
#define CONTROL_QUEUED_REPLIES_MAX 1u            /* replies kept for a client that does not read: its next
                                                  * call is read only when they are gone */
#define CONTROL_SNDBUF (256u * 1024u)            /* the kernel's send buffer of a control connection */
#define CONTROL_ACCEPT_PAUSE_USEC (1000000ULL)   /* accepting rests after accept() failed for want of fds */
#define FD_RESERVE 256u                          /* fds below RLIMIT_NOFILE that control clients cannot take:
                                                  * rpsupd's own work (workers, listeners, state) needs them */
#define FD_COUNT_USEC (100ULL * 1000ULL) /* open fds are counted at most this often (control admission) */
#define NOTIFY_MESSAGE_MAX 4096u    /* a worker's sd_notify() datagram */
/* Workers' fd store (FDSTORE=1): FileDescriptorStoreMax= per slot at most, and all slots together. Every fd
 * is also in systemd's fd store (the unit's FileDescriptorStoreMax= must leave room for them besides the
 * listeners) and open in rpsupd (LimitNOFILE=). */
#define WORKER_FDSTORE_SLOT_MAX 4096u
#define WORKER_FDSTORE_SERVICE_MAX 8192u
/* ...and the bytes of their names (each with its ':' separator), beyond which an fd is refused (logged): Linux
 * takes no environment string over 128 KiB (MAX_ARG_STRLEN; execve() fails with E2BIG). A slot's FDNAME=s go
 * to its next worker in LISTEN_FDNAMES after its listeners' names (LISTEN_MAX of at most 255 bytes). The
 * names in systemd's fd store (WORKER_FDSTORE_PREFIX...) go, with the listeners' (LISTENERS_MAX of about
 * 13-18 bytes: 74 KiB at most) and rpsupd's own, into rpsupd's LISTEN_FDNAMES when systemd starts it again
 * and into RPSUP_REEXEC_NAMES on a reexec. */
#define WORKER_FDSTORE_SLOT_NAMES_MAX (32u * 1024u)
#define WORKER_FDSTORE_SERVICE_NAMES_MAX (48u * 1024u)
#define STATUS_TEXT_MAX 256u        /* a worker's STATUS= kept for display */
#define LISTENERS_MAX 4096u         /* listening sockets held at once, all generations (sockarray size) */
#define LISTENER_FDS_REPLY_MAX 253u /* fds in one GetListenerFds reply: the kernel passes 253 per message */
#define RESTART_DELAY_MIN_USEC (100ULL * 1000ULL)
#define RESTART_DELAY_MAX_USEC (30ULL * 1000000ULL)
#define RESTART_HEALTHY_USEC (10ULL * 1000000ULL) /* a worker up this long resets its slot's backoff */
#define CRASH_LOOP_FAILURES 5u      /* consecutive failures of one slot reported as a crash loop */
#define READY_EXTEND_FACTOR 4u     /* EXTEND_TIMEOUT_USEC= stretches a start to at most this x ReadyTimeoutSec= */
/* StallSec=auto: connections queued for a stalled worker move to the others within about 0.6 s (this plus
 * a sampling period), before clients that give up after 1 s do; a worker busy that long with one request
 * is replaced gently (KillSignal), so a false alarm costs a process start, not a request. */
#define STALL_AUTO_USEC (500ULL * 1000ULL)
#define DRAIN_CHECK_USEC (100ULL * 1000ULL) /* how often a retiring worker is looked at: has it drained? */
/* Retiring workers are looked at on one grid of DRAIN_CHECK_USEC, so that those due together share one dump
 * of the kernel's connection table, taken no more than this long before. */
#define DRAIN_CHECK_SHARE_USEC (5ULL * 1000ULL)
#define DRAIN_CHECK_UNKNOWN_USEC (1000ULL * 1000ULL) /* ...when the last look could not tell */
/* Counting a retiring worker's open connections (worker-connections.c): beyond these its count is unknown
 * (and it is stopped at its drain deadline, not when idle). */
#define DRAIN_PROCESSES_MAX 256u    /* the worker and its descendants */
#define DRAIN_FDS_MAX 4096u         /* their open fds and threads, all together */
#define DRAIN_SOCKETS_MAX 65536u    /* connections on the listeners' ports, of every process */
#define PROBE_PATH_MAX 1024u        /* ReadyProbe=http:/PATH */
#define PROBE_COUNT_MAX 100u        /* ReadyProbePasses=, ReadyProbeFailures= */
#define PROBE_INTERVAL_MIN_USEC (10ULL * 1000ULL) /* ReadyProbeIntervalSec=: probes are not a busy loop */
#define PROBE_ANSWER_MAX 4096u      /* bytes of an HTTP probe's answer read for its status line */
#define SOAK_MAX_USEC (3600ULL * 1000000ULL) /* SoakSec= */
/* FlowIdleSec= default: a retiring worker's datagram flows that sent nothing for this long are over (it is
 * then asked to stop; its drain window bounds it in any case). Longer than the keep-alive period of most
 * datagram protocols' clients under load (a game tick, a media stream), short enough not to hold old
 * generations for long. */
#define FLOW_IDLE_DEFAULT_USEC (5ULL * 1000000ULL)
/* How often status and metrics may start a count of the flows in the flow table (a walk of the whole table:
 * about 0.3 s for a million flows, done FLOW_COUNT_STEP entries per turn of the event loop, a few ms each);
 * in between, and while a walk goes on, they show the last complete count. */
#define FLOW_COUNT_USEC (2ULL * 1000000ULL)
#define FLOW_COUNT_STEP 16384
