#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What workers start goes with them. A worker that forks 200 children and double-forks a daemon that keeps
answering on the service's port: after a reload, nothing of the old generation is left; after a crash of
the worker, nothing of what it left; after the stop, no process of the service at all, and nothing
answers on the port. rpsupd runs in the "supervisor" leaf of its cgroup subtree, each worker in
gen-G/worker-I.N, and status shows each generation's CPU time. Without cgroups (RPSUP_CGROUP=no), the
worker's process group goes with it: its children do, a daemon that made a session of its own does not."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Rpsup, check, log, run, wait_until  # noqa: E402

CHILDREN = 200

# The daemon: a copy of the listener (fd 3), answering every connection with "daemon", in a session of
# its own, its parent gone (double fork).
DAEMON = textwrap.dedent("""
    import select, socket
    s = socket.socket(fileno=3)  # non-blocking: the flag is the worker's too
    while True:
        select.select([s], [], [])
        try:
            c, _ = s.accept()
        except BlockingIOError:
            continue
        c.sendall(b"daemon\\n")
        c.close()
""")


def cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line.strip()[3:] for line in f if line.startswith("0::"))


def worker_script(r):
    path = os.path.join(r.tmp, "forking-worker.sh")
    with open(os.path.join(r.tmp, "daemon.py"), "w") as f:
        f.write(DAEMON)
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            #!/bin/sh
            i=0
            while [ $i -lt {CHILDREN} ]; do sleep 100000 & i=$((i + 1)); done
            (setsid {sys.executable} {r.tmp}/daemon.py 3<&3 </dev/null >/dev/null 2>&1 &)
            echo $$ >> {r.tmp}/workers
            exec {WORKER} "$@"
            """))
    os.chmod(path, 0o755)
    return path


def processes_of(r, exclude=()):
    return r.our_processes() - {r.proc.pid} - set(exclude)


def daemons(r):
    out = set()
    for pid in r.our_processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"daemon.py" in f.read():
                    out.add(pid)
        except OSError:
            pass
    return out


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"hello\n")
            return s.recv(100)
    except OSError:
        return None


def test_cgroups():
    r = Rpsup(name="forking", workers=1)
    r.write_config(open(r.config).read().replace(f"ExecStart={WORKER}", f"ExecStart={worker_script(r)}"))
    try:
        r.start()
        check(wait_until(lambda: len(processes_of(r)) >= CHILDREN + 2, timeout=20),
              f"the worker's children did not start: {len(processes_of(r))} processes")
        gen1 = processes_of(r)
        worker = r.live_workers()[0]["pid"]
        own, wcg = cgroup_of(r.proc.pid), cgroup_of(worker)
        log(f"rpsupd in {own}, worker in {wcg}, {len(gen1)} processes of generation 1")
        check(own.endswith("/supervisor"), f"rpsupd is not in its supervisor leaf: {own}")
        tree = own[: -len("/supervisor")]
        check(wcg.startswith(tree + "/gen-1/worker-0."), f"the worker is not in its generation's cgroup: {wcg}")
        check(all(cgroup_of(p) == wcg for p in daemons(r)), "the daemon is not in its worker's cgroup")
        # rpsupctl fds: the double-forked daemon holds the worker's listener; its cgroup says whose it is.
        rc, out, err = r.ctl("--json", "fds", r.name)
        check(rc == 0, f"rpsupctl fds exited {rc}: {err}")
        report = json.loads(out)
        holders = {h["pid"]: h for sock in report["sockets"] for h in sock["holders"]}
        for pid in daemons(r):
            check(pid in holders and holders[pid]["holder"] == "worker-descendant" and holders[pid]["expected"] and
                  holders[pid]["worker_pid"] == worker, f"rpsupctl fds does not see daemon {pid} as the worker's: "
                  f"{holders.get(pid)}")
        check(report["unexpected"] == 0, f"rpsupctl fds flags {report['unexpected']} holders as unexpected")

        rc, out, err = r.reload()
        check(rc == 0, f"reload failed: {err}")
        check(wait_until(lambda: not (gen1 & r.our_processes()), timeout=10),
              f"{len(gen1 & r.our_processes())} processes of generation 1 are left after the reload")
        check(wait_until(lambda: len(processes_of(r)) >= CHILDREN + 2, timeout=20), "generation 2 did not start")
        check(not os.path.exists(f"/sys/fs/cgroup/unified{tree}/gen-1") and
              not os.path.exists(f"/sys/fs/cgroup{tree}/gen-1"), "generation 1's cgroup is left")
        st = r.status()
        gens = {g["id"]: g for g in st["generations"]}
        check(gens[2].get("cpu_usec", 0) > 0, f"status shows no CPU time for generation 2: {gens[2]}")
        log(f"generation 2: {gens[2].get('cpu_usec')} µs of CPU, memory {gens[2].get('memory_bytes')}")

        # A crash: what the worker left goes; its restart starts anew in a cgroup of its own.
        before = processes_of(r)
        victim = r.live_workers()[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        check(wait_until(lambda: not (before & r.our_processes()), timeout=10),
              f"{len(before & r.our_processes())} processes of the crashed worker are left")
        check(wait_until(lambda: r.live_workers() and r.live_workers()[0]["pid"] != victim and
                         r.live_workers()[0]["state"] == "ready", timeout=15), "the crashed worker was not replaced")
        check(cgroup_of(r.live_workers()[0]["pid"]) != cgroup_of(r.proc.pid), "the restarted worker has no cgroup")
        check(wait_until(lambda: len(daemons(r)) == 1, timeout=10), "the restarted worker's daemon did not start")
    finally:
        rc = r.stop()
        # SIGKILL was sent before rpsupd exited; the processes go a moment later.
        wait_until(lambda: not r.our_processes(), timeout=5)
        left = r.our_processes()
        rlog = r.log()
        r.cleanup()
    check(rc == 0, f"rpsupd exited with {rc}:\n{rlog[-3000:]}")
    check(not left, f"{len(left)} processes of the service are left after the stop")
    check(answers(r.port) is None, "something still answers on the service's port after the stop")
    log(f"after the stop: 0 processes, nothing answers on port {r.port}; the subtree is removed: "
        f"{not os.path.exists('/sys/fs/cgroup/unified' + tree) and not os.path.exists('/sys/fs/cgroup' + tree)}")
    check(not os.path.exists("/sys/fs/cgroup/unified" + tree) and not os.path.exists("/sys/fs/cgroup" + tree),
          f"the cgroup subtree {tree} is left after the stop:\n{rlog[-3000:]}")


def test_process_groups():
    r = Rpsup(name="forkingpg", workers=1)
    r.write_config(open(r.config).read().replace(f"ExecStart={WORKER}", f"ExecStart={worker_script(r)}"))
    os.environ["RPSUP_CGROUP"] = "no"
    try:
        r.start()
        check(wait_until(lambda: len(processes_of(r)) >= CHILDREN + 2, timeout=20), "the worker's children did not start")
        check(cgroup_of(r.live_workers()[0]["pid"]) == cgroup_of(r.proc.pid), "RPSUP_CGROUP=no still made cgroups")
        escaped = daemons(r)
    finally:
        del os.environ["RPSUP_CGROUP"]
        r.stop()
        wait_until(lambda: r.our_processes() <= escaped, timeout=5)
        left = r.our_processes()
        for pid in left & escaped:
            os.kill(pid, signal.SIGKILL)
        r.cleanup()
    check(left == escaped, f"without cgroups, {len(left - escaped)} processes of the worker's group are left")
    log(f"without cgroups: the worker's {CHILDREN} children went with it; the daemon in a session of its own "
        f"({len(escaped)}) did not, as documented")


def cgroup2_mount():
    for m in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(m + "/cgroup.procs") and os.path.exists(m + "/cgroup.kill") or \
                os.path.exists(m + "/cgroup.subtree_control"):
            return m
    return None


def test_not_delegated():
    """rpsupd under some other unit (INVOCATION_ID inherited) in a cgroup systemd did not delegate to it
    (no trusted.delegate xattr): it leaves that cgroup and the other processes in it alone."""
    mount = cgroup2_mount()
    cg = os.path.join(mount, f"rpsup-test-other-{os.getpid()}.service")
    os.mkdir(cg)
    sibling = subprocess.Popen(["sleep", "1000"])
    r = Rpsup(name="guest", workers=1)
    own = cgroup_of(os.getpid())
    try:
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(sibling.pid))
        os.environ["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))  # rpsupd starts in it
        try:
            r.start()
        finally:
            with open(os.path.join(mount + own, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            del os.environ["INVOCATION_ID"]
        worker = r.live_workers()[0]["pid"]
        check(cgroup_of(r.proc.pid) == cg[len(mount):], f"rpsupd moved in a cgroup not delegated to it: "
              f"{cgroup_of(r.proc.pid)}")
        check(cgroup_of(worker) == cg[len(mount):], f"a worker went into a cgroup of its own: {cgroup_of(worker)}")
        check(sibling.poll() is None, "the other process in the unit's cgroup was ended")
        check("is not delegated" in r.log(), f"rpsupd did not say why it uses no cgroups:\n{r.log()}")
        r.stop()
        check(sibling.poll() is None, "the other process in the unit's cgroup was ended at the stop")
        log("in a cgroup not delegated to it: rpsupd made no cgroups and left the other process alone")
    finally:
        sibling.kill()
        sibling.wait()
        r.stop()
        r.cleanup()
        os.rmdir(cg)


def test():
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs") and not os.path.exists("/sys/fs/cgroup/cgroup.procs"):
        from rpsuptest import skip_or_fail
        skip_or_fail("no cgroup2 hierarchy")
    test_cgroups()
    test_process_groups()
    test_not_delegated()


if __name__ == "__main__":
    run(test)
