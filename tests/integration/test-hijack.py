#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A socket from outside rpsupd that joins the reuseport group (same uid, same port, SO_REUSEPORT) gets no
connection while BPF steering is on; with handoff it cannot even bind."""

import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, run  # noqa: E402


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy)
    try:
        r.start()
        intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            intruder.bind(("127.0.0.1", r.port))
        except OSError as e:
            check(strategy == "handoff", f"the intruder could not join the group: {e}")
            log(f"handoff: the intruder cannot bind: {e}")
            return
        check(strategy != "handoff", "an outsider joined the handoff listener's address")
        intruder.listen(128)
        intruder.setblocking(False)
        load = Load(r.port, concurrency=8)
        load.wait_answered()
        time.sleep(1.0)  # the intruder's chance to take connections before the reload
        rc, out, err = r.reload()
        check(rc == 0, f"reload: {err}")
        time.sleep(0.5)
        report = load.stop()
        stolen = 0
        while True:
            try:
                c, _ = intruder.accept()
                c.close()
                stolen += 1
            except BlockingIOError:
                break
        log(f"{report['ok']} connections, {stolen} reached the intruder")
        check(stolen == 0, f"{stolen} connections went to a socket outside rpsupd")
        check(report["failed"] == 0 and report["ok"] > 1000, f"load: {report}")
        intruder.close()
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
