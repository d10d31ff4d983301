#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: STOPPING=1 before READY=1 wedged start, reload and scale forever ("in progress").
"""Whatever a worker sends in whatever order, every start, reload and scale finishes or fails with a clear
reason within ReadyTimeoutSec= (EXTEND_TIMEOUT_USEC= stretches that to at most 4x), and the next operation
runs."""

import os
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Failed, Rpsup, check, log, parse_reply, request, run  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile-worker.py")


def hostile(*args):
    return f"ExecStart={sys.executable} {HOSTILE} " + " ".join(f"'{a}'" if " " in a else a for a in args)


def timed_reload(r, config, within):
    r.write_config(config)
    t0 = time.monotonic()
    rc, out, err = r.reload()
    took = time.monotonic() - t0
    log(f"reload: exit {rc} after {took:.2f}s: {err.strip()}")
    check(took < within, f"the reload took {took:.1f}s, more than {within}s")
    return rc, err


def test():
    # The first start: STOPPING=1, then READY=1. rpsupd gives up at once (exit 1, the reason logged).
    r = Rpsup(workers=2)
    try:
        good = open(r.config).read()
        r.write_config(good.replace(f"ExecStart={WORKER} ", hostile("--send", "STOPPING=1", "--send", "READY=1")))
        t0 = time.monotonic()
        r.start(wait=False)
        try:
            rc = r.proc.wait(timeout=15)
        except Exception:
            raise Failed(f"rpsupd did not give up on a start whose worker said STOPPING=1:\n{r.diagnose()}")
        log(f"start: exit {rc} after {time.monotonic() - t0:.2f}s")
        r.check_log()
        check(rc == 1, f"rpsupd exited {rc}")
        check("said STOPPING=1 before it was ready" in r.log(), f"no reason given:\n{r.log()}")
    finally:
        r.cleanup()

    r = Rpsup(workers=2, extra_service="")
    try:
        r.start()
        good = open(r.config).read().replace("ReadyTimeoutSec=10", "ReadyTimeoutSec=2")
        r.write_config(good)
        check(r.reload()[0] == 0, "a good reload failed")

        # Reload: STOPPING=1 before READY=1; and READY=1 then STOPPING=1 from one worker while the other is
        # not ready yet (the generation never takes connections).
        for args, why in ((("--send", "STOPPING=1", "--send", "READY=1"), "before it was ready"),
                          (("--send", "1:READY=1", "--send", "1:STOPPING=1"), "before its generation took connections")):
            rc, err = timed_reload(r, good.replace(f"ExecStart={WORKER} ", hostile(*args)), 4)
            check(rc == 1 and f"said STOPPING=1 {why}" in err and "rolled back" in err, f"reload: {rc} {err}")

        # EXTEND_TIMEOUT_USEC= forever: refused after 4x ReadyTimeoutSec= (8s), not never.
        rc, err = timed_reload(r, good.replace(f"ExecStart={WORKER} ",
                                               hostile("--repeat", "EXTEND_TIMEOUT_USEC=10000000", "--every", "0.5")),
                               12)
        check(rc == 1 and "not ready within" in err, f"reload: {rc} {err}")
        check("asks for more time to get ready than allowed" in r.log(), "the bound was not logged")

        # WATCHDOG=1 before READY=1 is harmless: the generation gets ready. Its worker 2, started by the
        # scale below, says STOPPING=1 instead: the scale fails at once, the two serving workers stay.
        rc, err = timed_reload(r, good.replace(f"ExecStart={WORKER} ", hostile(
            "--send", "0:WATCHDOG=1", "--send", "1:WATCHDOG=1", "--send", "0:READY=1", "--send", "1:READY=1",
            "--send", "2:STOPPING=1")), 4)
        check(rc == 0, f"a reload whose workers sent WATCHDOG=1 before READY=1 failed: {err}")
        t0 = time.monotonic()
        rc, out, err = r.ctl("scale", r.name, "3")
        took = time.monotonic() - t0
        log(f"scale: exit {rc} after {took:.2f}s: {err.strip()}")
        check(rc == 1 and "said STOPPING=1 before it was ready" in err and took < 4, f"scale: {rc} {err}")
        check(len(r.live_workers()) == 2, "the failed scale changed the serving workers")

        # Back to the example worker: a reload works.
        rc, err = timed_reload(r, good, 4)
        check(rc == 0, f"a good reload after the hostile ones failed: {err}")

        # Nothing is wedged: a scale and a status answer, the live generation serves.
        rc, out, err = r.ctl("scale", r.name, "3")
        check(rc == 0, f"scale after the hostile reloads: {rc} {err}")
        st = r.status()
        check(st["service"]["state"] == "running", f"state {st['service']['state']}")
        check(int(parse_reply(request(r.port))["generation"]) == st["service"]["live_generation"],
              "the live generation does not answer")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
