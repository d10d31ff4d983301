#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every address form of ListenStream=: IPv4, IPv6, a Unix socket path and an abstract name, in one
service; answered before and after a reload; GetListenerFds hands them out (to root only)."""

import os
import socket
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import GET_LISTENER_FDS, Rpsup, check, free_port, log, parse_reply, run  # noqa: E402


def ask(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(address)
        s.sendall(b"hello\n")
        buf = b""
        while chunk := s.recv(1024):
            buf += chunk
    return parse_reply(buf.decode())


def test():
    port4, port6 = free_port(), free_port()
    r = Rpsup(workers=2, strategy="auto")
    path = os.path.join(r.tmp, "web.sock")
    abstract = f"rpsup-test-{r.token}"
    r.write_config(open(r.config).read().replace(
        f"ListenStream=127.0.0.1:{r.port}",
        f"ListenStream=127.0.0.1:{port4}\nListenStream=[::1]:{port6}\nListenStream={path}\nListenStream=@{abstract}"))
    try:
        st = r.start()
        log(f"strategy {st['service']['strategy']}: {st['service']['strategy_reason']}")
        check(st["service"]["strategy"] == "handoff", "Unix sockets must make auto pick handoff")
        targets = [(socket.AF_INET, ("127.0.0.1", port4)), (socket.AF_INET6, ("::1", port6)),
                   (socket.AF_UNIX, path), (socket.AF_UNIX, "\0" + abstract)]
        for generation in ("1", "2"):
            for family, address in targets:
                reply = ask(family, address)
                check(reply["generation"] == generation, f"{address!r} answered {reply}")
            log(f"generation {generation} answers on all four addresses")
            if generation == "1":
                rc, out, err = r.reload()
                check(rc == 0, f"reload: {err}")

        control = os.path.join(r.runtime, r.name, "control")
        p = subprocess.run([GET_LISTENER_FDS, control], capture_output=True, text=True, timeout=10)
        log(p.stdout.strip().replace("\n", "; "))
        check(p.returncode == 0, f"GetListenerFds failed: {p.stdout}{p.stderr}")
        lines = p.stdout.splitlines()
        check(len(lines) == 4 and all(" listening " in line for line in lines), f"fds: {lines}")
        for want in (f"127.0.0.1:{port4}", f"[::1]:{port6}", path):
            check(any(line.endswith(want) for line in lines), f"{want} missing from {lines}")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", GET_LISTENER_FDS, control],
                           capture_output=True, text=True, timeout=10)
        check(p.returncode == 1 and "PermissionDenied" in p.stdout,
              f"as nobody: exit {p.returncode}: {p.stdout}{p.stderr}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
