#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The capability probe and Strategy=auto: what the kernel allows is found by trying; with BPF refused
(RPSUP_PROBE_DENY_BPF=1 makes every BPF step fail) auto falls back to handoff and says why, an explicit
drain or migrate is a start-up error naming the reason, and migrate runs through
net.ipv4.tcp_migrate_req=1 without BPF and says so. UDP picks drain, a Unix socket handoff."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPCTL, RPSUPD, Load, Rpsup, check, log, run  # noqa: E402


def probe(env):
    p = subprocess.run([RPSUPCTL, "--json", "probe"], capture_output=True, text=True, env=env, timeout=30)
    check(p.returncode == 0, f"probe exited {p.returncode}: {p.stderr}")
    out = json.loads(p.stdout)
    return out, {s["name"]: s for s in out["strategies"]}


def set_migrate_sysctl(v):
    with open("/proc/sys/net/ipv4/tcp_migrate_req", "w") as f:
        f.write(str(v))


def test():
    env = dict(os.environ)
    out, s = probe(env)
    log(f"probe: kernel {out['kernel']}, bpf {out['bpf']}, auto {out['auto']}")
    check(s["handoff"]["available"] and s["drain"]["available"] and s["migrate"]["available"],
          f"as root every strategy should be available here: {out}")

    env["RPSUP_PROBE_DENY_BPF"] = "1"
    out, s = probe(env)
    check(not s["drain"]["available"] and "RPSUP_PROBE_DENY_BPF" in s["drain"]["reason"], f"drain: {s['drain']}")
    check(not s["migrate"]["available"], f"migrate without BPF and without the sysctl: {s['migrate']}")
    check(s["handoff"]["available"], "handoff must always be available")

    # auto without BPF: handoff, with the reason.
    r = Rpsup(strategy="auto")
    os.environ["RPSUP_PROBE_DENY_BPF"] = "1"
    try:
        st = r.start()
        check(st["service"]["strategy"] == "handoff", f"auto chose {st['service']['strategy']}")
        check("not available" in st["service"]["strategy_reason"], st["service"]["strategy_reason"])
        log(f"auto without BPF: {st['service']['strategy']} ({st['service']['strategy_reason']})")
        r.stop()
    finally:
        r.cleanup()

    # Explicit strategies that cannot run: start-up errors with the reason.
    for strategy in ("drain", "migrate"):
        r = Rpsup(strategy=strategy)
        try:
            p = subprocess.run([RPSUPD, "--config", r.config, r.name], capture_output=True, text=True, timeout=30,
                               env=r.env())
            log(p.stderr.strip().splitlines()[-1])
            check(p.returncode == 1, f"Strategy={strategy} without BPF: rpsupd exited {p.returncode}")
            check(f"Strategy={strategy} cannot run" in p.stderr and "RPSUP_PROBE_DENY_BPF" in p.stderr, p.stderr)
        finally:
            r.cleanup()

    # migrate through the sysctl: runs without BPF, says so, and a reload under load loses nothing.
    set_migrate_sysctl(1)
    r = Rpsup(strategy="migrate", workers=2)
    try:
        st = r.start()
        check(st["service"]["strategy"] == "migrate", st["service"]["strategy"])
        check("tcp_migrate_req" in st["service"]["strategy_reason"], st["service"]["strategy_reason"])
        log(f"migrate without BPF: {st['service']['strategy_reason']}")
        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            for _ in range(3):
                rc, out, err = r.reload()
                check(rc == 0, f"reload: {err}")
                time.sleep(0.3)
        finally:
            report = load.stop()
        # Without the program the kernel picks migration targets at random, and now and then drops one:
        # bench/run measured 0-2 failures per 200 switches for bare net.ipv4.tcp_migrate_req=1. A reload under
        # load here must stay within that (the BPF strategies are held to zero elsewhere).
        log(f"sysctl migration: {report['ok']} ok, {report['failed']} failed, kernel {report['kernel']}")
        check(report["failed"] <= max(1, report["attempts"] // 10000),
              f"connections failed with sysctl migration beyond the kernel's own rate: {report}")
        r.stop()
    finally:
        set_migrate_sysctl(0)
        r.cleanup()
    del os.environ["RPSUP_PROBE_DENY_BPF"]

    # auto by protocol: UDP cannot migrate (drain), a Unix socket cannot be shared (handoff).
    for listen, expect in ((f"ListenDatagram=127.0.0.1:{{port}}", "drain"), ("ListenStream=/tmp/{name}.sock", "handoff")):
        r = Rpsup(strategy="auto")
        r.write_config(open(r.config).read().replace(f"ListenStream=127.0.0.1:{r.port}",
                                                     listen.format(port=r.port, name=os.path.basename(r.tmp))))
        try:
            st = r.start()
            log(f"auto for {listen.split('=')[0]}: {st['service']['strategy']} ({st['service']['strategy_reason']})")
            check(st["service"]["strategy"] == expect, f"auto chose {st['service']['strategy']}, expected {expect}")
            r.stop()
        finally:
            r.cleanup()

    # An explicit migrate for UDP is a start-up error.
    r = Rpsup(strategy="migrate", listen="ListenDatagram=127.0.0.1:9")
    try:
        p = subprocess.run([RPSUPD, "--config", r.config, r.name], capture_output=True, text=True, timeout=30,
                           env=r.env())
        check(p.returncode == 1 and "only TCP connections migrate" in p.stderr, p.stderr)
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
