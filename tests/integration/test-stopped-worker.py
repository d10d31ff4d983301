#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Connections waiting in the accept queue of a stopped (SIGSTOP) worker are answered after a reload, and
after the worker is SIGKILLed, by its replacement: the listener is rpsupd's, not the worker's."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import PendingClient, Rpsup, check, log, parse_reply, run, stop_process  # noqa: E402


def queue_on_stopped_worker(r, n):
    st = r.status()
    pid = r.live_workers(st)[0]["pid"]
    stop_process(pid)
    clients = [PendingClient(r.port) for _ in range(n)]
    for c in clients:
        check(c.answered_within(0.05) is None, "a stopped worker answered")
    time.sleep(0.3)  # a window to prove a negative: the stopped worker answers nothing
    check(all(c.answered_within(0.01) is None for c in clients), "a stopped worker answered")
    return pid, clients


def test(strategy):
    # drain: the stopped worker keeps its queue for the drain window; when rpsupd then closes the
    # listener, what is left migrates to the live generation.
    # StallSec=0: what is under test is retirement and a crash, not stall detection (test-stall.py), which
    # would replace the stopped worker first.
    r = Rpsup(workers=1, strategy=strategy,
              extra_service="StallSec=0\n" + ("DrainSec=2" if strategy == "drain" else ""))
    try:
        r.start()

        # 1. Reload while the only worker is stopped with connections queued.
        pid, clients = queue_on_stopped_worker(r, 5)
        rc, out, err = r.reload()
        check(rc == 0, f"reload failed ({rc}): {err}")
        for i, c in enumerate(clients):
            reply = c.answered_within(10)
            check(reply is not None, f"queued connection {i} was not answered after the reload")
            log(f"queued connection {i}: {reply}")
            c.close()

        # 2. SIGKILL a stopped worker with connections queued: its replacement answers them.
        pid, clients = queue_on_stopped_worker(r, 5)
        os.kill(pid, signal.SIGKILL)
        for i, c in enumerate(clients):
            reply = c.answered_within(10)
            check(reply is not None, f"queued connection {i} was lost with the SIGKILLed worker")
            check(int(parse_reply(reply)["pid"]) != pid, "answered by the killed worker?")
            log(f"queued connection {i}: {reply}")
            c.close()
        st = r.status()
        w = r.live_workers(st)[0]
        check(w["restarts"] == 1, f"the slot shows {w['restarts']} restarts, expected 1")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
