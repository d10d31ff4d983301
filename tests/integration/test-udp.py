#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Datagram services: a client that keeps asking (one datagram, one answer) loses no answer across
reloads and a scale change: handoff shares one socket, drain keeps a retiring worker's socket read until
its datagrams are answered."""

import socket
import sys
import threading
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, run  # noqa: E402


def test(strategy):
    # Without the flow table: each client's datagrams go by their hash to the live generation, so every
    # generation answers (test-udp-flows.py has flows stay with their worker).
    r = Rpsup(workers=2, strategy=strategy, extra_service="FlowTableSize=0")
    r.write_config(open(r.config).read().replace(f"ListenStream=127.0.0.1:{r.port}",
                                                 f"ListenDatagram=127.0.0.1:{r.port}"))
    try:
        st = r.start()
        check(st["service"]["strategy"] == strategy, st["service"]["strategy"])
        stats = {"sent": 0, "answered": 0, "lost": 0, "generations": set()}
        stop = threading.Event()

        def client():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(1.0)
            s.connect(("127.0.0.1", r.port))
            while not stop.is_set():
                s.send(b"hello\n")
                stats["sent"] += 1
                try:
                    reply = s.recv(512).decode()
                    stats["answered"] += 1
                    stats["generations"].add(int(reply.split()[0].split("=")[1]))
                except socket.timeout:
                    stats["lost"] += 1
            s.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            for i, n in enumerate((3, 1)):
                rc, out, err = r.reload()
                check(rc == 0, f"reload: {err}")
                time.sleep(0.5)
                rc, out, err = r.scale(n)
                check(rc == 0, f"scale: {err}")
                time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        log(f"{stats['sent']} datagrams, {stats['answered']} answered, {stats['lost']} lost, generations "
            f"{sorted(stats['generations'])}")
        check(stats["lost"] == 0, f"{stats['lost']} datagrams got no answer")
        check(stats["generations"] >= {1, 2, 3}, f"generations that answered: {stats['generations']}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
