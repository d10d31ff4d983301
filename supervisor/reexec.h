/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* rpsupd replacing its own image in place (rpsupctl reexec, SIGUSR2): same process, same pid, so its workers
 * stay its children and systemd's MAINPID does not change. The running image passes what it keeps of the fd
 * store (systemd-fdstore.c) and an fd of its own binary; the new image moves the fds to 3, 4, ... as
 * LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID and takes over through the ordinary restart path (takeover.c). A new
 * image that cannot take over executes the old one again through that fd (reexec_refuse()), which takes over
 * in turn and reports the failure.
 *
 * Between the images, in the environment (removed at start-up, so that workers never see it):
 *   RPSUP_REEXEC_FDS       fd numbers, ':'-separated, in the order of RPSUP_REEXEC_NAMES
 *   RPSUP_REEXEC_NAMES     their fd store names, ':'-separated
 *   RPSUP_REEXEC_FALLBACK  the fd of the image that exec'd (open, not O_CLOEXEC)
 *   RPSUP_REEXEC_BINARY    the path rpsupd was started from (what the next reexec executes)
 *   RPSUP_REEXEC_STEER_ABI the sending image's STEER_ABI
 *   RPSUP_REEXEC_SEQ       "SEQ OK FAILED SINCE": this attempt's number, the counts before it, and when it began
 *                          (CLOCK_MONOTONIC usec)
 *   RPSUP_REEXEC_REFUSED   only back into the old image: why the new one refused
 *   RPSUP_REEXEC_PROTOCOL  the sending image's reexec protocol version
 *   RPSUP_REEXEC_CONFIG    a sealed memfd with the text of the config the sending image runs with: if the new
 *                          image refuses, the old one takes over with it, whatever is on disk
 *
 * The running image executes a binary only if it carries the marker "rpsupd-reexec-protocol=N" with N at
 * least its own (a binary older than reexec would start afresh: take none of the fds, end the workers). */

#include "config.h"
#include "macro.h"
#include "time-util.h"

/* The last reexec as status shows it. */
typedef struct ReexecRecord {
        uint64_t seq;          /* attempts so far (the last one's number); 0: none */
        uint64_t done;         /* attempts that took over */
        uint64_t failed;       /* attempts that failed (exec failed, or the new image refused) */
        bool last_failed;
        char *last_error;      /* why the last one failed */
        usec_t last_usec;      /* the last attempt: from the call until the taking image ran its loop */
        usec_t last_at;        /* CLOCK_REALTIME, when the last attempt ended */
} ReexecRecord;

/* At the top of main(), before anything opens an fd: if this image was exec'd by reexec, moves the passed
 * fds to 3, 4, ... and sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID. Returns 1 if it was, 0 if not, and
 * keeps argv for a later reexec. */
int reexec_receive(int argc, char *argv[]);
/* After reexec_receive(): the fd of the running binary and the path to execute. Logged if it fails (then a
 * reexec is refused). */
int reexec_setup(void);
/* This image was exec'd by a reexec (or back into after a refusal: `refused` is set then). */
bool reexec_taking_over(void);
/* Taking over from a reexec, and not executed back into after a refusal: this image may still refuse. */
bool reexec_may_refuse(void);
/* Why this image cannot take over from the sending image's protocol (allocated), or NULL. */
char *reexec_protocol_refusal(void);
/* config_load(), but back in the old image after a refusal: the config it ran with before (passed in a
 * memfd), falling back to the file. */
int reexec_load_config(const char *path, const char *service, Config **ret, char **ret_error);
/* The sending image's STEER_ABI; -1 if not a reexec. */
int reexec_sender_abi(void);
/* Why a reexec cannot be attempted now (no binary fd, fds not all kept), or NULL. */
const char *reexec_unavailable(void);
/* The record: counts carried across images, the last attempt's outcome. */
const ReexecRecord *reexec_record(void);
/* This image took over (call once the event loop is about to run): counts the attempt as done, or as failed
 * if this is the old image back after a refusal. */
void reexec_finish_takeover(void);

/* An attempt announced (its number given out) that is not made after all: recorded as failed, with why. */
void reexec_abandon(const char *error);
/* Executes the binary as it is on disk now, passing every kept fd, `runtime_dir`, this image's `steer_abi`
 * (STEER_ABI, which main.c and manager.c are built with) and the `running` config's text. Returns only if
 * it did not: the binary is missing, does not speak the reexec protocol, or execve() failed; nothing
 * changed then, and the failure is recorded and returned. */
int reexec_exec(const char *runtime_dir, int steer_abi, const Config *running);
/* In the new image, before it changed anything: executes the old image again (the fallback fd) with the
 * same fds, saying why; `runtime_dir` NULL: $RUNTIME_DIRECTORY. Returns only if that fails (then this image must not go on: exit). */
int reexec_refuse(const char *reason, const char *runtime_dir);
/* Frees what reexec keeps (before exit). */
void reexec_done(void);
