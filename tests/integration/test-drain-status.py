#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Why a retired worker is still there: while it finishes one open slow request after a reload, status shows
it draining with 1 connection open, an empty queue and its drain deadline (in --json and in rpsupctl
status's words), its listener is not shut down under it (its client gets the full answer), and once the
request is answered it is asked to stop long before the deadline."""

import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, parse_reply, run, wait_until  # noqa: E402
from slowrequest import alive, busy, slow_client  # noqa: E402

REQUEST_MS = 3000
DRAIN = 30


def test(strategy):
    r = Rpsup(workers=1, strategy=strategy, worker_args=f"--slow-request {REQUEST_MS}",
              extra_service=f"DrainSec={DRAIN}\nStopTimeoutSec=15\nStallSec=0")
    try:
        r.start()
        old = r.live_workers()[0]["pid"]
        client = slow_client(r.port)
        wait_until(lambda: busy(old), timeout=5, what="the worker busy with the slow request")
        rc, out, err = r.reload()
        check(rc == 0, f"reload failed: {err}")
        retired = time.time()

        def record():
            return next((w for w in r.status()["workers"] if w["pid"] == old), None)

        w = wait_until(lambda: (lambda x: x if x and x["state"] == "draining" else None)(record()), timeout=5,
                       what="the retired worker draining")
        log(f"draining: {w['drain_open_connections']} open, queue {w['drain_queue']}")
        check(w["drain_open_connections"] == 1, f"status shows {w['drain_open_connections']} connections open "
              "on the draining worker, expected 1 (the slow request)")
        check(w["drain_queue"] == 0, f"status shows {w['drain_queue']} queued for the draining worker")
        deadline = w["drain_deadline_usec"] / 1e6
        check(retired + DRAIN - 2 <= deadline <= retired + DRAIN + 1,
              f"drain deadline {deadline - retired:.1f} s after the retirement, expected {DRAIN} s")
        live = [x for x in r.status()["workers"] if x["pid"] != old]
        check(all(x["drain_open_connections"] == -1 and x["drain_deadline_usec"] == 0 for x in live),
              f"a serving worker shows drain figures: {live}")

        rc, text, _ = r.ctl("status", r.name)
        check(rc == 0, "rpsupctl status failed")
        line = next((x for x in text.splitlines() if f" {old} " in x), "")
        log(f"rpsupctl status: {line.strip()}")
        check("1 connection open, queue 0, stopped at the latest in" in line,
              f"rpsupctl status does not say why the retired worker is still there: {line!r}")

        reply = client.answered_within(REQUEST_MS / 1000 + 5)
        check(reply is not None and parse_reply(reply)["pid"] == str(old),
              f"the slow request was not answered in full by its worker: {reply!r}")
        client.close()  # its last connection: the worker is idle now
        wait_until(lambda: not alive(old), timeout=10, what="the drained worker to exit")
        gone = time.time() - retired
        log(f"worker gone {gone:.2f} s after the retirement (request {REQUEST_MS / 1000:.0f} s, DrainSec={DRAIN})")
        check(gone < DRAIN / 2, f"the idle worker was not asked to stop before its deadline ({gone:.1f} s)")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
