#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: each Probe loaded and attached BPF programs on the event loop, for anyone.
"""Probe answers what rpsupd found at start, at once, whoever asks: an unprivileged caller cannot make
rpsupd load BPF programs. Reprobe, for root and rpsupd's uid only, probes again."""

import json
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

CALLS = 1000
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def probed_usec(reply):
    check(reply["type"] == rawdbus.METHOD_RETURN, f"Probe failed: {reply}")
    first = rawdbus.records(reply)[0]
    check(first["name"] == "handoff" and "probed_usec" in first, f"Probe's first record: {first}")
    return first["probed_usec"]


def as_nobody(path):
    """CALLS Probe calls, then a Reprobe, as an unprivileged user."""
    c = rawdbus.Client(path).connect_and_auth()
    seen = set()
    start = time.monotonic()
    for _ in range(CALLS):
        m = c.call("Probe")
        first = rawdbus.records(m)[0] if m["type"] == rawdbus.METHOD_RETURN else {}
        seen.add(first.get("probed_usec"))
    elapsed = time.monotonic() - start
    m = c.call("Reprobe")
    print(json.dumps({"elapsed": elapsed, "probed_usec": sorted(x or 0 for x in seen),
                      "reprobe": m.get("error_name", "answered")}))


def test():
    r = Rpsup(workers=2)
    try:
        r.start()
        path = rawdbus.control_path(r)
        root = rawdbus.Client(path).connect_and_auth()

        # Each Probe loaded and attached BPF programs on the event loop, for anyone.
        out = subprocess.run(NOBODY + [sys.executable, __file__, "as-nobody", path], capture_output=True, text=True,
                             timeout=60)
        check(out.returncode == 0, f"the unprivileged client failed: {out.stderr}")
        report = json.loads(out.stdout)
        log(f"{CALLS} unprivileged Probe calls took {report['elapsed'] * 1000:.0f} ms "
            f"({report['elapsed'] / CALLS * 1e6:.0f} us each, round trip)")
        check(report["elapsed"] < 1.0, f"{CALLS} Probe calls took {report['elapsed']:.2f} s: rpsupd probes again "
                                       "for each")
        at_start = probed_usec(root.call("Probe"))
        check(report["probed_usec"] == [at_start],
              f"unprivileged Probe calls got probes made at {report['probed_usec']}, not the one made at start "
              f"({at_start})")
        check(report["reprobe"] == "io.rpsup.Error.PermissionDenied",
              f"Reprobe by an unprivileged user was answered with {report['reprobe']}")

        # Root probes again, and everyone gets the new answer.
        again = probed_usec(root.call("Reprobe"))
        check(again > at_start, f"Reprobe answered a probe made at {again}, not after {at_start}")
        check(probed_usec(root.call("Probe")) == again, "Probe does not answer the latest probe")
        root.close()

        check(r.status()["service"]["state"] == "running", "rpsupd is not running")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "as-nobody":
        as_nobody(sys.argv[2])
    else:
        run(test)
