#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Garbage, half messages, idle clients and floods on the control socket never crash or block rpsupd;
callers that are not root (or rpsupd's uid) cannot change state; usage errors and an absent rpsupd give
the documented exit codes."""

import os
import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, request, run, wait_until  # noqa: E402


def test():
    r = Rpsup(workers=2)
    try:
        r.start()
        path = os.path.join(r.runtime, r.name, "control")
        load = Load(r.port, concurrency=8)
        try:
            # Garbage instead of the D-Bus handshake.
            for payload in (b"\0" * 10, os.urandom(4096), b"\0AUTH EXTERNAL 30\r\nBEGIN\r\n" + os.urandom(2000),
                            b"\0AUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n" + b"l\1\0\1" + b"\xff" * 200):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
                    s.sendall(payload)
            # Half a message, and clients that connect and never speak.
            idle = []
            for _ in range(20):
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.sendall(b"\0AUTH EXT")
                idle.append(s)
            # A flood of connections: more than the connection budget.
            flood = []
            for _ in range(200):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(path)
                except OSError:
                    s.close()
                    continue
                flood.append(s)
            time.sleep(0.5)  # rpsupd faces the flood for a while
            for s in flood:
                s.close()
            # Once the flood's connections are closed, the control socket answers again.
            wait_until(lambda: r.status_json()[0] == 0, timeout=10)
            st = r.status()
            check(st["service"]["state"] == "running", "rpsupd is not running after the garbage")
            check(request(r.port).startswith("generation=1"), "workers do not answer")
            for s in idle:
                s.close()

            # Not root: status works, changing state does not.
            rc, out, err = r.ctl("status", r.name, user=65534)
            check(rc == 0, f"status as nobody exited {rc}: {err}")
            rc, out, err = r.ctl("reload", r.name, user=65534)
            log(err.strip())
            check(rc == 1 and "only root" in err, f"reload as nobody exited {rc}: {err}")
            rc, out, err = r.ctl("scale", r.name, "5", user=65534)
            check(rc == 1 and "only root" in err, f"scale as nobody exited {rc}: {err}")
            check(len(r.live_workers()) == 2, "an unprivileged scale changed something")

            # Exit codes: usage 2, unreachable 3, failure 1.
            check(r.ctl("scale", r.name)[0] == 2, "scale without a count is not a usage error")
            check(r.ctl("scale", r.name, "many")[0] == 2, "scale with a bad count is not a usage error")
            check(r.ctl("frobnicate")[0] == 2, "an unknown command is not a usage error")
            rc, out, err = r.ctl("status", "nosuchservice")
            check(rc == 3 and "cannot reach" in err, f"status of a missing service exited {rc}: {err}")
            rc, out, err = r.ctl("scale", r.name, "100000")
            check(rc == 1, f"scale beyond the limit exited {rc}: {err}")
            rc, out, err = r.ctl("--json", "status", "nosuchservice")
            check(rc == 3 and '"error"' in out, f"--json error document missing: {out}")
            rc, out, err = r.ctl("list")
            check(rc == 0 and r.name in out and "running" in out, f"list: {out} {err}")
        finally:
            report = load.stop()
        check(report["failed"] == 0, f"connections failed while the control socket was abused: {report}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
