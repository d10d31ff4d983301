#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: workers forked before the state file recorded them kept running unsupervised after a crash.
"""rpsupd killed with SIGKILL at any instant of a scale-out or a reload, then started again with its fd store
(as systemd does after a crash), knows every worker that may exist: each one is taken over (listed by the
new rpsupd) or gone within a bound, and none is left once the new rpsupd stops."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPCTL, RPSUPD, Rpsup, check, log, run  # noqa: E402

TRIALS = 25          # per operation: scale-out, reload
SPREAD_MS = 20.0     # kill at 0..20 ms after the operation's first fork
GONE_WITHIN = 2.0    # a worker the new rpsupd does not list must be gone within this
BASE, SCALED = 2, 6


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return set(map(int, f.read().split()))
    except OSError:
        return set()


def sync_fdstore(r, n):
    """Waits until the fake systemd has taken in every message the dead rpsupd sent: a datagram of ours,
    queued after them, has been read."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(f"RPSUP_TEST_SYNC={n}".encode(), r.systemd.path)
    r.systemd.wait_for("RPSUP_TEST_SYNC", str(n), timeout=10)


def not_yet_workers(pids):
    """Those of pids that are still forks of rpsupd, not yet the worker program."""
    n = 0
    for pid in pids:
        try:
            n += os.readlink(f"/proc/{pid}/exe") == os.path.realpath(RPSUPD)
        except OSError:
            pass
    return n


def kill_during(r, op, delay_ms):
    """Starts `op` with rpsupctl, kills rpsupd delay_ms after its first fork for it. Returns how many
    processes rpsupd had forked for it by then, and how many of them had not executed the worker yet."""
    pid = r.proc.pid
    before = children(pid)
    ctl = subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, *op], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while not children(pid) - before:
        check(time.monotonic() < end, f"rpsupd forked nothing for {op} within 10s:\n{r.log()[-3000:]}")
    forked_at = time.monotonic()
    while time.monotonic() - forked_at < delay_ms / 1000.0:
        pass
    forked = children(pid) - before
    pending = not_yet_workers(forked)
    r.kill_rpsupd(signal.SIGKILL)
    ctl.wait(timeout=30)
    return len(forked), pending


def orphans_after_restart(r):
    """Processes of this test that the new rpsupd does not list and that are still there after
    GONE_WITHIN seconds, and how many were unknown at first but left within that time."""
    end = time.monotonic() + GONE_WITHIN
    seen = set()
    while True:
        st = r.status()
        known = {w["pid"] for w in st["workers"] if w["pid"]}
        unknown = r.our_processes() - known - {r.proc.pid, os.getpid()}
        seen |= unknown
        if not unknown or time.monotonic() >= end:
            return unknown, len(seen - unknown)
        time.sleep(0.05)


def end_processes(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test(strategy):
    # Unknown workers are ended as any leftover is (KillSignal=, SIGKILL after StopTimeoutSec=): 1 s here, so
    # that a worker busy with its connections does not make each trial wait 5 s.
    r = Rpsup(workers=BASE, strategy=strategy, extra_service="StopTimeoutSec=1")
    started = time.monotonic()
    try:
        r.start(with_systemd=True)
        r.systemd.wait_for("READY", "1")
        total, trials_with_orphans, n, vanished, adopted, forks_pending = 0, 0, 0, 0, 0, 0
        for kind in ("scale", "reload"):
            for i in range(TRIALS):
                n += 1
                # Spread over 0..SPREAD_MS, denser at the start, where a scale-out or reload forks.
                delay = SPREAD_MS * (i / (TRIALS - 1)) ** 2
                if kind == "scale":
                    rc, _, err = r.scale(BASE)
                    check(rc == 0, f"scale to {BASE}: {err}")
                    op = ["scale", r.name, str(SCALED)]
                else:
                    op = ["reload", r.name]
                forked, pending = kill_during(r, op, delay)
                forks_pending += pending
                sync_fdstore(r, n)
                st = r.start(fds=r.systemd.stored())
                adopted += sum(1 for w in st["workers"] if w["adopted"])
                left, gone = orphans_after_restart(r)
                vanished += gone
                if left:
                    log(f"{kind} trial {i}: killed {delay:.1f} ms after the first fork ({forked} forked): "
                        f"{len(left)} worker(s) unknown to the new rpsupd: {sorted(left)}")
                    total += len(left)
                    trials_with_orphans += 1
                    end_processes(left)
        log(f"{total} orphaned worker(s) in {trials_with_orphans} of {n} trials; {forks_pending} forks had not "
            f"executed the worker at the kill; {adopted} workers taken over, {vanished} unknown processes gone "
            f"within {GONE_WITHIN}s ({time.monotonic() - started:.1f}s)")
        check(total == 0, f"{total} workers were left unsupervised in {trials_with_orphans} of {n} trials")

        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        left = r.our_processes() - {os.getpid()}
        check(not left, f"processes left after the stop: {sorted(left)}")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
