#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Connections queued for a stopped (SIGSTOP) worker are answered when a scale-in retires that worker:
with drain and migrate it cannot drain its queue, so it is stopped at its drain deadline, and once it is
gone rpsupd shuts its listener down and the queue migrates to the remaining worker; handoff shares one
queue anyway."""

import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import PendingClient, Rpsup, check, log, run, stop_process, wait_until  # noqa: E402

N = 20


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy, extra_service="DrainSec=2\nStallSec=0")
    try:
        r.start()
        workers = {w["slot"]: w["pid"] for w in r.live_workers()}
        stop_process(workers[1])
        clients = [PendingClient(r.port) for _ in range(N)]
        replies = {}  # index -> reply, of the connections the running worker answered

        def queued_for_stopped():
            return [w for w in r.live_workers() if w["slot"] == 1][0]["accept_queue"]

        def sorted_out():
            # Every connection is either answered by the running worker or waits in the stopped one's queue
            # (per-worker queues); with one shared queue the running worker answers them all.
            for i, c in enumerate(clients):
                if i not in replies:
                    reply = c.answered_within(0.01)
                    if reply is not None:
                        replies[i] = reply
            if strategy == "handoff":
                return len(replies) == N
            return len(replies) + queued_for_stopped() == N

        wait_until(sorted_out, timeout=10)
        waiting = [c for i, c in enumerate(clients) if i not in replies]
        log(f"{len(waiting)} of {len(clients)} connections wait for the stopped worker")
        for reply in replies.values():
            check(f"pid={workers[1]} " not in reply + " ", f"answered by the stopped worker: {reply}")
        if strategy != "handoff":
            check(waiting, "no connection landed on the stopped worker's queue; the test proves nothing")
            depth = queued_for_stopped()
            check(depth == len(waiting), f"status shows {depth} queued for worker 1, expected {len(waiting)}")
            retired_with = waiting
        else:
            # One shared queue: nothing waits for the stopped worker, and what is queued when it is retired
            # (connected just before the scale-in) is answered by the running one.
            check(not waiting, f"{len(waiting)} connections waited for a stopped worker despite the shared queue")
            retired_with = [PendingClient(r.port) for _ in range(N)]
        rc, out, err = r.scale(1)
        check(rc == 0, f"scale to 1 failed: {err}")
        check(retired_with, "no connection was queued across the scale-in; the test proves nothing")
        for i, c in enumerate(retired_with):
            try:
                reply = c.answered_within(15)
            except ConnectionResetError:
                reply = "reset"
            check(reply not in (None, "reset"), f"queued connection {i} was {'reset' if reply else 'lost'} "
                  "when its worker was retired")
            check(f"pid={workers[1]} " not in reply + " ", f"answered by the stopped worker: {reply}")
            c.close()
        log(f"all {len(retired_with)} answered after the scale-in")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
