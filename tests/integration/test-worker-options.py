#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a worker gets: User=, Group=, WorkingDirectory=, Environment= (quoted), $VAR expansion in
ExecStart=, FileDescriptorName=, and the socket-activation and rpsup variables; and WatchdogSec=: a worker
that pings is left alone, one that goes silent is replaced."""

import os
import resource
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Rpsup, check, log, run, wait_until  # noqa: E402


def environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.split("=", 1) for e in f.read().decode().split("\0") if "=" in e)


def status_field(pid, name):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name + ":"):
            return line.split()[1]
    return None


def test():
    r = Rpsup(workers=2)
    r.write_config(f"""[Service]
ExecStart={WORKER} --ready-delay ${{DELAY}}
Workers=2
User=nobody
Group=nogroup
WorkingDirectory=/tmp
Environment="GREETING=hello world" DELAY=20
Environment=EXTRA=1
Environment=SHELL=/bin/sh

[Socket]
ListenStream=127.0.0.1:{r.port}
FileDescriptorName=web-listener
""")
    try:
        st = r.start()
        for w in r.live_workers(st):
            pid = w["pid"]
            env = environ(pid)
            check(status_field(pid, "Uid") == "65534" and status_field(pid, "Gid") == "65534",
                  f"worker {pid} runs as uid {status_field(pid, 'Uid')} gid {status_field(pid, 'Gid')}")
            check(os.readlink(f"/proc/{pid}/cwd") == "/tmp", f"worker {pid} runs in {os.readlink(f'/proc/{pid}/cwd')}")
            expect = {"GREETING": "hello world", "DELAY": "20", "EXTRA": "1", "LISTEN_FDNAMES": "web-listener",
                      "RPSUP_SERVICE": r.name, "RPSUP_GENERATION": "1", "RPSUP_WORKER": str(w["slot"]),
                      "USER": "nobody", "LOGNAME": "nobody", "LISTEN_PID": str(pid),
                      "SHELL": "/bin/sh"}  # Environment= overrides what User= sets, as in systemd
            for k, v in expect.items():
                check(env.get(k) == v, f"worker {pid}: {k}={env.get(k)!r}, expected {v!r}")
            check(env.get("NOTIFY_SOCKET", "").endswith("/notify"), f"NOTIFY_SOCKET={env.get('NOTIFY_SOCKET')}")
            cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
            check("20" in cmdline, f"${{DELAY}} was not expanded: {cmdline}")
        log("user, group, directory, environment and variables are as configured")
        r.stop()
    finally:
        r.cleanup()

    # A silent worker is replaced; a pinging one is not. (No core files from SIGABRT.) Both run at once,
    # the pinging one started first: once the silent one has been replaced twice, the pinging one has gone
    # more than two WatchdogSec= without being replaced, had its pings not counted.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    services = {}
    try:
        for args, silent in (("", False), ("--no-watchdog", True)):
            r = Rpsup(name="silent" if silent else "pinging", workers=1, worker_args=args,
                      extra_service="WatchdogSec=1")
            services[silent] = r
            st = r.start()
            r.first = r.live_workers(st)[0]["pid"]

        def replaced_twice():
            st = services[True].status()
            ready = [w["state"] for w in services[True].live_workers(st)] == ["ready"]
            return st["service"]["watchdog_kills"] >= 2 and ready

        wait_until(replaced_twice, timeout=15, what="the silent worker replaced twice")
        for is_silent, r in sorted(services.items()):
            st = r.status()
            kills = st["service"]["watchdog_kills"]
            now = r.live_workers(st)[0]["pid"]
            log(f"{'silent' if is_silent else 'pinging'} worker: {kills} watchdog kills, pid {r.first} -> {now}")
            if is_silent:
                check(kills >= 1 and now != r.first, "a worker without WATCHDOG=1 was not replaced")
                check("sent no WATCHDOG=1" in r.log(), "the log does not say why")
            else:
                check(kills == 0 and now == r.first, "a worker that pings was replaced")
        for r in services.values():
            r.stop()
    finally:
        for r in services.values():
            r.cleanup()


if __name__ == "__main__":
    run(test)
