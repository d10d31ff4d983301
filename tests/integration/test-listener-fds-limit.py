#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: beyond 256 listeners the list was cut without a word; over 253 fds failed with "Invalid argument".
"""GetListenerFds with more listeners than one reply can carry (the kernel passes 253 fds per message):
an error that says so, and a log line, never a silently shortened list."""

import os
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import GET_LISTENER_FDS, WORKER, Failed, Rpsup, check, free_port, log, run  # noqa: E402


def get_listener_fds(r):
    control = os.path.join(r.runtime, r.name, "control")
    t0 = time.monotonic()
    try:
        p = subprocess.run([GET_LISTENER_FDS, control], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise Failed("GetListenerFds got no answer within 10s")
    return p.returncode, p.stdout.splitlines(), time.monotonic() - t0


def service(r, n_addresses, workers):
    ports = set()
    while len(ports) < n_addresses:
        ports.add(free_port())
    listen = "\n".join(f"ListenStream=127.0.0.1:{p}" for p in ports)
    r.write_config(f"""[Service]
ExecStart={WORKER}
Workers={workers}
Strategy=drain
ReadyTimeoutSec=20

[Socket]
{listen}
""")


def test():
    # 23 addresses x 11 workers = 253 listeners: one reply carries them all.
    r = Rpsup(strategy="drain")
    service(r, 23, 11)
    try:
        r.start(wait=False)
        r.wait_running(timeout=30)
        rc, lines, t = get_listener_fds(r)
        log(f"253 listeners: exit {rc}, {len(lines)} fds in {t:.3f}s")
        check(rc == 0 and len(lines) == 253 and all(" listening " in line for line in lines),
              f"exit {rc}, {len(lines)} lines: {lines[:3]}")
        r.stop()
    finally:
        r.cleanup()

    # Beyond 256 listeners the list was cut without a word; and more than 253 fds cannot go into
    # one message at all: sending it failed with a bare "Invalid argument". 17 addresses x 15 workers = 255.
    r = Rpsup(strategy="drain")
    service(r, 17, 15)
    try:
        r.start(wait=False)
        r.wait_running(timeout=30)
        rc, lines, t = get_listener_fds(r)
        log(f"255 listeners: exit {rc} in {t:.3f}s: {lines[:1]}")
        check(rc == 1 and len(lines) == 1 and lines[0].startswith("error io.rpsup.Error.LimitExceeded"),
              f"expected a LimitExceeded reply, got exit {rc} with {len(lines)} lines: {lines[:3]}")
        check("Refusing GetListenerFds" in r.log() and "at most 253" in r.log(),
              f"rpsupd did not log the refusal:\n{r.log()[-2000:]}")
        # The connection and rpsupd are fine afterwards.
        check(r.status()["service"]["state"] == "running", "rpsupd is not running after the refusal")
        r.stop()
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
