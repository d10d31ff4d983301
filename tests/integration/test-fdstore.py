#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The workers' fd store (FDSTORE=1), with a worker that stores every connection it accepts and takes the
stored ones back when it starts (fdstore-worker.py).

  keep    20 long-lived client connections go on being answered across 5 reloads, a worker killed with
          SIGKILL, and rpsupd killed with SIGKILL and started again with the fd store the harness plays;
          retiring workers are not held by the connections they handed on (each reload --wait is over in a
          fraction of DrainSec=); after a scale-in, the slot's worker finishes them (no worker follows it),
          then the gone slot's fds are dropped with a log line.
          A second argument is the strategy (default: auto).
  limits  FileDescriptorStoreMax=3 keeps 3 connections and refuses the others with a log line; the next
          worker gets those 3; FileDescriptorStoreMax=0 refuses with one log line per worker. The worker
          also stores its own listener, which is refused with a log line (kept, a retired generation's
          listener would go on queueing connections).
  names   A worker stores 700 fds with 217-byte names (152 KiB of LISTEN_FDNAMES, beyond what Linux takes
          in one environment string): the slot keeps those that fit its budget of names, refuses the others
          with a log line, and its next worker (a restart after SIGKILL) starts with them."""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Rpsup, check, log, run, wait_until  # noqa: E402

FDSTORE_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fdstore-worker.py")
DRAIN = 30


class Client:
    def __init__(self, port, i):
        self.i = i
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.rounds = 0

    def ask(self, timeout=5.0):
        """Sends a line; returns the pid that echoed it, None if the connection was closed."""
        self.rounds += 1
        line = f"client-{self.i}-{self.rounds}"
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(line.encode() + b"\n")
            while b"\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return None
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return None
        except socket.timeout:
            raise AssertionError(f"client {self.i}: no echo of {line} within {timeout}s")
        reply, self.buf = self.buf.split(b"\n", 1)
        text, _, pid = reply.decode().rpartition(" ")
        check(text == line, f"client {self.i}: sent {line!r}, got {reply!r}")
        return int(pid)

    def close(self):
        self.sock.close()


def rpsup(workers, extra, worker_args=""):
    r = Rpsup(workers=workers, extra_service=f"Ready=notify\nDrainSec={DRAIN}\nStallSec=0\n{extra}",
              strategy=sys.argv[2] if len(sys.argv) > 2 else None)
    good = open(r.config).read()
    r.write_config(good.replace(f"ExecStart={WORKER} ",
                                f"ExecStart={sys.executable} {FDSTORE_WORKER} {worker_args} "))
    return r


def stored_by_slot(st):
    return {w["slot"]: w["stored_fds"] for w in st["workers"]}


def all_answer(clients, r, what, pids=None):
    """Every client gets its echo; returns the pids that answered."""
    answered = set()
    for c in clients:
        pid = c.ask()
        check(pid is not None, f"client {c.i}: connection closed {what}")
        answered.add(pid)
    if pids is not None:
        check(answered <= pids, f"{what}: answered by {answered}, not only by the live workers {pids}")
    log(f"{what}: all {len(clients)} connections answered (by {sorted(answered)})")
    return answered


def live_pids(r):
    return {w["pid"] for w in r.live_workers()}


def test_keep():
    r = rpsup(2, "FileDescriptorStoreMax=64")
    clients = []
    try:
        r.start(with_systemd=True)
        clients = [Client(r.port, i) for i in range(20)]
        all_answer(clients, r, "at start")
        wait_until(lambda: sum(stored_by_slot(r.status()).values()) == 20, timeout=5,
                   what="the 20 connections stored")
        per_slot = stored_by_slot(r.status())
        log(f"stored per slot: {per_slot}")
        rc, text, _ = r.ctl("status", r.name)
        line = "Stored fds (FDSTORE=1) by slot: " + ", ".join(f"{k}: {v}" for k, v in sorted(per_slot.items()) if v)
        check(line in text.splitlines(), f"rpsupctl status does not show {line!r}:\n{text}")
        rc, text, _ = r.ctl("metrics", r.name)
        for slot, n in per_slot.items():
            sample = f'rpsup_worker_stored_fds{{service="{r.name}",slot="{slot}"}}'
            if n:  # a slot that keeps nothing is not listed (with handoff, one worker may have taken all)
                check(f"{sample} {n}" in text.splitlines(), f"no {sample} {n} in the metrics")
            else:
                check(not [line for line in text.splitlines() if line.startswith(sample)],
                      f"{sample} listed for a slot that keeps nothing")

        for k in range(5):
            t = time.monotonic()
            rc, out, err = r.reload("--wait")
            took = time.monotonic() - t
            check(rc == 0, f"reload {k + 1} failed: {err}")
            # Without the store's connections left out of the count, each waited for DrainSec=.
            check(took < DRAIN / 3, f"reload {k + 1} --wait took {took:.1f}s: the stored connections held the "
                  "retiring workers")
            all_answer(clients, r, f"after reload {k + 1} ({took:.2f}s)", live_pids(r))
        check(sorted(stored_by_slot(r.status()).values()) == sorted(per_slot.values()),
              "the store changed across the reloads")

        victim = r.live_workers()[0]
        os.kill(victim["pid"], signal.SIGKILL)
        wait_until(lambda: all(w["state"] == "ready" and w["pid"] != victim["pid"] for w in r.live_workers()),
                   timeout=10, what="the killed worker replaced")
        all_answer(clients, r, "after a worker was killed", live_pids(r))

        r.kill_rpsupd(signal.SIGKILL)
        r.systemd.sync()
        names = [n for n, _ in r.systemd.stored() if n.startswith("wfd.")]
        check(len(names) == 20, f"systemd's fd store has {len(names)} worker fds, expected 20: {names}")
        all_answer(clients, r, "while rpsupd is gone")
        r.start(fds=r.systemd.stored())
        check("Took over 20 fds that workers stored" in r.log(), "the restarted rpsupd did not take the fds over")
        check(stored_by_slot(r.status()) == per_slot, f"the store was not rebuilt: {stored_by_slot(r.status())}")
        rc, out, err = r.reload("--wait")
        check(rc == 0, f"reload after the rpsupd restart failed: {err}")
        all_answer(clients, r, "after the rpsupd restart and a reload", live_pids(r))

        # Scale-in: slot 1 has no next worker, so its retiring worker still has its stored connections to
        # finish (they count as open, and it answers them); once it is gone, so are they (logged).
        rc, out, err = r.scale(1)
        check(rc == 0, f"scale-in failed: {err}")
        n1 = per_slot.get(1, 0)

        def draining():
            w = [w for w in r.status()["workers"] if w["slot"] == 1 and w["state"] == "draining"]
            return w[0] if w and w[0]["drain_open_connections"] == n1 else None

        if r.status()["service"]["strategy"] != "handoff":  # handoff stops a retiring worker at once
            worker1 = wait_until(draining, timeout=5, what=f"slot 1's worker draining with {n1} open connections")
            all_answer(clients, r, "while slot 1 drains after the scale-in")
            os.kill(worker1["pid"], signal.SIGTERM)  # what its drain window's end would do, sooner
        if n1 > 0:  # (with handoff, whichever worker accepts first may have taken all)
            wait_until(lambda: f"Slot 1 is gone: dropping the {n1} fd" in r.log(), timeout=5,
                       what="the log line of slot 1's fds dropped")
        else:
            wait_until(lambda: len(r.live_workers()) == 1 and len(r.status()["workers"]) == 1, timeout=5,
                       what="slot 1 gone")
            check("Slot 1 is gone" not in r.log(), "an empty slot's fds were said to be dropped")
        check(set(stored_by_slot(r.status())) == {0}, "slot 1 still shows")
        # rpsupd sends what systemd's socket takes at once and queues the rest.
        wait_until(lambda: not [n for n, _ in r.systemd.stored() if n.startswith("wfd.1.")], timeout=5,
                   what="slot 1's fds out of systemd's fd store")
        stop_after(r, clients)
    finally:
        for c in clients:
            c.close()
        r.cleanup()


def stop_after(r, clients):
    """A stop drains what is open, stored or not (no worker follows): the clients leave first."""
    for c in clients:
        c.close()
    check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")


def test_limits():
    r = rpsup(1, "FileDescriptorStoreMax=3", "--store-listener")
    clients = []
    try:
        r.start()
        wait_until(lambda: "sent a listening socket with FDSTORE=1" in r.log(), timeout=5,
                   what="the worker's listener refused")
        check(stored_by_slot(r.status()) == {0: 0}, f"a listener was stored: {stored_by_slot(r.status())}")
        clients = [Client(r.port, i) for i in range(5)]
        first = all_answer(clients, r, "at start")
        wait_until(lambda: "FileDescriptorStoreMax=3: the fd" in r.log(), timeout=5, what="the refusal logged")
        refusals = [line for line in r.log().splitlines() if "FileDescriptorStoreMax=3: the fd" in line]
        check(len(refusals) == 2, f"expected 2 refusals, got {refusals}")
        check(stored_by_slot(r.status()) == {0: 3}, f"stored: {stored_by_slot(r.status())}")

        # The 2 refused connections are the old worker's alone, to finish: their clients leave.
        for c in clients[3:]:
            c.close()
        clients = clients[:3]
        rc, out, err = r.reload("--wait")
        check(rc == 0, f"reload failed: {err}")
        pids = live_pids(r)
        answers = [c.ask() for c in clients]
        log(f"after the reload: {answers} (worker {pids}, before {first})")
        check(answers == [pids.copy().pop()] * 3, f"the 3 stored connections did not reach the new worker: {answers}")

        # FileDescriptorStoreMax=0: refused, one log line per worker however many it sends.
        r.write_config(open(r.config).read().replace("FileDescriptorStoreMax=3", "FileDescriptorStoreMax=0"))
        rc, out, err = r.reload("--wait")
        check(rc == 0, f"reload failed: {err}")
        more = [Client(r.port, 10 + i) for i in range(3)]
        clients += more
        all_answer(more, r, "with FileDescriptorStoreMax=0")
        pid = live_pids(r).pop()
        wait_until(lambda: f"Worker {pid} of slot 0 sent fds with FDSTORE=1, but FileDescriptorStoreMax= is 0"
                   in r.log(), timeout=5, what="the refusal logged")
        # The 3 FDSTORE=1 went out before the echoes did: all are taken in by now (a status call later).
        r.status()
        lines = [line for line in r.log().splitlines() if f"Worker {pid} of slot 0 sent fds" in line]
        check(len(lines) == 1, f"expected one line for worker {pid}: {lines}")
        # What the slot kept before stays (the new worker got it).
        check(stored_by_slot(r.status()) == {0: 3}, f"stored: {stored_by_slot(r.status())}")
        stop_after(r, clients)
    finally:
        for c in clients:
            c.close()
        r.cleanup()


def test_names():
    fill, name_len, budget = 700, 217, 32 * 1024  # WORKER_FDSTORE_SLOT_NAMES_MAX
    kept = budget // (name_len + 1)
    r = rpsup(1, "FileDescriptorStoreMax=4096", f"--fill {fill}")
    try:
        r.start()
        wait_until(lambda: stored_by_slot(r.status()) == {0: kept}, timeout=10,
                   what=f"slot 0 keeping {kept} fds")
        check("The names of the fds slot 0 keeps take" in r.log(), "the refusal of the names beyond the budget "
              "was not logged")
        first = r.live_workers()[0]["pid"]
        os.kill(first, signal.SIGKILL)
        want = f"took 0 stored connections and {kept} filled fds"

        def restarted():
            w = r.live_workers()
            return w and w[0]["pid"] != first and w[0]["state"] == "ready" and w[0]["status"] == want

        wait_until(restarted, timeout=10, what=f"slot 0 restarted with its {kept} stored fds")
        check(stored_by_slot(r.status()) == {0: kept}, f"stored: {stored_by_slot(r.status())}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run({"keep": test_keep, "limits": test_limits, "names": test_names}[sys.argv[1]])
