#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A retired worker (by a reload, by a scale-in, and by the service stopping) with one open 10 s request is
asked to stop (KillSignal) only once the request is answered, or at the drain deadline if that comes first.
One service per case, side by side: DrainSec=30 (the request ends first: the worker is signalled after it,
its pid alive all along, and the client gets the full answer) and DrainSec=3 (the deadline comes first: the
worker is signalled 3 s after it retired, while the request still runs). A stopping rpsupd exits once its
worker is gone; asked to stop a second time, it asks the draining worker to stop at once."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, parse_reply, request, run, wait_until  # noqa: E402
from slowrequest import alive, busy, pending_signals, slow_client  # noqa: E402

REQUEST_MS = 10000
DRAIN_LONG = 30  # the request (10 s) ends first
DRAIN_SHORT = 3  # the deadline comes first


class Case:
    def __init__(self, retirement, drain, strategy):
        self.retirement, self.drain = retirement, drain
        self.name = f"{retirement}, DrainSec={drain}"
        # StopTimeoutSec= outlasts the request: a worker signalled at the deadline may still answer it.
        self.r = Rpsup(workers=2 if retirement == "scale-in" else 1, strategy=strategy,
                       worker_args=f"--slow-request {REQUEST_MS}",
                       extra_service=f"DrainSec={drain}\nStopTimeoutSec=15")
        self.pid = self.client = None
        self.reply = self.answered_at = self.signalled_at = self.gone_at = None
        self.signals = set()
        self.t_again = None
        self.exited_at = None

    def start(self):
        """Starts the service, puts the slow request on the worker that retires, and retires it."""
        r = self.r
        r.start()
        target = max(r.live_workers(), key=lambda w: w["slot"])  # a scale-in retires the highest slot
        # Steering takes turns per CPU: from one CPU, the connection after one answered by the other
        # worker goes to the target. Requests go until the target is the one busy (at most a few).
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        if len(r.live_workers()) > 1:
            wait_until(lambda: parse_reply(request(r.port))["worker"] != str(target["slot"]), timeout=5,
                       what="an answer from the worker that stays")
        self.others = []  # pids of workers that took a slow request meant for the target (busy with it)
        for _ in range(3):
            client = slow_client(r.port)
            self.t_sent = time.monotonic()
            pid = wait_until(lambda: next((w["pid"] for w in r.live_workers()
                                           if busy(w["pid"]) and w["pid"] not in self.others), None),
                             timeout=2, what="a worker busy with the slow request")
            if pid == target["pid"]:
                break
            self.others.append(pid)
            client.close()
        check(pid == target["pid"], f"{self.name}: the slow request did not reach the worker that retires")
        self.pid, self.client = pid, client
        self.reader = threading.Thread(target=self.read_reply, daemon=True)
        self.reader.start()
        if self.retirement.startswith("stop"):
            r.proc.send_signal(signal.SIGTERM)
            self.t_retired = time.monotonic()
            return
        rc, out, err = r.reload() if self.retirement == "reload" else r.scale(1)
        self.t_retired = time.monotonic()
        check(rc == 0, f"{self.name}: {self.retirement} failed ({rc}): {err}")

    def stop_again(self):
        """stop-twice: the second SIGTERM, 1 s after the first."""
        if self.retirement == "stop-twice" and self.t_again is None and time.monotonic() > self.t_retired + 1:
            self.r.proc.send_signal(signal.SIGTERM)
            self.t_again = time.monotonic()

    def read_reply(self):
        self.reply = self.client.answered_within(REQUEST_MS / 1000 + 20)
        self.answered_at = time.monotonic()
        self.client.close()

    def watch(self):
        """One look: which signals wait for the worker, and whether it is still there. Returns whether this
        case is over (answered, and the worker gone)."""
        self.stop_again()
        now = time.monotonic()
        if self.exited_at is None and self.r.proc.poll() is not None:
            self.exited_at = now
        if self.gone_at is None:
            sigs = pending_signals(self.pid) or set()
            self.signals |= sigs
            if signal.SIGTERM in sigs and self.signalled_at is None:
                self.signalled_at = now
            if not alive(self.pid):
                self.gone_at = now
        stopping = self.retirement.startswith("stop")
        return self.gone_at is not None and self.answered_at is not None and (not stopping or self.exited_at)

    def since(self, t):
        return f"{t - self.t_retired:.2f} s" if t is not None else "never"

    def report(self):
        since = self.since
        log(f"{self.name}: request sent {self.t_sent - self.t_retired:+.2f} s from the retirement; KillSignal "
            f"seen pending {since(self.signalled_at)}, answered {since(self.answered_at)} ({self.reply!r}), "
            f"worker gone {since(self.gone_at)} after the retirement"
            + (f", rpsupd exited {since(self.exited_at)}" if self.exited_at is not None else ""))

    def verdict(self):
        since = self.since
        check(signal.SIGABRT not in self.signals and signal.SIGKILL not in self.signals,
              f"{self.name}: the worker was sent {self.signals}")
        request_end = self.t_sent + REQUEST_MS / 1000
        if self.retirement.startswith("stop"):
            check(self.exited_at is not None and self.exited_at >= self.gone_at - 0.1,
                  f"{self.name}: rpsupd exited {since(self.exited_at)} after SIGTERM, before its worker was gone "
                  f"({since(self.gone_at)})")
            check(self.r.proc.returncode == 0, f"{self.name}: rpsupd exited {self.r.proc.returncode} on SIGTERM")
        if self.retirement == "stop-twice":
            check(self.signalled_at is not None and self.signalled_at < self.t_again + 1,
                  f"{self.name}: the worker was not asked to stop at the second SIGTERM ({since(self.t_again)}): "
                  f"signal seen {since(self.signalled_at)}")
        elif self.drain == DRAIN_LONG:
            # KillSignal once idle, after the answer, is what is asked for (the watch may or may not see it).
            check(self.signalled_at is None or (self.answered_at is not None and self.signalled_at >= self.answered_at),
                  f"{self.name}: the worker was signalled {since(self.signalled_at)} after it retired, while its "
                  f"request still ran (answered {since(self.answered_at)})")
            check(self.reply is not None and parse_reply(self.reply).get("pid") == str(self.pid),
                  f"{self.name}: the long request's client did not get the full answer: {self.reply!r}")
            gone = f"gone {since(self.gone_at)}" if self.gone_at is not None else "still there"
            check(self.gone_at is not None and self.gone_at < self.answered_at + 3,
                  f"{self.name}: the worker, idle from {since(self.answered_at)} after it retired, was {gone} "
                  "(expected: gone within 3 s of its answer): it was not signalled once its request was answered")
        else:
            check(self.signalled_at is not None and self.signalled_at < request_end - 0.5,
                  f"{self.name}: the worker was not signalled at its drain deadline while its request ran "
                  f"(signal seen {since(self.signalled_at)})")
            check(self.signalled_at - self.t_retired > DRAIN_SHORT - 0.5,
                  f"{self.name}: signalled {since(self.signalled_at)} after it retired, before its drain "
                  f"deadline ({DRAIN_SHORT} s)")


def test(strategy):
    cases = [Case(retirement, drain, strategy) for retirement in ("reload", "scale-in", "stop")
             for drain in (DRAIN_LONG, DRAIN_SHORT)] + [Case("stop-twice", DRAIN_LONG, strategy)]
    affinity = os.sched_getaffinity(0)
    try:
        for c in cases:
            c.start()
        os.sched_setaffinity(0, affinity)
        wait_until(lambda: all([c.watch() for c in cases]), timeout=REQUEST_MS / 1000 + 10, interval=0.02)
        for c in cases:
            c.report()
        for c in cases:
            c.verdict()
        for c in cases:
            check(c.r.stop() == 0, f"{c.name}: rpsupd did not exit 0 on SIGTERM")
    finally:
        os.sched_setaffinity(0, affinity)
        for c in cases:
            c.r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
