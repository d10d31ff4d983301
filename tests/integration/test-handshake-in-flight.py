#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Handshakes in flight (the clients' final ACKs held back by XDP on lo, so the server side is a request
socket) are answered after a reload retires their listener, and after a scale-in does, once the ACKs flow
again. The ACKs are held until the retired workers are gone (they are idle, so they are asked to stop at
once): with drain and migrate the listener is shut down then, and the kernel moves the handshakes to the live
generation (the BPF counters and the kernel's TCPMigrateReqSuccess say so); handoff never closes it."""

import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import (PendingClient, Rpsup, check, handshakes_in_flight, hold_acks, log, run,  # noqa: E402
                       tcp_counters, wait_until)

N = 10


def held_clients(r):
    hold = hold_acks(r.port)
    clients = [PendingClient(r.port) for _ in range(N)]
    wait_until(lambda: handshakes_in_flight(r.port) >= N, timeout=5)
    in_flight = handshakes_in_flight(r.port)
    log(f"{in_flight} handshakes in flight on the server side")
    check(in_flight >= N, f"only {in_flight} of {N} handshakes are in flight: the ACKs were not held")
    for c in clients:
        check(c.answered_within(0.01) is None, "a held connection was answered")
    return hold, clients


def all_answered(clients, what):
    for i, c in enumerate(clients):
        reply = c.answered_within(15)
        check(reply is not None, f"handshake {i} in flight was lost across the {what}")
        c.close()


def migrated(r):
    return sum(w["migrated_request_ack"] + w["migrated_request_timer"] for w in r.status()["workers"])


def gone(r, pids):
    return not any(w["pid"] in pids for w in r.status()["workers"])


def test(strategy):
    r = Rpsup(workers=2, strategy=strategy, extra_service="DrainSec=10" if strategy == "drain" else "")
    try:
        r.start()

        # Reload: generation 1's listeners retire while the handshakes are in flight.
        before = tcp_counters()
        hold, clients = held_clients(r)
        old = {w["pid"] for w in r.live_workers()}
        rc, out, err = r.reload()
        check(rc == 0, f"reload failed: {err}")
        wait_until(lambda: gone(r, old), timeout=15, what="generation 1's workers to exit")
        log(f"released: {hold.release()}")
        all_answered(clients, "reload")
        after = tcp_counters()
        moved = after.get("TCPMigrateReqSuccess", 0) - before.get("TCPMigrateReqSuccess", 0)
        log(f"reload: all {N} answered; kernel migrated {moved}, BPF counted {migrated(r)} migrated requests")
        if strategy != "handoff":
            check(moved >= N, f"the kernel migrated {moved} requests, expected {N}")
            check(migrated(r) >= N, f"the steering program counted {migrated(r)} migrated requests")
        check(after.get("TCPMigrateReqFailure", 0) == before.get("TCPMigrateReqFailure", 0),
              "the kernel failed to migrate some requests")

        # Scale-in: slot 1's listener retires while the handshakes are in flight.
        rc, out, err = r.scale(3)
        check(rc == 0, f"scale to 3 failed: {err}")
        hold, clients = held_clients(r)
        old = {w["pid"] for w in r.live_workers() if w["slot"] >= 1}
        rc, out, err = r.scale(1)
        check(rc == 0, f"scale to 1 failed: {err}")
        wait_until(lambda: gone(r, old), timeout=15, what="the scaled-in workers to exit")
        log(f"released: {hold.release()}")
        all_answered(clients, "scale-in")
        log(f"scale-in: all {N} answered")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
