#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpsupd restarted over a steering program of an older rpsupd whose maps it cannot use (the harness, which
plays systemd's fd store, drops "bpf.probes" from it, as an rpsupd from before the probe map stored none):
it loads its program afresh, takes each listener out of the older sockarray as it takes the listener over,
and the service keeps serving: queued connections are answered, a load across the restart sees no
failure, a reload works, and the fd store holds only the new program's fds."""

import os
import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, PendingClient, Rpsup, check, log, run, wait_until  # noqa: E402

BPF_NAMES = ["bpf.counters", "bpf.groups", "bpf.listeners", "bpf.probes", "bpf.prog"]


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy)
    try:
        r.start(with_systemd=True)
        r.systemd.wait_for("READY", "1")

        def stored_names():
            return sorted(n for n, _ in r.systemd.stored())

        wait_until(lambda: set(BPF_NAMES) <= set(stored_names()) and
                   any(n.startswith("S") for n in stored_names()), timeout=5, what="the steering program stored")
        workers_before = sorted(w["pid"] for w in r.live_workers())

        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            for pid in workers_before:
                os.kill(pid, signal.SIGSTOP)
            queued = [PendingClient(r.port) for _ in range(10)]
            r.kill_rpsupd(signal.SIGKILL)
            queued += [PendingClient(r.port) for _ in range(10)]
            time.sleep(0.3)  # the load runs on while rpsupd is gone

            r.systemd.sync()
            older = [(n, fd) for n, fd in r.systemd.stored() if n != "bpf.probes"]
            r.start(fds=older)
            st = r.wait_running()
            check("Loading the steering program afresh" in r.log(), "the older program was not replaced")
            after = sorted(w["pid"] for w in r.live_workers(st))
            check(after == workers_before, f"workers not taken over: before {workers_before}, after {after}")
            for pid in workers_before:
                os.kill(pid, signal.SIGCONT)
            for i, c in enumerate(queued):
                reply = c.answered_within(10)
                check(reply is not None, f"queued connection {i} was lost across the restart")
                c.close()
            log(f"all {len(queued)} queued connections answered")

            rc, out, err = r.reload()
            check(rc == 0, f"reload after the restart: {err}")
            time.sleep(0.3)  # the load runs on over the new generation
        finally:
            report = load.stop()
        log(f"load across the restart: {report['ok']} ok, {report['failed']} failed")
        check(report["failed"] == 0, f"connections failed across the restart: {report}")

        r.systemd.sync()
        names = stored_names()
        for name in BPF_NAMES:
            check(names.count(name) == 1, f"the fd store holds {names.count(name)} \"{name}\": {names}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        check(not r.our_processes() - {os.getpid()}, "processes left after the stop")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
