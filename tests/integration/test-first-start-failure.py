#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: a failed first start freed the generation under the code failing it (use-after-free, SIGSEGV).
"""A first generation that cannot start ends rpsupd with exit status 1 and one error that names the cause,
whatever the cause: a worker that exits before it is ready, one that cannot be executed, a port that
another process holds."""

import os
import socket
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import WORKER, Failed, Rpsup, check, log, run  # noqa: E402


def start_fails(r, cause):
    """rpsupd exits 1 on its own, logging one error, which names the cause."""
    r.start(wait=False)
    try:
        rc = r.proc.wait(timeout=20)
    except Exception:
        raise Failed(f"rpsupd did not exit within 20s of a failed start:\n{r.diagnose()}")
    text = r.log()
    log(text.strip().replace("\n", "\n# "))
    r.check_log()
    errors = [line for line in text.splitlines() if ": error: " in line]
    check(rc == 1, f"rpsupd exited {rc}, expected 1")
    check(len(errors) == 1, f"expected one error, got {len(errors)}: {errors}")
    check(cause in errors[0], f"the error does not name the cause ({cause!r}): {errors[0]}")
    check(text.count("Generation 1 is gone") <= 1, "generation 1 was freed twice")
    check(r.our_processes() <= {r.proc.pid}, f"workers left behind: {r.our_processes()}")


def test():
    # The only worker exits before it is ready (ExecStart=/bin/false).
    r = Rpsup(workers=1)
    try:
        r.write_config(open(r.config).read().replace(f"ExecStart={WORKER} ", "ExecStart=/bin/false"))
        start_fails(r, "exited with status 1 before it was ready")
    finally:
        r.cleanup()

    # Several workers that cannot be executed: the program is there, its interpreter is not.
    r = Rpsup(workers=3)
    try:
        broken = os.path.join(r.tmp, "broken-worker")
        with open(broken, "w") as f:
            f.write("#!/nonexistent/interpreter\n")
        os.chmod(broken, 0o755)
        r.write_config(open(r.config).read().replace(f"ExecStart={WORKER} ", f"ExecStart={broken}"))
        start_fails(r, f"could not execute {broken}")
    finally:
        r.cleanup()

    # Strategy=migrate, and another process holds the port (no SO_REUSEPORT): the listeners cannot be made.
    r = Rpsup(workers=2, strategy="migrate")
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", r.port))
        holder.listen()
        start_fails(r, "Address already in use")
    finally:
        holder.close()
        r.cleanup()


if __name__ == "__main__":
    run(test)
