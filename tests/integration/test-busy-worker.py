#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A worker busy for 3 s with one slow request (it accepts nothing meanwhile, and its accept queue grows)
while new clients that give up after 1 s keep coming: the slow request's client gets the full answer, and
the connections queued for the busy worker are served by the others (none fails). If the busy worker is
judged stalled, it is replaced and ended gently: KillSignal waits until it has answered its request, never
SIGABRT."""

import signal
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, parse_reply, run, wait_until  # noqa: E402
from slowrequest import alive, busy, pending_signals, slow_client  # noqa: E402

BUSY_MS = 3000


def test(strategy):
    r = Rpsup(workers=4, strategy=strategy, worker_args=f"--slow-request {BUSY_MS}")
    try:
        r.start()
        load = Load(r.port, concurrency=4000, extra=("--timeout", "1000", "--rate", "500"))
        slow = None
        try:
            load.wait_answered()
            before = {w["pid"]: w["slot"] for w in r.live_workers()}
            slow = slow_client(r.port)
            t0 = time.monotonic()
            pid = wait_until(lambda: next((p for p in before if busy(p)), None), timeout=2,
                             what="a worker busy with the slow request")
            log(f"worker {before[pid]} (pid {pid}) is busy with the slow request")
            # While it is busy: watch whether it leaves the live generation, and which signals wait for it.
            left_at = None
            seen = set()
            queued_max = 0
            while time.monotonic() - t0 < BUSY_MS / 1000 - 0.2:
                st = r.status()
                mine = [w for w in r.live_workers(st) if w["pid"] == pid]
                if mine:
                    queued_max = max(queued_max, mine[0]["accept_queue"])
                elif left_at is None:
                    left_at = time.monotonic() - t0
                seen |= pending_signals(pid) or set()
                check(alive(pid), f"the busy worker {pid} ended before it answered its request")
                time.sleep(0.05)
            reply = slow.answered_within(BUSY_MS / 1000 + 3)
            answered_at = time.monotonic() - t0
            check(reply is not None, "the slow request got no answer")
            check(parse_reply(reply).get("pid") == str(pid), f"the slow request's answer is not whole: {reply!r}")
            log(f"the slow request was answered in full after {answered_at:.2f} s: {reply}")
            slow.close()
            slow = None
            wait_until(lambda: load.intervals() and load.intervals()[-1]["ok"] > 0, timeout=5,
                       what="the load answered after the slow request")
        finally:
            if slow:
                slow.close()
            report = load.stop()
        log(f"load: {report['ok']} ok, {report['failed']} failed (timeout {report['timeout']}, reset "
            f"{report['reset']}, refused {report['refused']}, eof {report['eof']}); answers by pid: "
            f"{report.get('pids')}")
        st = r.status()
        replaced = left_at is not None
        log(f"busy worker judged stalled and replaced: {'yes, after %.2f s' % left_at if replaced else 'no'} "
            f"(stall replacements {st['service']['stall_replacements']}); the most queued for it in status: "
            f"{queued_max}; signals sent to it while busy: {sorted(s.name for s in seen) or 'none'}")
        for line in r.log().splitlines():
            if f"(pid {pid})" in line:
                log(f"rpsupd: {line}")
        check(report["failed"] == 0, f"{report['failed']} of {report['attempts']} connections failed while a "
              f"worker was busy for {BUSY_MS} ms: {report}")
        check(signal.SIGABRT not in seen, "the busy worker was sent SIGABRT")
        if replaced:
            check(st["service"]["stall_replacements"] >= 1, "the busy worker left without a stall replacement")
            check(signal.SIGTERM in seen, f"the busy worker left the live generation but was not sent KillSignal "
                  f"while busy (pending: {seen})")
            # It ends by itself once its request is answered (it exits 0 on SIGTERM).
            wait_until(lambda: not alive(pid), timeout=5, what=f"the replaced busy worker {pid} ending")
            check(st["service"]["retiring_failures"] == 0, "the busy worker did not end as asked")
            live = r.live_workers()
            check(len(live) == 4 and all(w["state"] == "ready" for w in live), "not every slot has a ready worker")
        check(st["service"]["watchdog_kills"] == 0, "a watchdog kill")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
