#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Under continuous client load, 5 reloads (each with a soak, the previous generation kept warm) and 5
scale changes lose zero connections, and every generation answers."""

import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, run  # noqa: E402


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy, soak=1)
    try:
        r.start()
        load = Load(r.port, concurrency=16)
        try:
            load.wait_answered()
            sizes = [4, 1, 3, 2, 5]
            for i in range(5):
                rc, out, err = r.reload()
                check(rc == 0, f"reload {i + 1} failed ({rc}): {err}")
                log(out.strip())
                time.sleep(0.4)
                rc, out, err = r.scale(sizes[i])
                check(rc == 0, f"scale to {sizes[i]} failed ({rc}): {err}")
                log(out.strip())
                time.sleep(0.4)
        finally:
            report = load.stop()
        log(f"load: {report['ok']} ok, {report['failed']} failed "
            f"(refused {report['refused']}, reset {report['reset']}, timeout {report['timeout']}, "
            f"eof {report['eof']}, other {report['other']}), {report['rate_per_s']:.0f}/s")
        check(report["ok"] > 1000, f"only {report['ok']} connections completed")
        check(report["failed"] == 0, f"{report['failed']} of {report['attempts']} connections failed: {report}")
        answered = {int(g) for g in report["generations"]}
        check(answered >= set(range(1, 7)), f"generations that answered: {sorted(answered)}, expected 1..6")
        st = r.status()
        check(st["service"]["live_generation"] == 6, f"live generation is {st['service']['live_generation']}")
        check(len(r.live_workers(st)) == 5, f"{len(r.live_workers(st))} live workers, expected 5")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else None)
