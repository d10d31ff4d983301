#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Balance figures, per worker, in `rpsupctl --json status` and in the metrics: 4 workers (migrate, a TCP
readiness probe) take a known number of connections; each worker's count over the last minute is what the
steering program steered to it, they sum to what was sent (probe connections left out), and the imbalance
(max/min) and coefficient of variation are those of the counts. A stopped worker's queue fills while
nothing asks rpsupd: its accept-queue high-water mark shows it afterwards (the queue is watched), stays
after the queue is drained, is in the next scrape, and is reset by it; marks are kept per scraping uid, so
an unprivileged user's scrape neither resets root's nor is reset by it. With its small backlog full, the
namespace's ListenOverflows shows up next to the figures."""

import math
import os
import signal
import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import PendingClient, Rpsup, check, log, prometheus_parser, request, run, wait_until  # noqa: E402

WORKERS = 4
SENT = 200
BACKLOG = 4


def metrics(r, user=None):
    rc, out, err = r.ctl("metrics", r.name, timeout=10, user=user)
    check(rc == 0, f"rpsupctl metrics{' as uid ' + str(user) if user else ''} failed with {rc}: {err}")
    samples = {}
    for family in prometheus_parser()(out):
        for s in family.samples:
            samples[(s.name,) + tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))] = s.value
    return samples


def per_slot(samples, name, generation):
    return {int(dict(k[1:])["slot"]): v for k, v in samples.items()
            if k[0] == name and dict(k[1:]).get("generation") == str(generation)}


def figures(counts):
    """max/min (-1: a count is 0 while another is not; 0: none) and the coefficient of variation."""
    if sum(counts) == 0:
        return 0.0, 0.0
    mean = sum(counts) / len(counts)
    cv = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts)) / mean
    return (max(counts) / min(counts) if min(counts) > 0 else -1.0), cv


def test():
    r = Rpsup(workers=WORKERS, strategy="migrate",
              # StallSec=0: the stopped worker below stays (stall detection would replace it).
              extra_service="StallSec=0\nReadyProbe=tcp\nReadyProbePasses=2",
              extra_socket=f"Backlog={BACKLOG}")
    clients = []
    stopped = None
    try:
        r.start()
        st = r.status()
        svc = st["service"]
        live = svc["live_generation"]
        check(svc["balance_counted"], f"new connections are not counted per worker: {svc['balance_note']}")
        check(svc["balance_connections_last_minute"] == 0, f"counted before any connection: {svc}")
        check(svc["balance_imbalance"] == 0 and svc["balance_cv"] == 0, "figures before any connection")

        # 1. Known traffic: the last minute's counts are the program's, and sum to what was sent.
        for _ in range(SENT):
            request(r.port)
        st = r.status()
        svc = st["service"]
        workers = r.live_workers(st)
        counts = [w["connections_last_minute"] for w in workers]
        log(f"last minute per worker: {counts}, syns {[w['syns'] for w in workers]}")
        check(sum(counts) == SENT, f"the workers' last-minute counts sum to {sum(counts)}, {SENT} were sent")
        check(counts == [w["syns"] for w in workers], "the last minute's counts are not what the program steered")
        check(svc["balance_workers"] == WORKERS, f"balance over {svc['balance_workers']} workers")
        check(svc["balance_connections_last_minute"] == SENT, "the service's total is not the workers' sum")
        check((svc["balance_min_last_minute"], svc["balance_max_last_minute"]) == (min(counts), max(counts)),
              "min/max are not those of the counts")
        imbalance, cv = figures(counts)
        check(abs(svc["balance_imbalance"] - imbalance) < 1e-9, f"imbalance {svc['balance_imbalance']}, "
              f"counts give {imbalance}")
        check(abs(svc["balance_cv"] - cv) < 1e-9, f"CV {svc['balance_cv']}, counts give {cv}")

        m = metrics(r)
        check(per_slot(m, "rpsup_worker_connections_last_minute", live) ==
              {w["slot"]: float(w["connections_last_minute"]) for w in workers},
              "the metrics' per-minute counts are not the status'")
        check(abs(m[("rpsup_balance_imbalance",)] - imbalance) < 1e-4, "rpsup_balance_imbalance")
        check(abs(m[("rpsup_balance_cv",)] - cv) < 1e-4, "rpsup_balance_cv")
        rc, out, _ = r.ctl("status", r.name)
        check(rc == 0 and f"{SENT} new connections in the last minute over {WORKERS} workers" in out,
              f"rpsupctl status does not show the balance:\n{out}")

        # 2. A worker that does not accept: its queue fills, while nobody asks rpsupd anything.
        target = workers[0]
        stopped = target["pid"]
        os.kill(stopped, signal.SIGSTOP)
        clients = [PendingClient(r.port) for _ in range(2 * WORKERS)]
        answers = {}

        def unanswered():
            for i, c in enumerate(clients):
                if i not in answers:
                    reply = c.answered_within(0.02)
                    if reply:
                        answers[i] = reply
            return len(clients) - len(answers)
        # Those of the other workers are answered; the stopped one's wait in its queue.
        waiting = wait_until(lambda: (lambda n: n if 0 < n < len(clients) else None)(unanswered()),
                             what="the running workers' answers")
        # The queue is sampled within 1 s of a connection (the watch rests 1 s after it woke rpsupd): the
        # window in which a queue that stays is always seen.
        time.sleep(1.5)
        waiting = unanswered()
        log(f"{waiting} connections wait for the stopped worker")
        check(waiting > 0, "the stopped worker's connections were answered")
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        wait_until(lambda: unanswered() == 0 or None, what="the resumed worker's answers")
        st = r.status()
        w = [x for x in r.live_workers(st) if x["slot"] == target["slot"]][0]
        check(w["accept_queue"] == 0, f"the resumed worker's queue is at {w['accept_queue']}")
        check(1 <= w["accept_queue_high_water"] <= waiting,
              f"high-water mark {w['accept_queue_high_water']}: {waiting} connections waited in the queue")
        # Any local user may scrape: an unprivileged uid that never did gets the mark, and resets only its own.
        other = per_slot(metrics(r, user=65534), "rpsup_worker_accept_queue_high_water", live)
        check(other[target["slot"]] == w["accept_queue_high_water"], f"uid 65534's high-water marks {other}")
        other = per_slot(metrics(r, user=65534), "rpsup_worker_accept_queue_high_water", live)
        check(set(other.values()) == {0}, f"uid 65534's scrape did not reset its own marks: {other}")
        st = r.status()
        w = [x for x in r.live_workers(st) if x["slot"] == target["slot"]][0]
        check(w["accept_queue_high_water"] >= 1, "uid 65534's scrape reset root's high-water mark")
        m = metrics(r)
        scraped = per_slot(m, "rpsup_worker_accept_queue_high_water", live)
        check(scraped[target["slot"]] == w["accept_queue_high_water"], f"scraped high-water marks {scraped}")
        st = r.status()
        marks = {x["slot"]: x["accept_queue_high_water"] for x in r.live_workers(st)}
        check(all(v == 0 for v in marks.values()), f"the high-water marks after the scrape: {marks}")
        m = metrics(r)
        check(set(per_slot(m, "rpsup_worker_accept_queue_high_water", live).values()) == {0},
              "the next scrape still shows a high-water mark")
        for c in clients:
            c.close()
        clients = []

        # 3. The stopped worker's queue overflows (backlog 4): ListenOverflows, next to the figures.
        before = st["service"]["listen_overflows"]
        check(before >= 0, "ListenOverflows is not known")
        stopped = target["pid"]
        os.kill(stopped, signal.SIGSTOP)
        for _ in range(16 * WORKERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", r.port))
            clients.append(s)
        wait_until(lambda: r.status()["service"]["listen_overflows"] > before or None,
                   what="ListenOverflows to show the full queue")
        m = metrics(r)
        check(m[("rpsup_kernel_listen_overflows_total",)] > before, "the metrics' ListenOverflows")
        check(per_slot(m, "rpsup_worker_accept_queue_high_water", live)[target["slot"]] >= BACKLOG,
              "the full queue's high-water mark")
        for c in clients:
            c.close()
        clients = []
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        for c in clients:
            c.close()
        r.cleanup()


if __name__ == "__main__":
    run(test)
