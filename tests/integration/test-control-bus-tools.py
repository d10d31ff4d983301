#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The standard D-Bus tools talk to the control socket as protocol/CONTROL.md shows: busctl (introspect, call,
get-property, tree) and gdbus (introspect, call, Properties.Get), as root and as an unprivileged uid. Both
say Hello first, as bus clients do; rpsupd answers it, and the few bus calls they make, on the direct
connection. Reading works for everyone; changing state (Scale) only for root, whichever tool asks. The bus
calls are bounded: a second Hello, an oversized match rule and an unknown name are refused."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, run, skip_or_fail, wait_until  # noqa: E402

DEST = "io.rpsup.Supervisor1"
OBJECT = "/io/rpsup/Supervisor1"
NOBODY = 65534


def tool(argv, user=None):
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def who(user):
    return "root" if user is None else f"uid {user}"


def check_busctl(r, address, user, pid):
    bus = ["busctl", f"--address={address}"]
    rc, out, err = tool([*bus, "introspect", DEST, OBJECT], user)
    check(rc == 0, f"busctl introspect as {who(user)} exited {rc}: {err}")
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(".")}
    check(lines.get(".GetStatus", [""])[0] == "method", f"busctl introspect lists no GetStatus:\n{out}")
    check(lines.get(".State") == ["property", "s", '"running"', "-"], f"busctl introspect State:\n{out}")

    rc, out, err = tool([*bus, "--json=short", "call", DEST, OBJECT, DEST, "GetStatus"], user)
    check(rc == 0, f"busctl call GetStatus as {who(user)} exited {rc}: {err}")
    status = json.loads(out)["data"][0]
    check(status["service"]["data"] == r.name and status["state"]["data"] == "running" and
          status["pid"]["data"] == pid, f"busctl call GetStatus as {who(user)}: {out[:400]}")

    rc, out, err = tool([*bus, "get-property", DEST, OBJECT, DEST, "LiveGeneration", "ReadyWorkers", "Service"], user)
    check(rc == 0, f"busctl get-property as {who(user)} exited {rc}: {err}")
    check(out.split("\n")[:3] == ["t 1", "u 1", f's "{r.name}"'], f"busctl get-property as {who(user)}: {out}")

    rc, out, err = tool([*bus, "tree"], user)
    check(rc == 0 and OBJECT in out, f"busctl tree as {who(user)} exited {rc}: {out} {err}")
    log(f"busctl as {who(user)}: introspect, call, get-property and tree work")


def check_gdbus(r, address, user, pid):
    where = ["--address", address, "--dest", DEST, "--object-path", OBJECT]
    rc, out, err = tool(["gdbus", "introspect", *where], user)
    check(rc == 0, f"gdbus introspect as {who(user)} exited {rc}: {err}")
    check("GetStatus(out a{sv} status);" in out and "readonly s State = 'running';" in out,
          f"gdbus introspect as {who(user)}:\n{out}")

    rc, out, err = tool(["gdbus", "call", *where, "--method", f"{DEST}.GetStatus"], user)
    check(rc == 0, f"gdbus call GetStatus as {who(user)} exited {rc}: {err}")
    check(f"'service': <'{r.name}'>" in out and "'state': <'running'>" in out and f"'pid': <uint32 {pid}>" in out,
          f"gdbus call GetStatus as {who(user)}: {out[:400]}")

    rc, out, err = tool(["gdbus", "call", *where, "--method", "org.freedesktop.DBus.Properties.Get", DEST,
                         "Workers"], user)
    check(rc == 0 and out.strip() == "(<uint32 1>,)", f"gdbus Properties.Get as {who(user)} exited {rc}: {out} {err}")
    log(f"gdbus as {who(user)}: introspect, call and Properties.Get work")


def test():
    for t in ("busctl", "gdbus", "setpriv"):
        if not shutil.which(t):
            skip_or_fail(f"{t} is not installed (tools/setup installs systemd, libglib2.0-bin and util-linux)")
    r = Rpsup(workers=1)
    try:
        r.start()
        address = "unix:path=" + os.path.join(r.runtime, r.name, "control")
        pid = r.proc.pid
        for user in (None, NOBODY):
            check_busctl(r, address, user, pid)
            check_gdbus(r, address, user, pid)

        # Changing state: refused for uid 65534 with either tool, done for root.
        bus = ["busctl", f"--address={address}"]
        rc, out, err = tool([*bus, "call", DEST, OBJECT, DEST, "Scale", "u", "2"], NOBODY)
        check(rc != 0 and "only root or the service's user" in err, f"busctl Scale as uid {NOBODY}: {rc} {err}")
        rc, out, err = tool(["gdbus", "call", "--address", address, "--dest", DEST, "--object-path", OBJECT,
                             "--method", f"{DEST}.Scale", "2"], NOBODY)
        check(rc != 0 and "io.rpsup.Error.PermissionDenied" in err, f"gdbus Scale as uid {NOBODY}: {rc} {err}")
        check(len(r.live_workers()) == 1, "an unprivileged Scale changed the worker count")
        rc, out, err = tool([*bus, "call", DEST, OBJECT, DEST, "Scale", "u", "2"])
        check(rc == 0, f"busctl Scale as root exited {rc}: {err}")
        wait_until(lambda: len(r.live_workers()) == 2, timeout=15, what="two workers after busctl's Scale")
        rc, out, err = tool([*bus, "get-property", DEST, OBJECT, DEST, "Workers"])
        check(rc == 0 and out.strip() == "u 2", f"Workers after Scale: {rc} {out} {err}")
        log("Scale: refused for uid 65534 (busctl and gdbus), done for root")

        # The bus calls rpsupd answers for the absent bus daemon are bounded like every other call.
        dbus = [*bus, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus"]
        rc, out, err = tool([*dbus, "Hello"])
        check(rc != 0 and "Already handled" in err, f"a second Hello was answered: {rc} {out} {err}")
        rc, out, err = tool([*dbus, "AddMatch", "s", "type='signal',path='/" + "x" * 2000 + "'"], NOBODY)
        check(rc != 0 and "match rule" in err, f"an oversized match rule was accepted: {rc} {err}")
        rc, out, err = tool([*dbus, "AddMatch", "s", "type='signal'"], NOBODY)
        check(rc == 0, f"a match rule was refused: {rc} {err}")
        rc, out, err = tool([*dbus, "GetNameOwner", "s", "com.example.Nobody"], NOBODY)
        check(rc != 0 and "no such name" in err, f"GetNameOwner of an unknown name: {rc} {out} {err}")
        rc, out, err = tool([*dbus, "GetNameOwner", "s", DEST], NOBODY)
        check(rc == 0 and out.strip() == 's ":1.0"', f"GetNameOwner({DEST}): {rc} {out} {err}")
        log("a second Hello, an oversized match rule and an unknown name are refused")
        # Who is behind a name: rpsupd (root here) for its own, in each method's form.
        rpsupd = str(r.proc.pid)
        rc, out, err = tool([*dbus, "GetConnectionUnixUser", "s", DEST], NOBODY)
        check(rc == 0 and out.strip() == "u 0", f"GetConnectionUnixUser({DEST}): {rc} {out} {err}")
        rc, out, err = tool([*dbus, "GetConnectionUnixProcessID", "s", DEST], NOBODY)
        check(rc == 0 and out.strip() == f"u {rpsupd}", f"GetConnectionUnixProcessID({DEST}): {rc} {out} {err}")
        rc, out, err = tool([*dbus, "GetConnectionCredentials", "s", DEST], NOBODY)
        check(rc == 0 and '"UnixUserID" u 0' in out and f'"ProcessID" u {rpsupd}' in out,
              f"GetConnectionCredentials({DEST}): {rc} {out} {err}")
        rc, out, err = tool([*dbus, "GetConnectionUnixUser", "s", "com.example.Nobody"], NOBODY)
        check(rc != 0 and "no such name" in err, f"GetConnectionUnixUser of an unknown name: {rc} {out} {err}")
        log("GetConnectionUnixUser, GetConnectionUnixProcessID and GetConnectionCredentials name rpsupd")

        check(r.status()["service"]["state"] == "running", "rpsupd is not running after the tools")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
