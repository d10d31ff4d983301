#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Malformed configs are refused with FILE:LINE and the key, before any socket is touched."""

import socket
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPD, WORKER, Rpsup, check, log, run  # noqa: E402

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
            r.write_config(text.format(worker=WORKER, port=r.port))
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

        # Usage errors exit 2.
        p = subprocess.run([RPSUPD], capture_output=True, text=True, env=r.env())
        check(p.returncode == 2, f"rpsupd without a service exited {p.returncode}")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
