# SPDX-License-Identifier: LGPL-2.1-or-later
"""A worker busy with one slow request (rpsup-example-worker --slow-request MS), seen from outside: which
worker is busy, and which signals wait for it. The example worker blocks SIGTERM and SIGINT and reads them
from a signalfd, so a stop request sent while it is busy stays pending in the kernel until the request is
answered: /proc shows when it was sent, whatever the worker does with it later."""

import signal

from rpsuptest import PendingClient


def slow_client(port, host="127.0.0.1"):
    """A connection whose request ("SLOW") the worker that takes it answers only after --slow-request MS."""
    return PendingClient(port, host=host, data=b"SLOW\n")


def busy(pid):
    """Whether the worker sleeps in its slow request (not in its event loop)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "nanosleep" in f.read()
    except OSError:
        return False


def pending_signals(pid):
    """The signals sent to pid and not yet taken (blocked ones wait here), or None once it is gone."""
    mask = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    mask |= int(line.split()[1], 16)
    except OSError:
        return None
    pending = set()
    for n in range(1, 65):
        if mask & (1 << (n - 1)):
            try:
                pending.add(signal.Signals(n))
            except ValueError:  # a real-time signal
                pass
    return pending


def alive(pid):
    """Running or stopped, not gone (a zombie is gone: it ended and waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
