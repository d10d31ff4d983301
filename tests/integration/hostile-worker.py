#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A worker that misbehaves on purpose, for the tests: it sends the sd_notify() messages it is told to, in
the order given, and ends on SIGTERM the way it is told to. It never accepts a connection.

  hostile-worker.py [--send MSG]... [--repeat MSG --every SECONDS] [--on-term exit|abort|ignore]

Each --send is one datagram (use \\n inside MSG for several assignments, \\xNN for any byte); "N:MSG" is sent
only by worker N (RPSUP_WORKER). --repeat sends MSG every SECONDS until the worker is ended."""

import argparse
import os
import signal
import socket
import sys
import time


def datagram(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--send", action="append", default=[])
    p.add_argument("--repeat")
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--on-term", choices=("exit", "abort", "ignore"), default="exit")
    a = p.parse_args()

    if a.on_term == "abort":
        signal.signal(signal.SIGTERM, lambda *_: os.abort())
    elif a.on_term == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = os.environ["NOTIFY_SOCKET"]
    if path.startswith("@"):
        path = "\0" + path[1:]
    me = os.environ.get("RPSUP_WORKER")
    for msg in a.send:
        who, sep, rest = msg.partition(":")
        if sep and who.isdigit():
            if who != me:
                continue
            msg = rest
        sock.sendto(datagram(msg), path)
    while True:
        if a.repeat:
            sock.sendto(datagram(a.repeat), path)
            time.sleep(a.every)
        else:
            signal.pause()


if __name__ == "__main__":
    main()
