#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpsupd killed with SIGKILL and started again with the fds it had stored (the harness plays systemd's
fd store) loses no queued connection: connections wait in the listener while rpsupd is gone, the new
rpsupd takes over the running workers, and a client load running across the crash sees no failure."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, PendingClient, Rpsup, check, log, parse_reply, run, wait_until  # noqa: E402


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy)
    try:
        r.start(with_systemd=True)
        r.systemd.wait_for("READY", "1")

        def stored_names():
            return sorted(n for n, _ in r.systemd.stored())

        wait_until(lambda: "control" in stored_names() and "notify" in stored_names() and
                   any(n.startswith(("L.", "S")) for n in stored_names()), timeout=5)
        names = stored_names()
        log(f"fd store: {names}")
        check(any(n.startswith("L.") or n.startswith("S") for n in names), f"no listener in the fd store: {names}")
        check("control" in names and "notify" in names, f"control/notify sockets not stored: {names}")

        st = r.status()
        workers_before = sorted(w["pid"] for w in r.live_workers(st))

        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            # Stop the workers so that connections queue, then kill rpsupd.
            for pid in workers_before:
                os.kill(pid, signal.SIGSTOP)
            queued = [PendingClient(r.port) for _ in range(10)]
            r.kill_rpsupd(signal.SIGKILL)
            # While rpsupd is gone, connections still queue (nothing is refused).
            queued += [PendingClient(r.port) for _ in range(10)]
            time.sleep(0.3)  # the load runs on while rpsupd is gone

            r.systemd.sync()
            r.start(fds=r.systemd.stored())
            st = r.wait_running()
            after = sorted(w["pid"] for w in r.live_workers(st))
            log(f"workers before {workers_before}, after {after}")
            check(after == workers_before, "the restarted rpsupd did not take over the running workers")
            check(all(w["adopted"] for w in r.live_workers(st)), "workers not marked as taken over")
            for pid in workers_before:
                os.kill(pid, signal.SIGCONT)
            for i, c in enumerate(queued):
                reply = c.answered_within(10)
                check(reply is not None, f"queued connection {i} was lost across the rpsupd restart")
                c.close()
            log(f"all {len(queued)} queued connections answered")

            # The new rpsupd supervises: a reload works as before.
            rc, out, err = r.reload()
            check(rc == 0, f"reload after the restart: {err}")
            time.sleep(0.3)
        finally:
            report = load.stop()
        log(f"load across the crash: {report['ok']} ok, {report['failed']} failed")
        check(report["failed"] == 0, f"connections failed across the rpsupd crash: {report}")
        # ...and so does replacing a crashed worker.
        victim = r.live_workers()[0]["pid"]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            st = r.status()
            live = r.live_workers(st)
            return victim not in [w["pid"] for w in live] and all(w["state"] == "ready" for w in live) and st

        st = wait_until(replaced, timeout=10) or r.status()
        check(all(w["state"] == "ready" for w in r.live_workers(st)), "the killed worker was not replaced")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        check(not r.our_processes() - {os.getpid()}, "processes left after the stop")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
