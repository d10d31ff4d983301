/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The workers' fd store: fds a worker keeps with sd_notify("FDSTORE=1") (systemd's protocol, for one slot
 * of workers instead of one service), handed to the next worker of its slot after its listeners in
 * LISTEN_FDS/LISTEN_FDNAMES. A slot is its index (RPSUP_WORKER): the restart of slot i after a crash and
 * the worker of index i in the next generation are its next workers. Each fd is kept until the worker
 * removes it (FDSTOREREMOVE=1), it hangs up (unless stored with FDPOLL=0), or no generation has the slot
 * any more (scale-in). Every fd is also in systemd's fd store (systemd-fdstore.h) under a name of its own
 * (WORKER_FDSTORE_PREFIX...), from which a restarted rpsupd rebuilds the store. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "listener.h"
#include "macro.h"
#include "service.h"
#include "systemd-fdstore.h"

/* The names rpsupd gives the workers' fds in systemd's fd store:
 * "wfd.<slot index>.<sequence>.<p: watched for hang-ups | n: FDPOLL=0>.<FDNAME>" (decimal numbers), at most
 * NOTIFY_FDNAME_MAX bytes: an FDNAME= too long for that is refused. */
#define WORKER_FDSTORE_PREFIX "wfd."

typedef struct WorkerFdStore WorkerFdStore;

int worker_fdstore_new(sd_event *e, WorkerFdStore **ret);
/* Closes rpsupd's copies; systemd's stay (for the next rpsupd). */
WorkerFdStore *worker_fdstore_free(WorkerFdStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerFdStore *, worker_fdstore_free);

/* rpsupd's listeners, which no worker may store (nor any listening socket). */
void worker_fdstore_set_listeners(WorkerFdStore *s, const ListenerSet *listeners);
/* rpsupd's listeners may have changed (once per turn of the loop): what a worker may not store is read
 * again when next needed. */
void worker_fdstore_listeners_changed(WorkerFdStore *s);

/* FDSTORE=1 from the worker `pid` of slot `index`: keeps fds[] (FDNAME= `name`, NULL: "stored"; watched for
 * hang-ups if `poll`), at most `slot_max` in the slot (its generation's FileDescriptorStoreMax=) and
 * WORKER_FDSTORE_SERVICE_MAX in all, their names within WORKER_FDSTORE_SLOT_NAMES_MAX and
 * WORKER_FDSTORE_SERVICE_NAMES_MAX, the fd and rpsupd's copy of it below RLIMIT_NOFILE less FD_RESERVE; no
 * listening socket. Takes every fd: those kept are set to -EBADF, the others (refused, logged) are closed. */
void worker_fdstore_add(WorkerFdStore *s, unsigned index, pid_t pid, unsigned slot_max, const char *name, bool poll,
                        int *fds, size_t n_fds);
/* FDSTOREREMOVE=1: drops the slot's fds named `name`. */
void worker_fdstore_remove(WorkerFdStore *s, unsigned index, const char *name);
/* What a notification of worker w asks of the store (FDSTOREREMOVE=1, then FDSTORE=1 with the fds it
 * brought, by its generation's FileDescriptorStoreMax=). Fds it does not keep are left in msg->fds. */
struct NotifyMessage;
void worker_fdstore_notify(WorkerFdStore *s, Worker *w, const struct NotifyMessage *msg);

/* What a worker of the slot starting now gets: the slot's fds and their FDNAMEs (borrowed), in the order they
 * were stored; returns how many (at most `max`). Those are the fds stored before worker_fdstore_next_seq():
 * once the worker started, worker_fdstore_handed() says so. */
size_t worker_fdstore_slot_fds(WorkerFdStore *s, unsigned index, int *fds, const char **names, size_t max);
uint64_t worker_fdstore_next_seq(const WorkerFdStore *s);
void worker_fdstore_handed(WorkerFdStore *s, unsigned index, uint64_t upto);
/* That number, for the state file, which carries it to the next rpsupd (a reexec or a restart). */
uint64_t worker_fdstore_handed_upto(const WorkerFdStore *s, unsigned index);
size_t worker_fdstore_count(const WorkerFdStore *s, unsigned index);
size_t worker_fdstore_total(const WorkerFdStore *s);
/* The inodes of the slot's sockets, sorted (caller frees). */
int worker_fdstore_slot_inodes(const WorkerFdStore *s, unsigned index, uint32_t **ret, size_t *ret_n);
/* Those a retiring slot has handed on to a next worker of its index (a slot of that index that does not
 * retire, in another generation; the fds stored before that worker started): connections the retiring worker
 * need not finish. None without such a successor (a scale-in, a stop): then the worker finishes them in its
 * drain window, as it does those it stored later, which no running worker got. */
int worker_fdstore_handed_on(const WorkerFdStore *s, const Slot *slot, uint32_t **ret, size_t *ret_n);
/* Each slot index that has fds, ascending: *ret (caller frees) with their counts in *ret_counts. */
int worker_fdstore_slots(const WorkerFdStore *s, unsigned **ret, size_t **ret_counts, size_t *ret_n);

/* At start-up: claims the inherited fds with WORKER_FDSTORE_PREFIX names and rebuilds the slots' stores. */
void worker_fdstore_restore(WorkerFdStore *s, InheritedFds *inherited);
/* Drops (with a log line) the fds of every slot index that no generation of svc has any more. Does nothing
 * until armed: during start-up and takeover, generations are still being built. */
void worker_fdstore_arm(WorkerFdStore *s);
void worker_fdstore_prune(WorkerFdStore *s, Service *svc);

/* The pure parts, for tests. */

/* The name in systemd's fd store of the fd stored as `name` in slot `index`, number `seq`. -ENAMETOOLONG if
 * it would be longer than a name there may be (a long FDNAME= and a large number). */
int worker_fdstore_name(unsigned index, uint64_t seq, bool poll, const char *name, char **ret);
/* Parses such a name: -EINVAL if it is not one. *ret_name points into `store_name`. */
int worker_fdstore_name_parse(const char *store_name, unsigned *ret_index, uint64_t *ret_seq, bool *ret_poll,
                              const char **ret_name);
