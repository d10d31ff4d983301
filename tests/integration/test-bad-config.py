#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: (uid_t) -1 passed --check, and Group= alone ran the worker as group 0.
# Regression: a signal glibc reserves for itself was accepted.
# Regression: two spellings of one socket file were two addresses; the second bind replaced the first.
# Regression: --check on a FIFO waited for a writer, forever.
# Regression: a reload after the config was replaced by a FIFO froze rpsupd (no status, no respawn).
"""Malformed configs are refused with FILE:LINE and the key, before any socket is touched. A config that is
not a regular file is refused without blocking, at start and at reload."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPD, WORKER, Failed, Rpsup, check, log, run  # noqa: E402

CASES = [
    # (text, line, what the message must contain)
    ("[Service]\nExecStart={worker}\nWorkers=zero\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "Workers="),
    ("[Service]\nExecStart={worker}\n[Socket]\nListenStream=127.0.0.1:99999\n", 4, "ListenStream="),
    ("[Service]\nExecStart={worker}\nStrategy=fastest\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "Strategy="),
    ("[Service]\nExecStart={worker}\n\n[Socket]\nListenStream=127.0.0.1:{port}\nBacklogg=5\n", 6, "Backlogg="),
    ("[Service]\nExecStart={worker} \"unterminated\n[Socket]\nListenStream=127.0.0.1:{port}\n", 2, "quote"),
    ("[Sevrice]\nExecStart={worker}\n", 1, "unknown section"),
    ("ExecStart={worker}\n", 1, "outside of a section"),
    ("[Service]\nExecStart={worker}\nKillSignal=SIGKILL\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "KillSignal="),
    ("[Service]\nExecStart={worker}\nReadyTimeoutSec=soon\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3,
     "ReadyTimeoutSec="),
    # (uid_t) -1 passed --check, and Group= alone ran the worker as group 0.
    ("[Service]\nExecStart={worker}\nUser=4294967295\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "User="),
    ("[Service]\nExecStart={worker}\nGroup=4294967295\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "Group="),
    ("[Service]\nExecStart={worker}\nGroup=65535\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3, "Group="),
    # A signal glibc reserves for itself was accepted.
    ("[Service]\nExecStart={worker}\nKillSignal=32\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3,
     "reserved by the C library"),
    # Two spellings of one socket file were two addresses; the second bind replaced the first.
    ("[Service]\nExecStart={worker}\n[Socket]\nListenStream={tmp}/s.sock\nListenStream=/{tmp}//s.sock\n", 5,
     "is listed twice (line 4: ListenStream="),
    ("[Service]\nExecStart={worker}\n[Socket]\nListenStream={tmp}/../s.sock\n", 4, "..\""),
    ("[Service]\nExecStart={worker}\nEnvironment=A=caf\xe9\n[Socket]\nListenStream=127.0.0.1:{port}\n", 3,
     "not valid UTF-8"),
]


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test():
    r = Rpsup()
    try:
        for text, line, what in CASES:
            with open(r.config, "w", encoding="latin-1") as f:
                f.write(text.format(worker=WORKER, port=r.port, tmp=r.tmp))
            p = subprocess.run([RPSUPD, "--config", r.config], capture_output=True, text=True, timeout=10,
                               env=r.env())
            log(p.stderr.strip())
            check(p.returncode == 1, f"rpsupd exited {p.returncode} on a bad config, expected 1")
            check(f"{r.config}:{line}:" in p.stderr, f"the error does not name {r.config}:{line}: {p.stderr}")
            check(what in p.stderr, f"the error does not mention {what}: {p.stderr}")
            check(port_is_free(r.port), "rpsupd bound the port although the config is bad")

        # Whole-file errors name the file.
        r.write_config(f"[Service]\nExecStart={WORKER}\n")
        p = subprocess.run([RPSUPD, "--config", r.config], capture_output=True, text=True, env=r.env())
        check(p.returncode == 1 and f"{r.config}:" in p.stderr and "ListenStream" in p.stderr, p.stderr)
        p = subprocess.run([RPSUPD, "--config", r.config + ".missing"], capture_output=True, text=True, env=r.env())
        check(p.returncode == 1 and "No such file" in p.stderr, p.stderr)

        # --check accepts a good config and touches nothing.
        r.write_config(f"[Service]\nExecStart={WORKER}\nWorkers=2\n[Socket]\nListenStream=127.0.0.1:{r.port}\n")
        p = subprocess.run([RPSUPD, "--check", "--config", r.config], capture_output=True, text=True, env=r.env())
        check(p.returncode == 0 and "OK" in p.stdout, f"--check: {p.returncode} {p.stdout} {p.stderr}")
        check(port_is_free(r.port), "--check bound the port")

        # A byte order mark at the start is skipped, as systemd does.
        r.write_config(f"\ufeff[Service]\nExecStart={WORKER}\n[Socket]\nListenStream=127.0.0.1:{r.port}\n")
        p = subprocess.run([RPSUPD, "--check", "--config", r.config], capture_output=True, text=True, env=r.env())
        check(p.returncode == 0 and "OK" in p.stdout, f"--check with a BOM: {p.returncode} {p.stdout} {p.stderr}")

        # Usage errors exit 2.
        p = subprocess.run([RPSUPD], capture_output=True, text=True, env=r.env())
        check(p.returncode == 2, f"rpsupd without a service exited {p.returncode}")

        # A directory says what it is.
        p = subprocess.run([RPSUPD, "--check", "--config", r.tmp], capture_output=True, text=True, env=r.env())
        check(p.returncode == 1 and f"{r.tmp}: is a directory, not a regular file" in p.stderr, p.stderr)

        # --check on a FIFO waited for a writer, forever.
        fifo = os.path.join(r.tmp, "fifo.conf")
        os.mkfifo(fifo)
        t0 = time.monotonic()
        try:
            p = subprocess.run([RPSUPD, "--check", "--config", fifo], capture_output=True, text=True, env=r.env(),
                               timeout=10)
        except subprocess.TimeoutExpired:
            raise Failed("rpsupd --check --config FIFO did not return within 10s")
        log(f"--check on a FIFO: exit {p.returncode} after {time.monotonic() - t0:.3f}s: {p.stderr.strip()}")
        check(p.returncode == 1 and f"{fifo}: is a FIFO, not a regular file" in p.stderr, p.stderr)
    finally:
        r.cleanup()

    reload_after_fifo()


def reload_after_fifo():
    """A reload after the config was replaced by a FIFO froze rpsupd until something wrote to it:
    no status, a killed worker not replaced."""
    r = Rpsup(workers=2)
    try:
        st = r.start()
        victim = r.live_workers(st)[0]
        os.unlink(r.config)
        os.mkfifo(r.config)
        t0 = time.monotonic()
        try:
            rc, out, err = r.ctl("reload", r.name, timeout=10)
        except subprocess.TimeoutExpired:
            raise Failed(f"rpsupctl reload got no answer within 10s:\n{r.diagnose()}")
        log(f"reload with a FIFO as config: exit {rc} after {time.monotonic() - t0:.3f}s: {err.strip()}")
        check(rc == 1, f"reload with a FIFO as config exited {rc}, expected 1: {out} {err}")
        check(f"{r.config}: is a FIFO, not a regular file" in err, f"the error does not say what is wrong: {err}")

        # rpsupd still answers and still supervises.
        st = r.status()
        check(st["service"]["state"] == "running", f"state is {st['service']['state']} after the refused reload")
        check(st["service"]["reloads_refused"] == 1, f"reloads_refused = {st['service']['reloads_refused']}")
        os.kill(victim["pid"], signal.SIGKILL)
        end = time.monotonic() + 15
        while True:
            live = r.live_workers()
            slot = [w for w in live if w["slot"] == victim["slot"]]
            if slot and slot[0]["pid"] not in (0, victim["pid"]) and slot[0]["state"] == "ready":
                break
            check(time.monotonic() < end, f"the killed worker {victim['pid']} was not replaced within 15s: {live}")
            time.sleep(0.05)
        log(f"killed worker {victim['pid']} replaced by {slot[0]['pid']}")
        r.stop()
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
