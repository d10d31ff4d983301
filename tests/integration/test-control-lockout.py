#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: 64 connections of any user held every place; root's rpsupctl exited 3.
"""Unprivileged users cannot lock root out of the control socket: while 1,000 connections of five
unprivileged uids ping to keep their place, drip bytes that never complete, and reconnect whenever they
are closed, root's `rpsupctl status` answers every time within 1 s, and scale and reload work."""

import heapq
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

UIDS = [65534, 65533, 65532, 65531, 65530]
PER_UID = 200          # 1,000 connections in all
ATTACK_SECONDS = 30
RECONNECT = 1.0        # an attacker connection that was closed or refused comes back after this
PING_EVERY = 1.0
DRIP_EVERY = 0.2


# ---- the attacker, run as one unprivileged uid ----

def attack(path, n, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    ping = rawdbus.method_call(1, "Ping", interface="org.freedesktop.DBus.Peer")
    drip = rawdbus.auth() + rawdbus.method_call(1, "GetStatus")
    sel = selectors.DefaultSelector()
    conns = [None] * n
    gen = [0] * n
    now = time.monotonic()
    timers = [(now + i * 0.001, i, 0) for i in range(n)]
    heapq.heapify(timers)
    stats = {"attempts": 0, "refused": 0, "closed": 0}

    def later(i, delay):
        heapq.heappush(timers, (time.monotonic() + delay, i, gen[i]))

    def drop(i):
        sel.unregister(conns[i]["sock"])
        conns[i]["sock"].close()
        conns[i] = None
        gen[i] += 1
        later(i, RECONNECT)

    def act(i):
        c = conns[i]
        if c is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            stats["attempts"] += 1
            try:
                s.connect(path)
            except OSError:
                stats["refused"] += 1  # the backlog is full
                s.close()
                later(i, RECONNECT)
                return
            conns[i] = c = {"sock": s, "pinger": i % 2 == 0, "pos": 0}
            sel.register(s, selectors.EVENT_READ, i)
            if c["pinger"]:
                try:
                    s.send(rawdbus.auth())
                except OSError:
                    pass
        try:
            if c["pinger"]:
                c["sock"].send(ping)
                later(i, PING_EVERY)
            else:
                if c["pos"] < len(drip) - 1:  # never the last byte
                    c["sock"].send(drip[c["pos"]:c["pos"] + 1])
                    c["pos"] += 1
                later(i, DRIP_EVERY)
        except BlockingIOError:
            later(i, PING_EVERY)
        except OSError:
            stats["closed"] += 1
            drop(i)

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        wait = min(max(timers[0][0] - time.monotonic(), 0), 0.05) if timers else 0.05
        for key, _ in sel.select(wait):
            i = key.data
            try:
                data = conns[i]["sock"].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                stats["closed"] += 1
                drop(i)
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, i, g = heapq.heappop(timers)
            if g == gen[i]:
                act(i)
    stats["open_at_end"] = sum(c is not None for c in conns)
    print(json.dumps(stats))


# ---- the test, as root ----

def timed_ctl(r, *args):
    t = time.monotonic()
    rc, out, err = r.ctl(*args, timeout=30)
    return rc, time.monotonic() - t, err


def test():
    # Shorter time-outs (authentication and a message 0.5 s, idle 6 s): the attack spans several of them.
    os.environ["RPSUP_CONTROL_TIMEOUT_SCALE"] = "0.1"
    r = Rpsup(workers=2)
    attackers = []
    try:
        r.start()
        path = rawdbus.control_path(r)
        baseline = len(os.listdir(f"/proc/{r.proc.pid}/fd"))

        # 64 connections of any user held every place; root's rpsupctl exited 3.
        for uid in UIDS:
            # At the lowest CPU priority: what is under test is admission to the control socket, not the
            # scheduler (a local user can always burn CPU; that is the kernel's to share, not rpsupd's).
            attackers.append(subprocess.Popen(
                ["nice", "-n", "19", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, __file__,
                 "attack", path, str(PER_UID), str(ATTACK_SECONDS)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        started = time.monotonic()
        held = 0
        while time.monotonic() - started < 5:
            held = max(held, (len(os.listdir(f"/proc/{r.proc.pid}/fd")) - baseline) // 3)
            if held >= 32:
                break
            time.sleep(0.05)
        log(f"the attackers hold {held} control connections after {time.monotonic() - started:.1f} s")

        latencies, failures, done = [], [], []
        step = 0
        while time.monotonic() - started < ATTACK_SECONDS - 2:
            rc, took, err = timed_ctl(r, "status", r.name)
            latencies.append(took)
            if rc != 0 or took >= 1.0:
                failures.append(f"status exited {rc} after {took:.2f} s: {err.strip()}")
            step += 1
            if step in (10, 20, 30):
                args = {10: ("scale", r.name, "3"), 20: ("scale", r.name, "2"), 30: ("reload", r.name)}[step]
                rc, took, err = timed_ctl(r, *args)
                done.append(f"{' '.join(args[:1] + args[2:])}: {took:.2f} s")
                if rc != 0:
                    failures.append(f"{' '.join(args)} exited {rc}: {err.strip()}")
            time.sleep(0.2)
        held_now = (len(os.listdir(f"/proc/{r.proc.pid}/fd")) - baseline) // 3

        reports = []
        for p in attackers:
            out, err = p.communicate(timeout=30)
            check(p.returncode == 0, f"an attacker failed: {err}")
            reports.append(json.loads(out))
        attempts = sum(x["attempts"] for x in reports)
        log(f"attackers: {len(UIDS)} uids, {len(UIDS) * PER_UID} connections kept up for {ATTACK_SECONDS} s, "
            f"{attempts} connection attempts, {sum(x['closed'] for x in reports)} closed by rpsupd, "
            f"{sum(x['refused'] for x in reports)} refused by the kernel (backlog full); rpsupd held {held_now} "
            "of them near the end")
        log(f"root's rpsupctl status: {len(latencies)} calls, median {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms; {', '.join(done)}")
        check(not failures, "root was locked out:\n" + "\n".join(failures[:10]))
        check(len(done) == 3, "scale and reload did not all run")

        check(r.status()["service"]["state"] == "running", "rpsupd is not running after the attack")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        for p in attackers:
            if p.poll() is None:
                p.kill()
                p.wait()
        r.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "attack":
        attack(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        run(test)
