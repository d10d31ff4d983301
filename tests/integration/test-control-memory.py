#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: 8 messages of 100 MiB, each short of its last byte, took rpsupd to 823 MB.
# Regression: 243k ListWorkers calls whose replies were never read took rpsupd to 1.13 GB.
"""What an unprivileged client sends, or does not read, cannot make rpsupd allocate much: a message that
announces 100 MiB is refused when its header arrives, and a client that sends calls without reading the
replies is read no further and closed. rpsupd's resident memory stays under 64 MiB throughout."""

import json
import os
import select
import struct
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

RSS_MAX_KIB = 64 * 1024
BIG = 100 * 1024 * 1024
BIG_CONNECTIONS = 8
UNREAD_CALLS = 243_000
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def memory_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# ---- the attacker, run as nobody ----

def closed_error(e):
    return isinstance(e, (BrokenPipeError, ConnectionResetError, ConnectionError))


def attack_big(path):
    """BIG_CONNECTIONS connections, each sending all but the last byte of a message of 100 MiB."""
    conns = []
    for _ in range(BIG_CONNECTIONS):
        c = rawdbus.Client(path).connect_and_auth()
        header = bytearray(c.call_bytes("GetStatus", signature="ay"))
        struct.pack_into("<I", header, 4, BIG - len(header))
        c.send(bytes(header))
        c.sock.setblocking(False)
        conns.append({"client": c, "left": BIG - len(header) - 1, "done": False, "closed": False})
    chunk = bytes(1024 * 1024)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        active = [x for x in conns if not x["done"] and x["left"] > 0]
        if not active:
            break
        _, writable, _ = select.select([], [x["client"].sock for x in active], [], 0.5)
        for x in active:
            if x["client"].sock not in writable:
                continue
            try:
                x["left"] -= x["client"].sock.send(chunk[:min(len(chunk), x["left"])])
            except BlockingIOError:
                pass
            except OSError as e:
                x["done"], x["closed"] = True, closed_error(e)
    sent = [BIG - x["left"] for x in conns]
    print(json.dumps({"closed": sum(x["closed"] for x in conns), "sent_mib": [s // (1 << 20) for s in sent]}))


def attack_unread(path):
    """UNREAD_CALLS ListWorkers calls on one connection, no reply ever read."""
    c = rawdbus.Client(path).connect_and_auth()
    call = rawdbus.method_call(1, "ListWorkers")
    data = memoryview(call * UNREAD_CALLS)
    c.sock.setblocking(False)
    pos, closed, last_progress = 0, False, time.monotonic()
    deadline = time.monotonic() + 40
    while pos < len(data) and time.monotonic() < deadline:
        select.select([], [c.sock], [], 0.5)
        try:
            n = c.sock.send(data[pos:pos + 1024 * 1024])
            pos += n
            last_progress = time.monotonic()
        except BlockingIOError:
            continue
        except OSError as e:
            closed = closed_error(e)
            break
    if not closed and pos >= len(data):
        # Everything went out: rpsupd read it all. Wait for it to give up on us.
        while time.monotonic() < deadline:
            try:
                c.sock.send(call)
            except BlockingIOError:
                time.sleep(0.05)
            except OSError as e:
                closed = closed_error(e)
                break
    print(json.dumps({"closed": closed, "calls_sent": pos // len(call),
                      "closed_after_s": round(time.monotonic() - last_progress, 2)}))


# ---- the test, as root ----

def watch(r, proc, what):
    """Waits for the attacker to finish; fails as soon as rpsupd's memory passes the bound."""
    peak = 0
    end = time.monotonic() + 50
    while proc.poll() is None:
        rss = memory_kib(r.proc.pid, "VmRSS")
        peak = max(peak, rss)
        if rss > RSS_MAX_KIB:
            proc.kill()
            proc.wait()
            check(False, f"{what}: rpsupd's resident memory reached {rss // 1024} MiB (limit {RSS_MAX_KIB // 1024} MiB)")
        check(time.monotonic() < end, f"{what}: the attacker did not finish")
        time.sleep(0.01)
    out, err = proc.communicate()
    check(proc.returncode == 0, f"{what}: the attacker failed: {err}")
    report = json.loads(out)
    log(f"{what}: {report}; rpsupd's resident memory peaked at {peak / 1024:.1f} MiB (sampled)")
    return report


def test():
    os.environ["RPSUP_CONTROL_TIMEOUT_SCALE"] = "0.2"  # a client that does not read is closed after 2 s
    r = Rpsup(workers=2)
    try:
        r.start()
        path = rawdbus.control_path(r)
        log(f"rpsupd's resident memory at the start: {memory_kib(r.proc.pid, 'VmRSS') / 1024:.1f} MiB")

        # 8 messages of 100 MiB, each short of its last byte, took rpsupd to 823 MB.
        proc = subprocess.Popen(NOBODY + [sys.executable, __file__, "attack-big", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        report = watch(r, proc, "100 MiB messages")
        check(report["closed"] == BIG_CONNECTIONS,
              f"rpsupd closed {report['closed']} of the {BIG_CONNECTIONS} connections that announced 100 MiB")
        check(max(report["sent_mib"]) < 64, f"rpsupd read up to {max(report['sent_mib'])} MiB of a message")
        check(r.log().count("announced a message larger than") == BIG_CONNECTIONS,
              f"each refused connection is not logged once:\n{r.log()[-3000:]}")

        # 243k ListWorkers calls whose replies were never read took rpsupd to 1.13 GB.
        proc = subprocess.Popen(NOBODY + [sys.executable, __file__, "attack-unread", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        report = watch(r, proc, "unread replies")
        check(report["closed"], "rpsupd did not close the connection of a client that does not read its replies")
        check(report["calls_sent"] < UNREAD_CALLS, "rpsupd read every call of a client that reads no reply")
        check(r.log().count("did not read the replies waiting for it") == 1,
              f"the closed connection is not logged once:\n{r.log()[-3000:]}")

        after = memory_kib(r.proc.pid, "VmRSS")
        peak = memory_kib(r.proc.pid, "VmHWM")
        log(f"rpsupd's resident memory: {after / 1024:.1f} MiB after the attacks, peak {peak / 1024:.1f} MiB")
        check(peak < RSS_MAX_KIB, f"rpsupd's resident memory peaked at {peak // 1024} MiB")

        st = r.status()
        check(st["service"]["state"] == "running", "rpsupd is not running after the attacks")
        rc, _, err = r.ctl("status", r.name, user=65534)
        check(rc == 0, f"status as nobody failed after the attacks: {err}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "attack-big":
        attack_big(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "attack-unread":
        attack_unread(sys.argv[2])
    else:
        run(test)
