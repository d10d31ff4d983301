#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The readiness probe reaches the worker under test, not whichever worker the kernel picks: a new
generation with one healthy and one broken worker (it says READY=1, then answers 500) fails every reload,
never passing by luck, while the old generation keeps serving, on a loopback address and on an address of
its own; probe connections are not counted as client traffic."""

import os
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import (RPSUPCTL, WORKER, Rpsup, check, free_port, log, parse_reply, request, run,  # noqa: E402
                       wait_until)

RELOADS = 10
OTHER_ADDRESS = "10.9.9.9"  # a listener on an address of its own, not loopback: probes come from it


def half_broken(r):
    """The config with worker 1 of each new generation broken (READY=1, then HTTP 500), worker 0 not."""
    script = os.path.join(r.tmp, "half-broken")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nif [ \"$RPSUP_WORKER\" = 1 ]; then exec {WORKER} --http-status 500; fi\n"
                f"exec {WORKER}\n")
    os.chmod(script, 0o755)
    return open(r.config).read().replace(f"ExecStart={WORKER}", f"ExecStart={script}")


def reloads_all_fail(r, n, host="127.0.0.1"):
    err = ""
    for i in range(n):
        rc, out, err = r.reload()
        check(rc == 1, f"reload {i + 1} of a half-broken generation exited {rc}: {err}")
        check("worker 1" in err and "HTTP" in err and "500" in err, f"reload {i + 1}: not the reason: {err}")
        check(int(parse_reply(request(r.port, host=host))["generation"]) == 1, "generation 1 does not answer")
    return err


def test(strategy):
    # A listener on its own (non-loopback) address: the probe connects from that address.
    subprocess.run(["ip", "addr", "add", f"{OTHER_ADDRESS}/32", "dev", "lo"], check=True)
    port = free_port()
    r = Rpsup(workers=2, strategy=strategy, soak=0, port=port, listen=f"ListenStream={OTHER_ADDRESS}:{port}",
              extra_service="ReadyProbe=http:/\nReadyProbeFailures=1\nReadyProbeIntervalSec=0.2")
    try:
        r.start()
        r.write_config(half_broken(r))
        reloads_all_fail(r, 3, host=OTHER_ADDRESS)
        st = r.status()
        syns = sum(w["syns"] for w in st["workers"] if w["generation"] == 1)
        check(syns == 3, f"generation 1 counted {syns} connections, the client made 3: probes were counted")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()

    r = Rpsup(workers=2, strategy=strategy, soak=60,
              extra_service="ReadyProbe=http:/\nReadyProbeFailures=1\nReadyProbeIntervalSec=0.2")
    try:
        r.start()
        good = open(r.config).read()
        r.write_config(half_broken(r))
        err = reloads_all_fail(r, RELOADS)
        log(f"{RELOADS} of {RELOADS} reloads of a half-broken generation failed (and 3 of 3 on {OTHER_ADDRESS}): "
            f"{err.strip()}")
        st = r.status()
        check(st["service"]["reloads_failed"] == RELOADS, f"reloads_failed is {st['service']['reloads_failed']}")
        check(st["service"]["last_reload_outcome"] == "failed", "last reload outcome is not failed")

        # A healthy generation passes its probes and soaks; its probes are not client traffic.
        r.write_config(good)
        rl = subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        soaking = RELOADS + 2
        wait_until(lambda: r.status()["service"]["soak_generation"] == soaking, 15, "the healthy generation soaking")
        # Probes go on during the soak: wait for a few more, then look at what was counted.
        before = r.status()
        wait_until(lambda: sum(w["probe_passes"] for w in r.status()["workers"] if w["generation"] == soaking)
                   >= sum(w["probe_passes"] for w in before["workers"] if w["generation"] == soaking) + 4,
                   10, "probes during the soak")
        st = r.status()
        new = [w for w in st["workers"] if w["generation"] == soaking]
        check(len(new) == 2 and all(w["syns"] == 0 for w in new),
              f"probe connections were counted as client traffic: {[(w['slot'], w['syns']) for w in new]}")
        check(st["service"]["soak_steered"] == 0, f"soak_steered is {st['service']['soak_steered']}")
        rc, out, err = r.ctl("promote", r.name)
        check(rc == 0, f"promote exited {rc}: {err}")
        out, err = rl.communicate(timeout=30)
        check(rl.returncode == 0, f"the healthy reload exited {rl.returncode}: {err}")
        check(int(parse_reply(request(r.port))["generation"]) == soaking, "the healthy generation does not answer")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else "migrate")
