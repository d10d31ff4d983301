#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A process of the workers' user cannot hold rpsupd up. It stops every process of that user
(kill(-1, SIGSTOP) in a loop, as uid 64123) while rpsupd restarts workers that the test kills: a worker
stopped on its way to its command, after it took its user, must not stop rpsupd with it. rpsupd answers
every status call meanwhile; once the attacker is gone and the workers continued, the service serves again
and stops cleanly."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, run, wait_until  # noqa: E402

UID = 64123  # no user of the system: the attacker's kill(-1) reaches this test's workers only
ATTACK_S = 3.0

ATTACKER = """
import os, signal
while True:
    try:
        os.kill(-1, signal.SIGSTOP)
    except OSError:
        pass
"""


def test():
    r = Rpsup(name="stopper", workers=2, extra_service=f"User={UID}\nGroup={UID}")
    attacker = None
    try:
        r.start()
        attacker = subprocess.Popen(["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups",
                                     sys.executable, "-c", ATTACKER])
        end = time.monotonic() + ATTACK_S
        kills = answered = 0
        slowest = 0.0
        while time.monotonic() < end:
            for w in r.live_workers():
                if w["pid"]:
                    try:
                        os.kill(w["pid"], signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
            t0 = time.monotonic()
            rc, _, err = r.ctl("status", r.name, timeout=10)
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            check(rc == 0, f"rpsupctl status failed while workers were stopped: {err}")
            check(took < 5, f"rpsupd took {took:.1f}s to answer: a stopped worker held it up\n{r.diagnose()}")
            answered += 1
        log(f"{kills} workers killed and restarted under kill(-1, SIGSTOP) by uid {UID}; rpsupd answered "
            f"{answered} status calls, the slowest in {slowest * 1000:.0f} ms")
    finally:
        if attacker:
            attacker.kill()
            attacker.wait()
    for pid in r.our_processes():
        os.kill(pid, signal.SIGCONT)
    try:
        check(wait_until(lambda: all(w["state"] == "ready" for w in r.live_workers()) and len(r.live_workers()) == 2,
                         timeout=20), "the service did not recover once the workers continued")
        log("the workers continued: the service serves again")
    finally:
        r.stop()
        r.cleanup()


if __name__ == "__main__":
    run(test)
