#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpsupctl reexec: rpsupd executes its binary as it is on disk now, in the same process, and takes over.

load STRATEGY: 10 reexecs under a client load lose no connection; rpsupd keeps its pid, the workers theirs
(and stay its children: after a reload the old ones are reaped with their exit status, none is counted as a
crash), the listening sockets are the same (inodes); a reload still works afterwards. migrate runs outside
systemd (rpsupd's own copies of its stored fds are all there is), handoff with the harness as systemd.

refuse STRATEGY: the binary on disk is replaced by an rpsupd of another steering map layout (STEER_ABI): it
refuses, executes the running image again, which takes over and reports why (rpsupctl exits 1); then a
binary that is not there (execve fails, nothing changed); then the good binary again, by SIGUSR2; a reexec
during a reload's soak is refused. The load runs throughout without a failed connection.

config STRATEGY: a config on disk that does not load (edited, not reloaded) refuses the reexec with the
parser's message, by rpsupctl and by SIGUSR2, before anything is executed; one that loads but that the new
image cannot run with (Steering=hash under handoff: it fails after its early checks) makes it go back, and
the old image takes over with the config it ran with, not dying on the one on disk; a binary that does not
speak the reexec protocol (one older than reexec would end the workers as orphans) is not executed. Workers,
pid and listeners stay, and the load runs without a failed connection."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPCTL, RPSUPD, Load, Rpsup, check, log, run, wait_until  # noqa: E402
from slowrequest import busy, slow_client  # noqa: E402

ABI_NEXT = os.environ.get("RPSUPD_ABI_NEXT") or os.path.join(os.path.dirname(RPSUPD), "..", "tests", "helpers",
                                                             "rpsupd-abi-next")


def listen_inodes(pid):
    """Inodes of the listening TCP sockets that pid holds."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A":
                        listening.add(int(fields[9]))
        except OSError:
            pass
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = int(target[8:-1])
            if inode in listening:
                held.add(inode)
    return held


def install(src, dst):
    """Replaces dst as a package upgrade does: a new file renamed over the old one."""
    shutil.copy(src, dst + ".new")
    os.chmod(dst + ".new", 0o755)
    os.rename(dst + ".new", dst)


def reexec(r):
    rc, out, err = r.ctl("--json", "reexec", r.name, timeout=90)
    return rc, (json.loads(out) if rc == 0 else None), err


def same_process(r, pid, workers, inodes):
    check(r.proc.poll() is None, f"rpsupd exited:\n{r.log()[-3000:]}")
    st = r.status()
    check(st["service"]["pid"] == pid, f"rpsupd's pid changed: {pid} -> {st['service']['pid']}")
    now = sorted(w["pid"] for w in r.live_workers(st))
    check(now == workers, f"workers changed: {workers} -> {now}")
    check(all(w["state"] == "ready" for w in r.live_workers(st)), "a worker is not ready")
    held = listen_inodes(pid)
    check(held == inodes, f"the listeners changed: {sorted(inodes)} -> {sorted(held)}")
    return st


def drain_across_reexec(r, workers):
    """A reexec while a retired worker drains a request: it goes on draining (its window is carried), is not
    asked to stop meanwhile, and answers."""
    slow = slow_client(r.port)
    drainer = wait_until(lambda: next((w for w in workers if busy(w)), None), timeout=5,
                         what="a worker busy with the slow request")
    rc, _, err = r.reload()
    check(rc == 0, f"reload: {err}")
    rc, _, err = reexec(r)
    check(rc == 0, f"reexec while a worker drains: {err}")
    st = r.status()
    state = next((w["state"] for w in st["workers"] if w["pid"] == drainer), None)
    check(state == "draining", f"the draining worker {drainer} is {state} after the reexec, not draining")
    reply = slow.answered_within(10)
    check(reply is not None, "the request the retired worker was serving got no answer")
    slow.close()


def check_config_refusals(r, pid, workers, inodes, binary):
    with open(r.config) as f:
        good = f.read()
    r.write_config(good.replace("Workers=3", "Workers=three"))
    rc, _, err = reexec(r)
    log(f"broken config: rpsupctl exit {rc}: {err.strip()}")
    check(rc == 1 and "does not load" in err and "Workers=" in err,
          f"a reexec with a broken config on disk: exit {rc}: {err}")
    st = same_process(r, pid, workers, inodes)
    check(st["service"]["reexec_seq"] == 0, "a refused reexec was attempted")
    os.kill(pid, signal.SIGUSR2)
    wait_until(lambda: "Reexec refused: the config on disk does not load" in r.log(), timeout=10,
               what="SIGUSR2 refused for the broken config")
    same_process(r, pid, workers, inodes)

    # Loads (Strategy= left to auto), but the new image cannot run it with handoff, the strategy it takes over:
    # it goes back.
    check("Strategy=handoff" in good, "the test's config does not name the strategy")
    r.write_config(good.replace("Strategy=handoff", "Steering=hash"))
    rc, _, err = reexec(r)
    log(f"config the new image cannot run: rpsupctl exit {rc}: {err.strip()}")
    check(rc == 1 and "Steering=hash cannot run" in err, f"a reexec the new image cannot set up: exit {rc}: {err}")
    st = same_process(r, pid, workers, inodes)
    check(st["service"]["reexecs_failed"] == 1 and st["service"]["reexec_last_failed"],
          "status does not count the failed reexec")
    check("Taking over again with the config this image ran with" in r.log(),
          "the old image did not take over with its running config")

    # A binary without the reexec protocol's marker (here not rpsupd at all) is not executed.
    r.write_config(good)
    install(shutil.which("true"), binary)
    rc, _, err = reexec(r)
    log(f"binary without the protocol: rpsupctl exit {rc}: {err.strip()}")
    check(rc == 1 and "reexec protocol" in err, f"a reexec into a binary without the protocol: exit {rc}: {err}")
    same_process(r, pid, workers, inodes)

    install(RPSUPD, binary)
    rc, _, err = reexec(r)
    check(rc == 0, f"reexec with the config fixed: {err}")
    st = same_process(r, pid, workers, inodes)
    check(st["service"]["reexecs_done"] == 1, "status does not count the reexec done")


def test(mode, strategy):
    r = Rpsup(workers=3, strategy=strategy, worker_args="--slow-request 2500")
    bindir = os.path.join(r.tmp, "bin")
    os.mkdir(bindir)
    binary = os.path.join(bindir, "rpsupd")
    install(RPSUPD, binary)
    try:
        r.start(with_systemd=(mode != "load" or strategy == "handoff"), binary=binary)
        st = r.status()
        pid = r.proc.pid
        workers = sorted(w["pid"] for w in r.live_workers(st))
        inodes = listen_inodes(pid)
        check(inodes, "rpsupd holds no listening socket")
        log(f"rpsupd {pid}, workers {workers}, listeners {sorted(inodes)}")

        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            if mode == "load":
                times = []
                for i in range(10):
                    rc, out, err = reexec(r)
                    check(rc == 0, f"reexec {i + 1} failed ({rc}): {err}\n{r.log()[-3000:]}")
                    times.append(out["duration_usec"] / 1000)
                    st = same_process(r, pid, workers, inodes)
                    check(st["service"]["reexecs_done"] == i + 1 and st["service"]["reexecs_failed"] == 0,
                          f"status counts {st['service']['reexecs_done']} reexecs done after {i + 1}")
                log(f"10 reexecs: {', '.join(f'{t:.1f}' for t in times)} ms")
                # A reexec while a retired worker drains a request: it goes on draining (its window is carried),
                # is not asked to stop meanwhile, and answers.
                done = 10
                if strategy != "handoff":  # handoff stops retired workers at once: nothing drains
                    done += 1
                    drain_across_reexec(r, workers)

                # The taken-over workers are children: a reload retires them, and their exit is seen with its
                # status (a clean exit after KillSignal=, not a crash) and reaped.
                rc, _, err = r.reload("--wait")
                check(rc == 0, f"reload after the reexecs: {err}")
                st = r.status()
                check(st["service"]["retiring_failures"] == 0,
                      f"retired workers counted as crashes: {st['service']['retiring_failures']}")
                for w in workers:
                    wait_until(lambda: not os.path.exists(f"/proc/{w}"), timeout=10,
                               what=f"worker {w} reaped (it is a zombie, or still runs)")
                new = sorted(w["pid"] for w in r.live_workers(st))
                check(len(new) == 3 and not set(new) & set(workers), f"the reload did not replace the workers: {new}")
                check(st["service"]["reexecs_done"] == done, f"status does not count {done} reexecs")
            elif mode == "config":
                check_config_refusals(r, pid, workers, inodes, binary)
            else:
                # Not for everyone: an unprivileged user is refused before anything is done.
                rc, _, err = r.ctl("reexec", r.name, user=65534)
                check(rc == 1 and "not allowed" in err, f"rpsupctl reexec as uid 65534: exit {rc}: {err}")
                st = same_process(r, pid, workers, inodes)
                check(st["service"]["reexec_seq"] == 0, "a refused caller's reexec was attempted")
                log(f"uid 65534: rpsupctl exit {rc}: {err.strip()}")

                install(ABI_NEXT, binary)
                rc, _, err = reexec(r)
                log(f"refusing binary: rpsupctl exit {rc}: {err.strip()}")
                check(rc == 1, f"rpsupctl reexec into a refusing binary exited {rc}, not 1: {err}")
                check("STEER_ABI" in err and "1001" in err, f"the reason does not name the layout: {err}")
                st = same_process(r, pid, workers, inodes)
                check(st["service"]["reexecs_failed"] == 1 and st["service"]["reexecs_done"] == 0,
                      "status does not count the failed reexec")

                os.unlink(binary)
                rc, _, err = reexec(r)
                log(f"no binary: rpsupctl exit {rc}: {err.strip()}")
                check(rc == 1 and "cannot execute" in err and "No such file" in err,
                      f"a reexec into a missing binary: exit {rc}: {err}")
                same_process(r, pid, workers, inodes)

                install(RPSUPD, binary)
                os.kill(pid, signal.SIGUSR2)
                wait_until(lambda: r.status()["service"]["reexecs_done"] == 1, timeout=10,
                           what="the SIGUSR2 reexec")
                st = same_process(r, pid, workers, inodes)
                check(st["service"]["reexec_seq"] == 3 and not st["service"]["reexec_last_failed"],
                      f"after SIGUSR2: attempt {st['service']['reexec_seq']}, failed "
                      f"{st['service']['reexec_last_failed']}")
                # A reload still works, and while it soaks (its caller waits for the answer) a reexec is refused.
                with open(r.config) as f:
                    text = f.read()
                r.write_config(text.replace("SoakSec=0", "SoakSec=30"))
                reload = subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                wait_until(lambda: r.status()["service"]["soak_generation"] == 2, timeout=10, what="the soak")
                rc, _, err = reexec(r)
                check(rc == 1 and "soaking" in err, f"a reexec during a soak: exit {rc}: {err}")
                rc, _, err = r.ctl("promote", r.name)
                check(rc == 0, f"promote: {err}")
                out, err = reload.communicate(timeout=30)
                check(reload.returncode == 0, f"reload after the reexecs: {err}")
            time.sleep(0.3)  # the load runs on after the last change
        finally:
            report = load.stop()
        log(f"load: {report['ok']} ok, {report['failed']} failed")
        check(report["ok"] > 0 and report["failed"] == 0, f"connections failed across the reexecs: {report}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        check(not r.our_processes() - {os.getpid()}, "processes left after the stop")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1], sys.argv[2])
