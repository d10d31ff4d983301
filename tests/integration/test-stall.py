#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stall protection: 2 of 4 workers stop (SIGSTOP) under load. Without it (StallSec=0) the connections
steered to them hang; with StallSec=1 the stopped workers leave the steering, what waits for them moves to
the healthy workers (migrate) or to their replacements (drain), and they are replaced: under 1% of the
connections fail, counted from the stop plus StallSec."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, run, stop_process, wait_until  # noqa: E402


def stop_two_under_load(r, until):
    """Stops two workers under open-loop load (new connections at a steady rate, whatever happens to earlier
    ones) and keeps the load on until until(load) is true; then lets what is in flight finish or time out."""
    load = Load(r.port, concurrency=4000, extra=("--timeout", "2500", "--rate", "1000"))
    try:
        load.wait_answered()
        stopped = [w["pid"] for w in r.live_workers()][:2]
        for pid in stopped:
            stop_process(pid)
        t_stop = time.monotonic()
        until(load)
    finally:
        report = load.stop()
    return stopped, t_stop, report


def timeouts_seen(load):
    # Without stall protection: until the connections steered to the stopped workers time out (--timeout).
    load.wait_for("connections to the stopped workers timing out", lambda iv: any(i["failed"] for i in iv))


def stalls_replaced(r):
    # With it: until both stopped workers are out of the live generation and their slots serve again.
    def replaced(load):
        def probe():
            st = r.status()
            return st["service"]["stall_replacements"] >= 2 and all(w["state"] == "ready" for w in r.live_workers(st))
        return wait_until(probe, timeout=15, what="both stalled workers replaced")
    return replaced


def test(strategy):
    # Control: without stall protection, stopped workers lose connections.
    r = Rpsup(workers=4, strategy=strategy, extra_service="StallSec=0\nStopTimeoutSec=2")
    try:
        r.start()
        stopped, _, report = stop_two_under_load(r, timeouts_seen)
        share = report["failed"] / max(1, report["attempts"])
        log(f"StallSec=0: {report['failed']} of {report['attempts']} failed ({share:.1%}, "
            f"timeouts {report['timeout']})")
        check(share > 0.2, "stopping 2 of 4 workers lost little without stall protection: the test cannot tell")
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    finally:
        r.cleanup()

    r = Rpsup(workers=4, strategy=strategy, extra_service="StallSec=1\nStopTimeoutSec=2")
    try:
        r.start()
        stopped, t_stop, report = stop_two_under_load(r, stalls_replaced(r))
        share = report["failed"] / max(1, report["attempts"])
        log(f"StallSec=1: {report['failed']} of {report['attempts']} failed ({share:.2%}, timeouts "
            f"{report['timeout']}, reset {report['reset']})")
        check(share < 0.01, f"{share:.2%} of connections failed with stall protection: {report}")
        st = r.status()
        check(st["service"]["stall_replacements"] >= 2,
              f"{st['service']['stall_replacements']} stall replacements, expected 2")
        pids = {w["pid"] for w in r.live_workers(st)}
        check(not pids & set(stopped), "a stopped worker is still in the live generation")
        check(all(w["state"] == "ready" for w in r.live_workers(st)), "not every slot has a ready worker")
        log(f"replaced {stopped}; workers now {sorted(pids)}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
