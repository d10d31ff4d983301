#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: a call that came with BEGIN stayed unanswered until the client sent more.
"""A client that sends its first call in the same write as the authentication (AUTH ... BEGIN) gets its
answer at once, as does one that sends several calls in one write."""

import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

CLIENTS = 20


def test():
    r = Rpsup(workers=2)
    try:
        r.start()
        path = rawdbus.control_path(r)

        # A call that came with BEGIN stayed unanswered until the client sent more.
        clients, sent = [], []
        for i in range(CLIENTS):
            c = rawdbus.Client(path)
            member = ("GetStatus", "ListWorkers", "Probe", "GetMetrics")[i % 4]
            c.send(rawdbus.auth() + c.call_bytes(member))
            clients.append((c, member))
            sent.append(time.monotonic())
        answered, slowest = 0, 0.0
        for (c, member), t in zip(clients, sent):
            c.read_auth()
            try:
                m = c.read_message(deadline=t + 1.0)
            except (TimeoutError, OSError) as e:
                log(f"{member}: no answer within 1 s ({e})")
                continue
            check(m["type"] == rawdbus.METHOD_RETURN and m.get("reply_serial") == 1,
                  f"{member} was answered with {m}")
            answered += 1
            slowest = max(slowest, time.monotonic() - t)
        log(f"{answered} of {CLIENTS} pipelined first calls answered within 1 s (slowest {slowest * 1000:.1f} ms)")
        check(answered == CLIENTS, f"only {answered} of {CLIENTS} pipelined first calls were answered within 1 s")

        # Several calls in one write, the first with BEGIN: all answered, in order.
        c2 = rawdbus.Client(path)
        burst = rawdbus.auth() + b"".join(c2.call_bytes(m) for m in ("GetStatus", "ListGenerations", "ListListeners",
                                                                      "GetStatus"))
        t = time.monotonic()
        c2.send(burst)
        c2.read_auth()
        for serial in range(1, 5):
            m = c2.read_message(deadline=t + 1.0)
            check(m["type"] == rawdbus.METHOD_RETURN and m.get("reply_serial") == serial,
                  f"call {serial} of a burst was answered with {m}")

        # The state-changing kind too, as root: Scale to the same count answers at once.
        c3 = rawdbus.Client(path)
        t = time.monotonic()
        c3.send(rawdbus.auth() + c3.call_bytes("Scale", signature="u", body=(2).to_bytes(4, "little")))
        c3.read_auth()
        m = c3.read_message(deadline=t + 1.0)
        check(m["type"] == rawdbus.METHOD_RETURN, f"a pipelined Scale(2) was answered with {m}")

        for c, _ in clients:
            c.close()
        c2.close()
        c3.close()
        check(r.status()["service"]["state"] == "running", "rpsupd is not running")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
