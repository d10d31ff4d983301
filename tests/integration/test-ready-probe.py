#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ReadyProbe= gates a reload: workers that say READY=1 but answer the probe's GET with 500, answer nothing,
or never take the probe connection fail the reload (exit 1, with what the probe saw) while the old generation
keeps serving every client; workers that answer 200 pass it. An exec probe runs with the worker's variables,
and one that exits 1 fails the reload. The probe goes on during a soak: one that starts failing then rolls the
reload back."""

import os
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPCTL, WORKER, Load, Rpsup, check, log, parse_reply, request, run, wait_until  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile-worker.py")
PROBE = "ReadyProbe=http:/\nReadyProbeTimeoutSec=500ms\nReadyProbeIntervalSec=200ms\nReadyProbeFailures=2\n"


def generation_answering(r):
    return int(parse_reply(request(r.port))["generation"])


def failed_reload(r, config, needles, what):
    r.write_config(config)
    rc, out, err = r.reload()
    log(f"{what}: {err.strip()}")
    check(rc == 1, f"reload with {what} exited {rc}, expected 1: {err}")
    for needle in needles:
        check(needle in err, f"reload with {what}: \"{needle}\" is not in the reason: {err}")


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy, extra_service=PROBE)
    try:
        r.start()
        good = open(r.config).read()
        check(generation_answering(r) == 1, "generation 1 does not answer")
        load = Load(r.port, concurrency=4)
        try:
            load.wait_answered()
            # Up (READY=1) and broken: every GET answered 500.
            failed_reload(r, good.replace(f"ExecStart={WORKER}", f"ExecStart={WORKER} --http-status 500"),
                          ["readiness probe", "HTTP 500"], "workers answering 500")
            # Up and hanging: the answer comes after the probe's timeout.
            failed_reload(r, good.replace(f"ExecStart={WORKER}", f"ExecStart={WORKER} --reply-delay 3000"),
                          ["readiness probe", "no answer within 500ms"], "workers answering late")
            # READY=1 and never accepting: a tcp probe is not taken from the queue.
            failed_reload(r, good.replace(f"ExecStart={WORKER}", f"ExecStart={sys.executable} {HOSTILE} "
                                                                  "--send READY=1")
                                 .replace("ReadyProbe=http:/", "ReadyProbe=tcp"),
                          ["readiness probe", "no answer within 500ms"], "workers that never accept (tcp)")
            # A command that says no.
            failed_reload(r, good.replace("ReadyProbe=http:/", "ReadyProbe=exec:/bin/sh -c 'exit 1'"),
                          ["readiness probe", "exited with status 1"], "an exec probe exiting 1")
            check(generation_answering(r) == 1, "generation 1 no longer answers after the failed reloads")
        finally:
            report = load.stop()
        log(f"load during failed reloads: {report['ok']} ok, {report['failed']} failed")
        check(report["failed"] == 0, f"connections failed during failed reloads: {report}")
        check(set(report["generations"]) == {"1"}, f"generations answering: {report['generations']}")
        st = r.status()
        check(st["service"]["live_generation"] == 1, "generation 1 is no longer live")
        check(st["service"]["reloads_failed"] == 4, f"reloads_failed = {st['service']['reloads_failed']}")

        # Workers that answer 200 pass, and the new generation serves.
        r.write_config(good)
        rc, out, err = r.reload()
        check(rc == 0, f"reload of a healthy generation exited {rc}: {err}")
        check(generation_answering(r) == 6, "generation 6 does not answer")

        # An exec probe sees the worker under test: its variables, the address to probe, its pid.
        marker = os.path.join(r.tmp, "probed")
        script = os.path.join(r.tmp, "probe")
        with open(script, "w") as f:
            f.write(f"""#!/bin/sh
test "$RPSUP_SERVICE" = web && test -n "$RPSUP_GENERATION" && test -n "$RPSUP_WORKER" || exit 2
test "$RPSUP_PROBE_ADDRESS" = 127.0.0.1:{r.port} || exit 3
kill -0 "$MAINPID" || exit 4
tr '\\0' '\\n' < /proc/$MAINPID/environ | grep -qx "RPSUP_WORKER=$RPSUP_WORKER" || exit 5
echo "$RPSUP_GENERATION $RPSUP_WORKER $1" >> {marker}
""")
        os.chmod(script, 0o755)
        r.write_config(good.replace("ReadyProbe=http:/", f"ReadyProbe=exec:{script} $RPSUP_WORKER"))
        rc, out, err = r.reload()
        check(rc == 0, f"reload with an exec probe checking its environment exited {rc}: {err}")
        check(generation_answering(r) == 7, "generation 7 does not answer")
        seen = set(open(marker).read().split("\n")) - {""}
        check(seen == {"7 0 0", "7 1 1"}, f"the exec probe ran for {seen}, expected each worker of generation 7")

        # During a soak the new generation is still probed: a probe that starts failing rolls it back.
        broken = os.path.join(r.tmp, "broken")
        r.write_config(good.replace("ReadyProbe=http:/", f"ReadyProbe=exec:/bin/sh -c 'test ! -e {broken}'")
                       .replace("SoakSec=0", "SoakSec=30"))
        reload = subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: r.status()["service"]["soak_generation"] == 8, what="generation 8 soaking")
            check(generation_answering(r) == 8, "the soaking generation 8 does not take new connections")
            open(broken, "w").close()
            failed_at = time.monotonic()
            _, err = reload.communicate(timeout=30)
        finally:
            if reload.poll() is None:
                reload.kill()
                reload.wait()
        log(f"a probe failing during the soak: rolled back after {time.monotonic() - failed_at:.2f}s: {err.strip()}")
        check(reload.returncode == 1, f"reload whose probe failed during the soak exited {reload.returncode}: {err}")
        check("exited with status 1" in err, f"the rollback does not say what the probe saw: {err}")
        check(generation_answering(r) == 7, "generation 7 does not answer after the rollback")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else "migrate")
