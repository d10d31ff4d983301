#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpsup-metrics-http, socket-activated as rpsup-metrics.socket runs it (Accept=yes: systemd-socket-activate
--accept passes each connection as fd 3), answers curl's GET /metrics with the metrics of every service in the
runtime directory, merged into one valid exposition with a `service` label; a service whose rpsupd does not
answer (SIGSTOPped, or a socket left behind) is left out and marked rpsup_exporter_service_up 0 within the
exporter's bound. Other paths get 404, other methods 405, malformed requests 400, a request that never ends
is cut at the time (5 s) or size (8 KiB) bound. The inetd way (the connection as stdin) works too."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import (BUILD, Rpsup, check, log, prometheus_parser, run, skip_or_fail, stop_process,  # noqa: E402
                       wait_until)
from rpsupnet import free_port, kill_pid  # noqa: E402

EXPORTER = os.environ.get("RPSUP_METRICS_HTTP") or os.path.join(BUILD, "ctl", "rpsup-metrics-http")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_BOUND = 5.0  # rpsup-metrics-http's REQUEST_TIMEOUT_USEC
FETCH_BOUND = 5.0  # its FETCH_TIMEOUT_USEC


def curl(port, path="/metrics", *args):
    """curl's view: (status, headers {lowercase name: value}, body)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "-", *args,
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, timeout=30)
    check(r.returncode == 0, f"curl {path} {args} exited {r.returncode}: {r.stderr.decode()}")
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def raw(port, data, timeout=15.0, whole=False):
    """Sends data as it is and reads until the exporter closes: (status line, or all it got if whole, seconds
    it took)."""
    begin = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return buf if whole else buf.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - begin


def families(text):
    fams = list(prometheus_parser()(text))
    names = [f.name for f in fams]
    dups = sorted({n for n in names if names.count(n) > 1})
    check(not dups, f"families that appear more than once: {dups}\n{text}")
    for f in fams:
        check(f.type != "unknown", f"samples outside of a typed family: {f.name} {f.samples[:3]}")
    return {f.name: f for f in fams}


def up(fams):
    return {s.labels["service"]: s.value for s in fams["rpsup_exporter_service_up"].samples}


def scrape(port, services):
    status, headers, body = curl(port)
    check(status == 200, f"GET /metrics: {status}\n{body[:500]}")
    check(headers.get("content-type") == CONTENT_TYPE, f"Content-Type: {headers.get('content-type')}")
    check(headers.get("connection") == "close", f"Connection: {headers.get('connection')}")
    check(int(headers.get("content-length", -1)) == len(body), f"Content-Length {headers.get('content-length')}, "
          f"body {len(body)} bytes")
    fams = families(body.decode())
    for f in fams.values():
        for s in f.samples:
            check(f.name == "rpsup_exporter_scrape_duration_seconds" or s.labels.get("service") in services,
                  f"sample without a known service label: {s}")
    return fams


def trickle(port, interval, stop):
    """Sends a header byte every `interval` s until the exporter closes; returns (status line, seconds)."""
    begin = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        s.settimeout(interval)
        buf = b""
        try:
            while time.monotonic() - begin < 15:
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                except socket.timeout:
                    if stop:
                        continue
                    s.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            pass
    return buf.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - begin


def flood(port):
    """Sends header lines as fast as it can until the exporter closes: (status line, bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")

        def send():
            nonlocal sent
            try:
                while sent < 64 * 1024 * 1024:
                    s.sendall(b"X-Flood: " + b"a" * 1000 + b"\r\n")
                    sent += 1011
            except OSError:
                pass

        t = threading.Thread(target=send, daemon=True)
        t.start()
        buf = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        try:
            s.shutdown(socket.SHUT_RDWR)  # ends the sender
        except OSError:
            pass  # the exporter reset the connection already
        t.join(20)
    return buf.split(b"\r\n", 1)[0].decode(errors="replace"), sent


def inetd(runtime, request):
    """The inetd way: the accepted connection as stdin (StandardInput=socket)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        p = subprocess.Popen([EXPORTER, "--runtime-dir", runtime], stdin=conn, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env)
        conn.close()
        client.sendall(request)
        client.settimeout(15)
        buf = b""
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            buf += chunk
        client.close()
        _, err = p.communicate(timeout=15)
        return buf, err.decode()


def test():
    prometheus_parser()  # or skip
    for tool in ("curl", "systemd-socket-activate"):
        if not shutil.which(tool):
            skip_or_fail(f"{tool} is not installed")
    check(os.access(EXPORTER, os.X_OK), f"{EXPORTER} is not built")

    web = Rpsup(name="web", workers=2)
    api = Rpsup(name="api", workers=1, strategy="handoff")
    api.runtime = web.runtime  # two services on one host
    activator = None
    try:
        web.start()
        api.start()
        # A control socket left behind by an rpsupd that is gone: nobody listens.
        os.makedirs(os.path.join(web.runtime, "gone"))
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(os.path.join(web.runtime, "gone", "control"))
        stale.close()

        port = free_port()
        logpath = os.path.join(web.tmp, "exporter.log")
        with open(logpath, "w") as logf:
            # It passes on only the variables named with -E.
            passed = [a for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ
                      for a in ("-E", f"{k}={os.environ[k]}")]
            activator = subprocess.Popen(["systemd-socket-activate", "--accept", "-l", f"127.0.0.1:{port}",
                                          *passed, EXPORTER, "--runtime-dir", web.runtime],
                                         stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, timeout=10, what="systemd-socket-activate listening")

        # Every service's families once, with their service label; the stale socket as down.
        fams = scrape(port, {"web", "api", "gone"})
        check(up(fams) == {"web": 1.0, "api": 1.0, "gone": 0.0}, f"rpsup_exporter_service_up: {up(fams)}")
        info = {s.labels["service"]: s.labels["strategy"] for s in fams["rpsup_info"].samples}
        check(info.get("api") == "handoff" and "web" in info, f"rpsup_info: {info}")
        workers = {s.labels["service"] for s in fams["rpsup_workers"].samples}
        check(workers == {"web", "api"}, f"rpsup_workers of {workers}")
        log(f"GET /metrics: 200, {len(fams)} families, services up {up(fams)}")

        answer, _ = raw(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", whole=True)
        head, _, body = answer.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"" and
              f"Content-Type: {CONTENT_TYPE}".encode() in head and b"Content-Length: " in head,
              f"HEAD: {answer[:300]!r}")
        status, headers, body = curl(port, "/metrics?x=1")
        check(status == 200, f"GET /metrics?x=1: {status}")
        status, _, _ = curl(port, "/other")
        check(status == 404, f"GET /other: {status}")
        answer, _ = raw(port, b"HEAD /other HTTP/1.1\r\nHost: x\r\n\r\n", whole=True)
        head, _, body = answer.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 404 ") and body == b"", f"HEAD /other: {answer[:300]!r}")
        status, _, _ = curl(port, "/")
        check(status == 404, f"GET /: {status}")
        status, headers, _ = curl(port, "/metrics", "-X", "POST", "-d", "a=1")
        check(status == 405 and headers.get("allow") == "GET, HEAD", f"POST /metrics: {status} {headers}")
        log("HEAD 200 without a body, /other 404 (to HEAD without a body), POST 405 with Allow")

        for data, expected in ((b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "400"),  # TLS
                               (b"garbage\r\n\r\n", "400"),
                               (b"GET /metrics\r\n\r\n", "400"),  # HTTP/0.9
                               (b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/1.1\r\n\r\n", "400"),  # no Host
                               (b"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/1.1\r\nHost: x\rY\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                b"Content-Length: 2\r\n\r\n", "400"),
                               (b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", "505"),
                               (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
                               (b"GET /metrics HTTP/1.0\r\n\r\n", "200"),
                               (b"GET /metrics HTTP/1.0\n\n", "200"),
                               (b"GET http://localhost/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", "200")):
            line, took = raw(port, data)
            check(line.split(" ")[1:2] == [expected], f"{data!r}: {line!r}, expected {expected}")
        log("malformed requests: 400 (TLS, garbage, HTTP/0.9, no Host, two Hosts, folding, CR, two lengths), "
            "HTTP/2.0 505")

        # A request that never ends: cut at the time bound (trickling), or at the size bound (flooding).
        line, took = trickle(port, 0.3, stop=False)
        check(line.startswith("HTTP/1.1 408") and REQUEST_BOUND - 0.5 < took < REQUEST_BOUND + 3,
              f"a trickled request: {line!r} after {took:.1f}s")
        log(f"a request trickled byte by byte: {line} after {took:.1f}s")
        line, took = trickle(port, 0.3, stop=True)
        check(line.startswith("HTTP/1.1 408") and REQUEST_BOUND - 0.5 < took < REQUEST_BOUND + 3,
              f"a stalled request: {line!r} after {took:.1f}s")
        log(f"a request that stops midway: {line} after {took:.1f}s")
        line, sent = flood(port)
        check(line.startswith("HTTP/1.1 431"), f"an endless head: {line!r} after {sent} bytes")
        log(f"an endless head: {line} after the client sent {sent} bytes")

        # A stopped rpsupd costs its own metrics and the fetch bound, nothing else.
        stop_process(api.proc.pid)
        begin = time.monotonic()
        fams = scrape(port, {"web", "api", "gone"})
        took = time.monotonic() - begin
        os.kill(api.proc.pid, signal.SIGCONT)
        check(up(fams) == {"web": 1.0, "api": 0.0, "gone": 0.0}, f"with api stopped: {up(fams)}")
        check({s.labels["service"] for s in fams["rpsup_info"].samples} == {"web"}, "api's metrics with api stopped")
        check(took < FETCH_BOUND + 3, f"the scrape took {took:.1f}s with api stopped")
        log(f"api's rpsupd stopped: answered after {took:.1f}s, api up 0, web's metrics there")
        wait_until(lambda: up(scrape(port, {"web", "api", "gone"})).get("api") == 1.0, timeout=10,
                   what="api answering again after SIGCONT")

        buf, err = inetd(web.runtime, b"GET /metrics HTTP/1.0\r\n\r\n")
        check(buf.startswith(b"HTTP/1.1 200 OK\r\n") and b'rpsup_info{service="web"' in buf,
              f"inetd style: {buf[:200]!r} {err}")
        log("inetd style (the connection as stdin): 200")

        activator.send_signal(signal.SIGTERM)
        activator.wait(timeout=10)
        text = open(logpath).read()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            check(marker not in text and marker not in err, f"a {marker} report:\n{text[-4000:]}{err}")
        web.stop()
        api.stop()
    finally:
        if activator and activator.poll() is None:
            kill_pid(activator.pid, signal.SIGKILL)
            activator.wait()
        api.cleanup()
        web.cleanup()


if __name__ == "__main__":
    run(test)
