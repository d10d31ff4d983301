#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What rpsupctl says when an operator gets a detail wrong, or when rpsupd is gone: `scale --wait` is refused,
`scale web -1` is a bad count (not an unknown option), a runtime directory that does not exist is said to be
missing (exit 3), an rpsupd stopped outside systemd takes its control socket with it, a socket left by a
killed rpsupd is listed as "not running", and a caller that is neither root nor the service's user hears so,
before rpsupd looks at the arguments of its call."""

import json
import os
import signal
import struct
import sys

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

NOBODY = 65534


def call_as(uid, path, member, signature, body):
    """Calls `member` on a connection of `uid` (a child process that drops to it); returns the error name, or
    "" for a method return."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            c = rawdbus.Client(path).connect_and_auth()
            reply = c.call(member, signature=signature, body=body)
            os.write(wfd, reply.get("error_name", "").encode())
        except Exception as e:
            os.write(wfd, f"no answer: {e}".encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    log(f"{member} as uid {uid}: {out or 'answered'}")
    return out


def canary_zero():
    """ReloadWithOptions's a{sv} with {"canary": <uint32 0>}, which is out of range."""
    entry = struct.pack("<I", 6) + b"canary\0" + b"\x01u\0" + b"\0\0" + struct.pack("<I", 0)
    return struct.pack("<I", len(entry)) + b"\0" * 4 + entry


def test():
    r = Rpsup(workers=1)
    try:
        r.start()
        path = rawdbus.control_path(r)

        # --wait belongs to reload only: scale used to take it and not wait.
        rc, out, err = r.ctl("--wait", "scale", r.name, "2")
        check(rc == 2 and '--wait is an option of "reload" only' in err and "scale" in err,
              f"scale --wait exited {rc}: {err}")
        log(f"scale --wait: {err.strip()}")
        rc, out, err = r.ctl("status", r.name, "--wait")
        check(rc == 2 and "--wait" in err, f"status --wait exited {rc}: {err}")
        check(len(r.live_workers()) == 1, "scale --wait changed the worker count")

        # A negative count is a bad count, not an option.
        for args in (("scale", r.name, "-1"), ("scale", r.name, "0"), ("--json", "scale", r.name, "-3")):
            rc, out, err = r.ctl(*args)
            check(rc == 2 and "count must be a positive number" in err and "invalid option" not in err,
                  f"{' '.join(args)} exited {rc}: {err}")
        log(f"scale web -1: {err.strip()}")

        # Neither root nor the service's user: said so, and before the arguments are looked at.
        rc, out, err = r.ctl("scale", r.name, "2", user=NOBODY)
        check(rc == 1 and "only root or the service's user (uid 0" in err and "you are uid 65534" in err,
              f"scale as nobody exited {rc}: {err}")
        log(f"scale as nobody: {err.strip()}")
        zero = struct.pack("<I", 0)
        check(call_as(0, path, "Scale", "u", zero) == "io.rpsup.Error.InvalidArgument", "root's Scale(0) is not "
              "refused as an invalid argument")
        check(call_as(NOBODY, path, "Scale", "u", zero) == "io.rpsup.Error.PermissionDenied",
              "an unprivileged Scale(0) is not refused for its caller first")
        check(call_as(0, path, "ReloadWithOptions", "a{sv}", canary_zero()) == "io.rpsup.Error.InvalidArgument",
              "root's ReloadWithOptions(canary 0) is not refused as an invalid argument")
        check(call_as(NOBODY, path, "ReloadWithOptions", "a{sv}", canary_zero()) ==
              "io.rpsup.Error.PermissionDenied", "an unprivileged ReloadWithOptions(canary 0) is not refused for "
              "its caller first")
        check(r.status()["service"]["live_generation"] == 1, "a refused call changed the service")

        # Stopped outside systemd: the control socket goes with rpsupd, and list no longer shows it.
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        check(not os.path.exists(path), f"rpsupd left its control socket {path} behind")
        rc, out, err = r.ctl("list")
        check(rc == 0 and "No rpsup services" in out, f"list after a stop: {rc} {out} {err}")

        # Killed: the socket stays (nothing ran to remove it); list and status say rpsupd is not running.
        r.start()
        r.kill_rpsupd(signal.SIGKILL)
        check(os.path.exists(path), "no socket left by a killed rpsupd: the next check would prove nothing")
        rc, out, err = r.ctl("list")
        row = [line.split() for line in out.splitlines() if line.startswith(r.name + " ")]
        check(rc == 0 and row and row[0][1:3] == ["not", "running"], f"list with a stale socket: {rc} {out} {err}")
        rc, out, err = r.ctl("--json", "list")
        entry = json.loads(out)["services"][0]
        check(entry["reachable"] is False and entry["state"] == "not running", f"list --json: {out}")
        rc, out, err = r.ctl("status", r.name)
        check(rc == 3 and "is not running" in err, f"status with a stale socket exited {rc}: {err}")
        log(f"a killed rpsupd: list shows {' '.join(row[0][:3])!r}; status: {err.strip()}")

        # A runtime directory that does not exist is not an empty list.
        missing = os.path.join(r.tmp, "nonexistent")
        rc, out, err = r.ctl("--runtime-dir", missing, "list")
        check(rc == 3 and "does not exist" in err and missing in err, f"list of a missing directory: {rc} {out} {err}")
        log(f"missing runtime directory: {err.strip()}")
        rc, out, err = r.ctl("--json", "--runtime-dir", missing, "list")
        check(rc == 3 and json.loads(out)["error"]["exit_code"] == 3, f"list --json of a missing directory: {out}")
        empty = os.path.join(r.tmp, "empty")
        os.mkdir(empty)
        rc, out, err = r.ctl("--runtime-dir", empty, "list")
        check(rc == 0 and "No rpsup services" in out, f"list of an empty directory: {rc} {out} {err}")

        # A new rpsupd replaces the stale socket.
        r.start()
        rc, out, err = r.ctl("list")
        check(rc == 0 and "running" in out and "not running" not in out, f"list after a restart: {out} {err}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
