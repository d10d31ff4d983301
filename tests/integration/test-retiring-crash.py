#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: crashes while retiring were logged at debug level and counted nowhere ("0 worker failures").
"""A worker that crashes while it is being retired is counted and logged as a warning, once per worker;
one that ends as asked is not."""

import os
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Rpsup, check, log, run  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile-worker.py")


def test():
    r = Rpsup(workers=2, extra_service="Ready=notify")
    try:
        good = open(r.config).read()
        # Generation 1 aborts on SIGTERM (a core dump per retired worker).
        r.write_config(good.replace(f"ExecStart={WORKER} ",
                                    f"ExecStart={sys.executable} {HOSTILE} --send READY=1 --on-term abort"))
        r.start()
        r.write_config(good)
        rc, out, err = r.reload("--wait")
        check(rc == 0, f"reload failed: {err}")
        st = r.status()
        svc = st["service"]
        log(f"retiring_failures={svc['retiring_failures']} worker_failures={svc['worker_failures']}")
        check(svc["retiring_failures"] == 2, f"retiring_failures = {svc['retiring_failures']}, expected 2")
        check(svc["worker_failures"] == 0, f"worker_failures = {svc['worker_failures']}")
        warnings = [line for line in r.log().splitlines() if "warning:" in line and "while it was retiring" in line]
        check(len(warnings) == 2, f"expected 2 warnings, got {warnings}")
        check(all("SIGABRT" in w for w in warnings), f"the signal is not named: {warnings}")
        rc, text, _ = r.ctl("status", r.name)
        check("2 failures while retiring" in text, f"rpsupctl status does not show them:\n{text}")
        rc, text, _ = r.ctl("metrics", r.name)
        check(f'rpsup_worker_retiring_failures_total{{service="{r.name}"}} 2' in text.splitlines(),
              f"the metric does not show them:\n{text}")

        # Generation 2 ends as asked: nothing more is counted.
        rc, out, err = r.reload("--wait")
        check(rc == 0, f"reload failed: {err}")
        check(r.status()["service"]["retiring_failures"] == 2, "a clean retirement was counted")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
