#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A reload whose new generation cannot start exits 1 with the reason, and the old generation keeps
answering; so does a reload with a broken config, which changes nothing."""

import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Load, Rpsup, check, log, parse_reply, request, run  # noqa: E402


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy)
    try:
        r.start()
        good = open(r.config).read()
        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            # The new generation's workers exit at once.
            r.write_config(good.replace(f"ExecStart={WORKER}", f"ExecStart={WORKER} --fail-start"))
            rc, out, err = r.reload()
            log(err.strip())
            check(rc == 1, f"reload of a failing generation exited {rc}, expected 1")
            check("rolled back" in err and "exited with status 1" in err, f"no reason given: {err}")
            check(int(parse_reply(request(r.port))["generation"]) == 1, "generation 1 does not answer")

            # The new generation never gets ready.
            r.write_config(good.replace("ReadyTimeoutSec=10", "ReadyTimeoutSec=1")
                           .replace(f"ExecStart={WORKER}", f"ExecStart={WORKER} --ready-delay 5000"))
            rc, out, err = r.reload()
            log(err.strip())
            check(rc == 1 and "not ready within 1s" in err, f"reload exited {rc}: {err}")

            # The binary is gone.
            r.write_config(good.replace(f"ExecStart={WORKER}", "ExecStart=/nonexistent/worker"))
            rc, out, err = r.reload()
            log(err.strip())
            check(rc == 1 and "/nonexistent/worker" in err, f"reload exited {rc}: {err}")

            # A broken config: refused with file:line, nothing changes.
            r.write_config(good + "\nBogus=1\n")
            rc, out, err = r.reload()
            log(err.strip())
            check(rc == 1 and f"{r.config}:" in err and "Bogus" in err, f"reload exited {rc}: {err}")
        finally:
            report = load.stop()
        log(f"load during failed reloads: {report['ok']} ok, {report['failed']} failed")
        check(report["failed"] == 0, f"connections failed during failed reloads: {report}")
        check(set(report["generations"]) == {"1"}, f"generations answering: {report['generations']}")
        st = r.status()
        check(st["service"]["live_generation"] == 1, "generation 1 is no longer live")
        check(st["service"]["reloads_failed"] == 2, f"reloads_failed = {st['service']['reloads_failed']}")
        check(st["service"]["reloads_refused"] == 2, f"reloads_refused = {st['service']['reloads_refused']}")
        check(all(w["state"] == "ready" for w in r.live_workers(st)), "generation 1 workers are not ready")

        # After the failures, a good reload works.
        r.write_config(good)
        rc, out, err = r.reload()
        check(rc == 0, f"reload after the failures: {err}")
        check(int(parse_reply(request(r.port))["generation"]) == 4, "the new generation does not answer")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
