#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stall handling with the defaults (no StallSec=): 2 of 4 workers stop (SIGSTOP), and new clients that give
up after 1 s keep coming at 1000/s. Counted from the moment of the stop for 5 s, under 1% of them may fail:
the stopped workers leave the steering and what waits for them moves to the healthy workers before those
clients give up. The stopped workers are ended gently (KillSignal) and replaced."""

import os
import signal
import sys
import tempfile

sys.path.insert(0, sys.path[0])
from rpsupnet import LoadRun  # noqa: E402
from rpsuptest import LOAD, Rpsup, check, log, process_state, request, run, wait_until  # noqa: E402
from slowrequest import alive, pending_signals  # noqa: E402

RATE = 1000
SECONDS = 5


def test(strategy):
    r = Rpsup(workers=4, strategy=None if strategy == "auto" else strategy)
    stopped = []
    try:
        r.start()
        for _ in range(8):
            request(r.port)
        stopped = [w["pid"] for w in r.live_workers()][:2]
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        # New clients from the moment of the stop: each gives up after 1 s without a complete reply.
        with tempfile.TemporaryDirectory(prefix="rpsup-load-") as d:
            load = LoadRun(LOAD, "127.0.0.1", r.port, os.path.join(d, "report.json"), concurrency=4000,
                           duration=SECONDS, timeout_ms=1000, interval_ms=100, extra=("--rate", str(RATE)))
            for pid in stopped:
                wait_until(lambda: process_state(pid) in ("T", None), timeout=5, what=f"worker {pid} stopping")
            report, intervals = load.wait(timeout=SECONDS + 30)
        share = report["failed"] / max(1, report["attempts"])
        log(f"{strategy}: {report['failed']} of {report['attempts']} new connections failed in the {SECONDS} s "
            f"from the stop ({share:.2%}; timeout {report['timeout']}, reset {report['reset']}, refused "
            f"{report['refused']}, eof {report['eof']})")
        log("failed per 100 ms from the stop (by when each attempt ended): " +
            " ".join(str(i["failed"]) for i in intervals))
        st = r.status()
        log(f"stall replacements {st['service']['stall_replacements']}; stopped workers "
            f"{[(pid, process_state(pid), sorted(s.name for s in pending_signals(pid) or ())) for pid in stopped]}")
        for line in r.log().splitlines():
            if any(f"pid {pid})" in line or f"(pid {pid}" in line for pid in stopped):
                log(f"rpsupd: {line}")
        check(report["attempts"] >= RATE * SECONDS * 0.8, f"only {report['attempts']} attempts: the load did not run")
        check(share < 0.01, f"{share:.2%} of new connections failed in the {SECONDS} s after 2 of 4 workers "
              f"stopped (allowed: under 1%): {report}")
        check(st["service"]["stall_replacements"] >= 2,
              f"{st['service']['stall_replacements']} stall replacements, expected 2")
        live = r.live_workers(st)
        check(not {w["pid"] for w in live} & set(stopped), "a stopped worker is still in the live generation")
        check(len(live) == 4 and all(w["state"] == "ready" for w in live), "not every slot has a ready worker")
        # Ended gently: KillSignal (SIGTERM here) waits for each stopped worker, or it is gone already
        # (StopTimeoutSec= passed: SIGKILL), never SIGABRT.
        for pid in stopped:
            sigs = pending_signals(pid)
            check(sigs is None or signal.SIGABRT not in sigs, f"stopped worker {pid} was sent SIGABRT")
            check(sigs is None or signal.SIGTERM in sigs or not alive(pid),
                  f"stopped worker {pid} was not asked to stop (pending: {sigs})")
        # Continued, they take their SIGTERM and end as asked, by themselves.
        for pid in stopped:
            os.kill(pid, signal.SIGCONT) if alive(pid) else None
        wait_until(lambda: not any(alive(pid) for pid in stopped), timeout=10, what="the continued workers ending")
        st = r.status()
        check(st["service"]["retiring_failures"] == 0 and st["service"]["watchdog_kills"] == 0,
              f"a stalled worker did not end as asked: {st['service']}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else "auto")
