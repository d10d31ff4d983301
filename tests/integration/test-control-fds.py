#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: unread GetListenerFds replies took rpsupd to 20,000 fds in 3.7 s.
"""A client that calls GetListenerFds again and again without reading the replies cannot make rpsupd
hold file descriptors for it: rpsupd's fd count stays bounded, the client is closed, and a crashed worker
is restarted afterwards. When accept() on the control socket fails for want of fds, rpsupd says so once,
with the real reason, rests instead of spinning, and accepts again once fds are back."""

import os
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

CALLS = 20_000


def fds_of(pid):
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nofile(pid):
    out = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings", "--output=SOFT,HARD"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


def test():
    os.environ["RPSUP_CONTROL_TIMEOUT_SCALE"] = "0.2"  # a client that does not read is closed after 2 s
    r = Rpsup(workers=2)
    try:
        r.start()
        pid = r.proc.pid
        path = rawdbus.control_path(r)
        baseline = len(fds_of(pid))
        cpu_before = cpu_seconds(pid)

        # Unread GetListenerFds replies took rpsupd to 20,000 fds in 3.7 s.
        c = rawdbus.Client(path).connect_and_auth(fds=True)
        burst = b"".join(c.call_bytes("GetListenerFds") for _ in range(8))
        c.sock.setblocking(False)
        sent, closed, most, sampled = 0, False, baseline, 0.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if time.monotonic() - sampled > 0.05:
                most, sampled = max(most, len(fds_of(pid))), time.monotonic()
                check(most < baseline + 64, f"rpsupd holds {most} fds (it had {baseline}) for a client that does "
                                            "not read its GetListenerFds replies")
            select.select([], [c.sock], [], 0.05)
            try:
                sent += c.sock.send(burst if sent < CALLS else burst[:len(burst) // 8]) // (len(burst) // 8)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        c.close()
        log(f"rpsupd's fds: {baseline} before, at most {most} while a client sent {min(sent, CALLS)} GetListenerFds "
            "calls without reading")
        check(closed, "rpsupd did not close a client that never reads its GetListenerFds replies")
        check(r.log().count("did not read the replies waiting for it") == 1,
              f"the closed connection is not logged once:\n{r.log()[-3000:]}")

        # rpsupd still has what it needs for its own work: a crashed worker is replaced.
        victim = r.live_workers()[0]
        os.kill(victim["pid"], signal.SIGKILL)
        end = time.monotonic() + 15
        while True:
            w = [x for x in r.live_workers() if x["slot"] == victim["slot"]][0]
            if w["pid"] and w["pid"] != victim["pid"] and w["state"] == "ready":
                break
            check(time.monotonic() < end, f"the killed worker was not replaced: {w}")
            time.sleep(0.05)

        # Out of fds: accept() fails. Logged once with its reason, no spinning, accepting again later.
        soft, hard = nofile(pid)
        numbers = fds_of(pid)
        lowest_free = next(i for i in range(len(numbers) + 1) if i >= len(numbers) or numbers[i] != i)
        log_before = r.log()
        subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={lowest_free}:{hard}"], check=True)
        waiting = []
        try:
            cpu = cpu_seconds(pid)
            for _ in range(3):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.sendall(rawdbus.auth())
                waiting.append(s)
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                if "Failed to accept" in r.log()[len(log_before):]:
                    break
                time.sleep(0.05)
            time.sleep(1.5)  # time for a spinning accept loop to show in the CPU time and the log
            spent = cpu_seconds(pid) - cpu
            new = r.log()[len(log_before):]
        finally:
            subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"], check=True)
        log(f"out of fds: {new.count('Failed to accept')} log line(s), {spent:.2f} s of CPU in 1.5 s+")
        check("Success" not in new, f"an accept error is logged without its reason:\n{new[-2000:]}")
        check(new.count("Failed to accept a control connection") == 1 and "Too many open files" in new,
              f"the accept error is not logged once with its reason:\n{new[-2000:]}")
        check(spent < 0.5, f"rpsupd spent {spent:.2f} s of CPU while accept() failed")

        # The connections that waited are accepted again, and rpsupctl works.
        for s in waiting:
            s.settimeout(5)
            check(s.recv(64).startswith(b"OK "), "a connection that waited through the fd shortage was not served")
            s.close()
        check(r.status()["service"]["state"] == "running", "rpsupd is not running")
        check("Accepting control connections again" in r.log(), "accepting again is not logged")

        spent = cpu_seconds(pid) - cpu_before
        log(f"rpsupd's CPU time over the test: {spent:.2f} s")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
