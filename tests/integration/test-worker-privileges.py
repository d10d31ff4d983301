#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Workers keep none of rpsupd's privileges unless their config grants some: with and without User=, a
worker (and an exec readiness probe) runs with empty capability sets, the bounding set included, and with
no_new_privs; CapabilityBoundingSet= and AmbientCapabilities= grant what they name and nothing else, in
the kernel's sets (/proc/PID/status) and in what the worker can do (bind a port below 1024);
NoNewPrivileges=no leaves no_new_privs unset. An unknown capability name is refused with its line, and an
rpsupd that cannot keep its capabilities from its workers (or lacks one to hand on) refuses to start."""

import os
import socket
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPD, Rpsup, check, log, run, wait_until  # noqa: E402

# The system's python3: one under /root (pyenv) cannot be run by another user.
PYTHON = "/usr/bin/python3"
CAP_NET_BIND_SERVICE = 1 << 10
CAP_KILL = 1 << 5

# A worker that answers each connection with what binding 127.0.0.1:80 gives it, on its inherited listener.
BINDER = '''import errno
import socket


def try_bind():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 80))
        return "bound"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()


listener = socket.socket(fileno=3)
while True:
    c, _ = listener.accept()
    c.sendall((try_bind() + "\\n").encode())
    c.close()
'''


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def caps(fields):
    return {k: int(fields[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def ask(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return s.makefile().readline().strip()


def case(name, lines, uid, want, nnp=True, bind=None, groups=None):
    """Starts a service of BINDER workers with the [Service] lines; checks each worker's uid, capability
    sets (want: {"CapBnd": mask, ...}, the others 0), no_new_privs, and what binding port 80 gives."""
    r = Rpsup(name=name, workers=2)
    binder = os.path.join(r.tmp, "binder.py")
    with open(binder, "w") as f:
        f.write(BINDER)
    probe_out = os.path.join(r.tmp, "probe")
    os.mkdir(probe_out)
    os.chmod(probe_out, 0o1777)
    # The exec probe runs as the worker does: it leaves its own sets where the test can read them.
    r.write_config(f"""[Service]
ExecStart={PYTHON} {binder}
Workers=2
Ready=exec
ReadyProbe=exec:/bin/sh -c 'cat /proc/self/status > {probe_out}/$$RPSUP_WORKER'
StopTimeoutSec=5
{lines}

[Socket]
ListenStream=127.0.0.1:{r.port}
""")
    try:
        st = r.start()
        workers = r.live_workers(st)
        check(len(workers) == 2, f"{name}: {len(workers)} live workers")
        expected = {k: want.get(k, 0) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        for w in workers:
            fields = status_fields(w["pid"])
            check(int(fields["Uid"].split()[0]) == uid, f"{name}: worker {w['pid']} runs as Uid {fields['Uid']}")
            got = caps(fields)
            check(got == expected, f"{name}: worker {w['pid']} has {({k: hex(v) for k, v in got.items()})}, "
                  f"expected {({k: hex(v) for k, v in expected.items()})}")
            check(fields["NoNewPrivs"] == ("1" if nnp else "0"),
                  f"{name}: worker {w['pid']} has NoNewPrivs {fields['NoNewPrivs']}")
            if groups is not None:
                got_groups = sorted(int(g) for g in fields["Groups"].split())
                check(got_groups == sorted(set(groups)), f"{name}: worker {w['pid']} has supplementary groups "
                      f"{got_groups}, expected {sorted(set(groups))}")
            probe = os.path.join(probe_out, str(w["slot"]))
            wait_until(lambda: os.path.exists(probe), what=f"{name}: the exec probe of worker {w['slot']}")
            pf = wait_until(lambda: status_fields_file(probe), what=f"{name}: the probe's status")
            check(caps(pf) == expected and pf["NoNewPrivs"] == ("1" if nnp else "0"),
                  f"{name}: the exec probe ran with {({k: hex(v) for k, v in caps(pf).items()})}, NoNewPrivs "
                  f"{pf['NoNewPrivs']}")
        if bind:
            answers = {ask(r.port) for _ in range(4)}
            check(answers == {bind}, f"{name}: binding port 80 in a worker gave {answers}, expected {bind}")
        log(f"{name}: uid {uid}, " + ", ".join(f"{k} {v:#x}" for k, v in expected.items()) +
            f", NoNewPrivs {int(nnp)}" + (f"; port 80: {bind}" if bind else ""))
        r.stop()
    finally:
        r.cleanup()


def status_fields_file(path):
    with open(path) as f:
        text = f.read()
    if "NoNewPrivs" not in text:
        return None  # still being written
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def test():
    nobody = 65534
    own_nnp = status_fields(os.getpid())["NoNewPrivs"] == "1"

    # rpsupd runs as root with every capability: its workers get none of them.
    case("root-default", "", 0, {}, bind="EACCES")
    case("user-default", "User=nobody\nGroup=nogroup", nobody, {}, bind="EACCES",
         groups=os.getgrouplist("nobody", nobody))
    # A user's supplementary groups, as initgroups() gives them (root is in group root; Group= is added).
    case("root-group", "User=root\nGroup=nogroup", 0, {}, bind="EACCES", groups=os.getgrouplist("root", nobody))
    if not own_nnp:
        case("no-nnp", "User=nobody\nGroup=nogroup\nNoNewPrivileges=no", nobody, {}, nnp=False)
    # The bounding set alone: a root worker has what it allows, another user's worker nothing of it.
    case("root-bounding", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", 0,
         {"CapBnd": CAP_NET_BIND_SERVICE, "CapPrm": CAP_NET_BIND_SERVICE, "CapEff": CAP_NET_BIND_SERVICE},
         bind="bound")
    case("user-bounding", "User=nobody\nGroup=nogroup\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_KILL", nobody,
         {"CapBnd": CAP_NET_BIND_SERVICE | CAP_KILL}, bind="EACCES")
    # Ambient capabilities survive the change to another user and execve().
    every = {k: CAP_NET_BIND_SERVICE for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    case("user-ambient", "User=nobody\nGroup=nogroup\nAmbientCapabilities=CAP_NET_BIND_SERVICE", nobody, every,
         bind="bound")
    case("root-ambient", "AmbientCapabilities=CAP_NET_BIND_SERVICE", 0, every, bind="bound")

    # A name the kernel does not know is refused, with the file, the line and the key.
    r = Rpsup(name="badcap")
    try:
        r.write_config(f"""[Service]
ExecStart=/bin/true
User=nobody
CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_BIND_SERVICES

[Socket]
ListenStream=127.0.0.1:{r.port}
""")
        p = subprocess.run([RPSUPD, "--check", "--config", r.config], capture_output=True, text=True, env=r.env())
        want = f'{r.config}:4: CapabilityBoundingSet=: unknown capability "CAP_NET_BIND_SERVICES"'
        check(p.returncode == 1 and want in p.stderr, f"--check exited {p.returncode}: {p.stderr}")
        log(f"--check: {p.stderr.strip()}")

        # An rpsupd that runs as root but cannot empty the bounding set (no CAP_SETPCAP), or lacks an ambient
        # capability it is asked to hand on, says so instead of starting workers with what it has.
        for drop, line, want in (("-setpcap", "", "lacks CAP_SETPCAP"),
                                 ("-net_bind_service", "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
                                  ":3: AmbientCapabilities=: rpsupd does not have CAP_NET_BIND_SERVICE itself")):
            r.write_config(f"[Service]\nExecStart=/bin/true\n{line}[Socket]\nListenStream=127.0.0.1:{r.port}\n")
            p = subprocess.run(["setpriv", f"--bounding-set={drop}", "--inh-caps=-all", RPSUPD, "--check",
                                "--config", r.config], capture_output=True, text=True, env=r.env())
            check(p.returncode == 1 and want in p.stderr, f"--check without {drop[1:]}: {p.returncode}: {p.stderr}")
            log(f"--check without {drop[1:]}: {p.stderr.strip()}")

        # An rpsupd that is not root but holds a capability it hands on needs no CAP_SETPCAP: its workers
        # cannot gain anything from the bounding set under no_new_privs.
        r.write_config(f"[Service]\nExecStart=/bin/true\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
                       f"[Socket]\nListenStream=127.0.0.1:{r.port}\n")
        os.chmod(r.config, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", RPSUPD, "--check",
                            "--config", r.config], capture_output=True, text=True, env=r.env())
        check(p.returncode == 0, f"--check as uid 65534 with CAP_NET_BIND_SERVICE: {p.returncode}: {p.stderr}")
        log("--check as uid 65534 holding CAP_NET_BIND_SERVICE to hand on: OK")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
