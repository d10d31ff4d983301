#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Connections queued for a stopped (SIGSTOP) worker are answered when a scale-in retires that worker:
migrate moves its queue to the remaining worker at once, drain lets the listener migrate what is left when
it closes after the drain window, handoff shares one queue anyway."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import PendingClient, Rpsup, check, log, run  # noqa: E402


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy, extra_service="DrainSec=2\nStallSec=0")
    try:
        r.start()
        workers = {w["slot"]: w["pid"] for w in r.live_workers()}
        os.kill(workers[1], signal.SIGSTOP)
        clients = [PendingClient(r.port) for _ in range(20)]
        time.sleep(0.3)
        waiting = [c for c in clients if c.answered_within(0.05) is None]
        log(f"{len(waiting)} of {len(clients)} connections wait for the stopped worker")
        if strategy != "handoff":
            check(waiting, "no connection landed on the stopped worker's queue; the test proves nothing")
            depth = [w for w in r.live_workers() if w["slot"] == 1][0]["accept_queue"]
            check(depth == len(waiting), f"status shows {depth} queued for worker 1, expected {len(waiting)}")
        rc, out, err = r.scale(1)
        check(rc == 0, f"scale to 1 failed: {err}")
        for i, c in enumerate(waiting):
            reply = c.answered_within(15)
            check(reply is not None, f"queued connection {i} was lost when its worker was retired")
            check(f"pid={workers[1]} " not in reply + " ", f"answered by the stopped worker: {reply}")
            c.close()
        log(f"all {len(waiting)} answered after the scale-in")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
