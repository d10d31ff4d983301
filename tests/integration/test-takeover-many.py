#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: only the first 256 workers of a dead rpsupd were ended; the others kept running.
"""An rpsupd that cannot take over its predecessor's workers (here: no fd store, so no listeners to
supervise them with) ends every one of them, however many there are, before it starts its own."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, run  # noqa: E402

WORKERS = 512  # WORKERS_MAX: more than the 256 that were handled


def alive(pids):
    left = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    left.add(pid)
        except OSError:
            pass
    return left


def test():
    # handoff: one shared listener, so that 512 workers cost rpsupd few fds.
    r = Rpsup(workers=WORKERS, strategy="handoff", extra_service="ReadyTimeoutSec=60")
    started = time.monotonic()
    try:
        st = r.start()
        old = {w["pid"] for w in st["workers"] if w["pid"]}
        check(len(old) == WORKERS, f"{len(old)} workers running, expected {WORKERS}")
        r.kill_rpsupd(signal.SIGKILL)

        # Without fds from a store the new rpsupd cannot supervise them: it must end them all.
        r.start(wait=False)
        end = time.monotonic() + 30
        while alive(old) and time.monotonic() < end and r.proc.poll() is None:
            time.sleep(0.1)
        left = alive(old)
        log(f"{len(left)} of {WORKERS} workers of the killed rpsupd left after the restart")
        check(not left, f"{len(left)} of {WORKERS} workers of the killed rpsupd keep running unsupervised "
                        f"(pids {sorted(left)[:5]}...)")
        st = r.wait_running(timeout=60)
        check(not old & {w["pid"] for w in st["workers"]}, "an old worker is listed as the new rpsupd's")
        check(f"Stopping {WORKERS} workers left by an earlier rpsupd" in r.log(), "the stop was not logged")

        check(r.stop(timeout=60) == 0, "rpsupd did not exit 0 on SIGTERM")
        left = r.our_processes() - {os.getpid()}
        check(not left, f"{len(left)} processes left after the stop")
        log(f"took {time.monotonic() - started:.1f}s")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
