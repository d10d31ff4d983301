#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Retirement of real Debian-packaged daemons run unmodified as workers, under continuous HTTP load: 5
reloads and 5 scale changes, with the settings docs/daemons.md recommends for each.

Arguments: DAEMON STRATEGY
  DAEMON    proxyd: systemd-socket-proxyd (shipped with systemd) in front of a backend of example workers
            (a second rpsupd); at the end the service stops while socket-proxyd relays slow requests, and
            every one of them must be answered in full; node-exporter: prometheus-node-exporter --web.systemd-socket; gunicorn:
            python3-gunicorn with a small WSGI app. socket-proxyd and node_exporter have no graceful stop
            (SIGTERM ends them at once, with whatever connections they hold); gunicorn stops gracefully on
            SIGTERM.
  STRATEGY  drain | migrate (per-worker listeners; asserted), or handoff (measured only: one shared queue,
            so a daemon without a graceful stop loses what it holds when it is signalled, and the count of
            failed requests is reported, not asserted).

What a user must see: no request fails (any answer but 2xx, a reset, a timeout, a refusal counts), every
retired worker ends as asked (none killed by another signal, none dumping core, none outliving
StopTimeoutSec=), and the daemons' own output (captured per worker by the test) stays clean: no EINVAL
("invalid argument"), no Python traceback, no assertion or abort. Each case exits 77 (skipped) when its
daemon is not installed, unless RPSUP_REQUIRE_PRIVILEGED=1."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, parse_reply, run, skip_or_fail, wait_until  # noqa: E402
from slowrequest import slow_client  # noqa: E402

SOCKET_PROXYD = next((p for p in ("/lib/systemd/systemd-socket-proxyd", "/usr/lib/systemd/systemd-socket-proxyd")
                      if os.path.exists(p)), "/usr/lib/systemd/systemd-socket-proxyd")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PYTHON = "/usr/bin/python3"

RATE = 1000              # requests per second started by the client
CONCURRENCY = 8
TIMEOUT_MS = 2000        # a request not answered within this counts as failed: a client would have given up
SIZES = [3, 1, 2, 1, 2]  # the scale changes, one after each reload (from 2 workers): three of them scale in
DRAIN_SEC = 2            # the drain window, so that drain's retirements also end while the load runs
INTERVALS_BETWEEN = 3    # 100 ms intervals of load after each reload or scale change, before the next
SLOW_MS = 600            # proxyd: the backend's slow requests, in flight through socket-proxyd when it stops
IN_FLIGHT = 4            # (2 backend workers answer them within 4 x 600 ms at worst: less than the window)
DRAIN_SEC_PROXYD = 5

# Lines in a worker's own output that mean it saw what no daemon should: a listener shut down under it
# (EINVAL from accept()), a crash (Python traceback, assertion, abort, Go panic), or lighttpd's complaint
# about its listener.
BAD_OUTPUT = re.compile(r"EINVAL|invalid argument|Traceback|Assertion|Aborting|abort|panic|core dumped|"
                        r"strange event", re.IGNORECASE)
# rpsupd's own lines about a worker that did not end as asked (an orderly end is not logged at this level).
BAD_EXIT = re.compile(r"killed by|dumped core|SIGKILL|did not stop|while it was retiring|while the service stopped")

APP = '''import os


def app(environ, start_response):
    body = "generation={g} pid={p} worker={w}\\n".format(g=os.environ.get("RPSUP_GENERATION", "0"), p=os.getpid(),
                                                           w=os.environ.get("RPSUP_WORKER", "0")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

# Every worker's stdout and stderr to a file of its own, named by its pid; exec keeps the pid (LISTEN_PID,
# the notify socket's sender) and the daemon's children (gunicorn's workers) write to the same file.
WRAPPER = '''#!/bin/sh
exec "$@" >>"{dir}/$$.log" 2>&1
'''


def missing(daemon):
    need = {"proxyd": ([SOCKET_PROXYD], "systemd"),
            "node-exporter": ([NODE_EXPORTER], "prometheus-node-exporter"),
            "gunicorn": ([PYTHON, "/usr/lib/python3/dist-packages/gunicorn/__init__.py"], "python3-gunicorn")}
    paths, package = need[daemon]
    absent = [p for p in paths if not os.path.exists(p)]
    return f"{', '.join(absent)} not found (Debian package {package}; tools/setup installs it)" if absent else None


def service(daemon, tmp, backend_port):
    """[Service] lines: how the daemon runs as a worker, as docs/daemons.md recommends."""
    if daemon == "proxyd":
        # No READY=1 from socket-proxyd: Ready=exec. SIGTERM ends it at once (no graceful stop).
        return f"ExecStart={SOCKET_PROXYD} 127.0.0.1:{backend_port}\nReady=exec\n"
    if daemon == "node-exporter":
        # No READY=1 either; SIGTERM ends it at once. Only a cheap collector: the load asks for the landing page.
        return (f"ExecStart={NODE_EXPORTER} --web.systemd-socket --collector.disable-defaults --collector.loadavg "
                "--web.disable-exporter-metrics\nReady=exec\n")
    # gunicorn finds LISTEN_FDS itself and says READY=1 from its master; SIGTERM is its graceful stop.
    with open(os.path.join(tmp, "app.py"), "w") as f:
        f.write(APP)
    return (f"ExecStart={PYTHON} -m gunicorn --workers 2 --chdir {tmp} app:app\n"
            "Environment=PYTHONDONTWRITEBYTECODE=1\n")


def describe(report):
    return (f"{report['ok']} ok, {report['failed']} failed (refused {report['refused']}, reset {report['reset']}, "
            f"timeout {report['timeout']}, eof {report['eof']}, non-2xx or other {report['other']})")


def worker_output(outdir):
    """{pid: [offending lines]} over every worker's captured output, and the number of files read."""
    bad, files = {}, 0
    for name in sorted(os.listdir(outdir)):
        files += 1
        with open(os.path.join(outdir, name), errors="replace") as f:
            lines = [line.rstrip() for line in f if BAD_OUTPUT.search(line)]
        if lines:
            bad[name.removesuffix(".log")] = lines
    return bad, files


def tally(bad):
    """How many offending lines of each kind, for the log."""
    lines = [line for ls in bad.values() for line in ls]
    kinds = {"EINVAL": r"EINVAL|invalid argument", "traceback": r"Traceback", "assertion or abort":
             r"Assertion|Aborting|abort|core dumped", "panic": r"panic", "strange event": r"strange event"}
    return ", ".join(f"{sum(1 for line in lines if re.search(pattern, line, re.IGNORECASE))} {kind}"
                     for kind, pattern in kinds.items())


def only_live(r):
    st = r.status()
    live = st["service"]["live_generation"]
    return all(w["generation"] == live and not w["retiring"] for w in st["workers"])


def relayed(port):
    """Established connections to the backend's port (socket-proxyd's, one per client connection)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return len(out.splitlines())


def stop_in_flight(r, backend):
    """The service stops while socket-proxyd (no graceful stop) relays slow requests: each worker drains
    first, so every one of them is answered in full, and rpsupd exits once the workers are gone."""
    clients = [slow_client(r.port) for _ in range(IN_FLIGHT)]
    # socket-proxyd has accepted them all once it holds as many connections to the backend.
    wait_until(lambda: relayed(backend.port) >= IN_FLIGHT, timeout=5,
               what=f"{IN_FLIGHT} requests in flight through socket-proxyd")
    t = time.monotonic()
    r.proc.send_signal(signal.SIGTERM)
    replies = [c.answered_within(SLOW_MS / 1000 + 10) for c in clients]
    for c in clients:
        c.close()
    r.proc.wait(timeout=20)
    answered = sum(1 for reply in replies if reply and parse_reply(reply).get("pid"))
    log(f"stop with {IN_FLIGHT} slow requests in flight: {answered} answered in full, rpsupd exited "
        f"{time.monotonic() - t:.2f} s after SIGTERM")
    check(answered == IN_FLIGHT, f"the service stopped under {IN_FLIGHT} requests in flight through socket-proxyd: "
          f"only {answered} were answered in full: {replies}")


def test(daemon, strategy):
    check(daemon in ("proxyd", "node-exporter", "gunicorn"), f"unknown daemon {daemon}")
    check(strategy in ("drain", "migrate", "handoff"), f"unknown strategy {strategy}")
    reason = missing(daemon)
    if reason:
        skip_or_fail(reason)
    backend = None
    r = Rpsup(workers=2)
    try:
        if daemon == "proxyd":
            # What socket-proxyd forwards to: example workers under an rpsupd of their own, never reloaded.
            backend = Rpsup(name="backend", workers=2, strategy="handoff",
                            worker_args=f"--slow-request {SLOW_MS}")
            backend.start()
        outdir = os.path.join(r.tmp, "worker-output")
        os.mkdir(outdir)
        wrapper = os.path.join(r.tmp, "capture-output")
        with open(wrapper, "w") as f:
            f.write(WRAPPER.format(dir=outdir))
        os.chmod(wrapper, 0o755)
        # The readiness probe reaches the worker under test only with per-worker listeners.
        probe = "ReadyProbe=http:/\n" if strategy != "handoff" else ""
        drain = DRAIN_SEC_PROXYD if daemon == "proxyd" else DRAIN_SEC
        r.write_config(f"""[Service]
{service(daemon, r.tmp, backend.port if backend else 0).replace("ExecStart=", f"ExecStart={wrapper} ", 1)}Workers=2
Strategy={strategy}
{probe}SoakSec=0
DrainSec={drain}
ReadyTimeoutSec=10
StopTimeoutSec=5

[Socket]
ListenStream=127.0.0.1:{r.port}
""")
        r.start()

        load = Load(r.port, concurrency=CONCURRENCY, interval_ms=100,
                    extra=("--request", "GET / HTTP/1.0\\r\\n\\r\\n", "--rate", str(RATE),
                           "--timeout", str(TIMEOUT_MS)))
        try:
            load.wait_answered()

            def more_load(n=INTERVALS_BETWEEN):
                mark = len(load.intervals())
                wait_until(lambda: len(load.intervals()) >= mark + n, what=f"{n} more intervals of load")

            more_load()
            for i, size in enumerate(SIZES):
                rc, out, err = r.reload()
                check(rc == 0, f"reload {i + 1} failed ({rc}): {err}\n{r.log()[-3000:]}")
                log(f"reload {i + 1}: {out.strip()}")
                more_load()
                rc, out, err = r.scale(size)
                check(rc == 0, f"scale to {size} failed ({rc}): {err}\n{r.log()[-3000:]}")
                log(f"scale to {size}: {out.strip()}")
                more_load()
            # Every retired worker gone while the load still runs: each was signalled under load.
            wait_until(lambda: only_live(r), timeout=drain + 5 + 10, what="every retired worker gone")
            more_load()
        finally:
            report = load.stop()
        log(f"client, {daemon} with {strategy}: {describe(report)}; {report['rate_per_s']:.0f}/s")

        st = r.status()
        svc = st["service"]
        bad, files = worker_output(outdir)
        for pid, lines in bad.items():
            log(f"worker {pid}: {len(lines)} offending lines: " + " | ".join(lines[:3]))
        exits = [line for line in r.log().splitlines() if BAD_EXIT.search(line)]
        for line in exits:
            log(f"rpsupd: {line}")
        log(f"{files} workers' output read, {len(bad)} with offending lines ({tally(bad)}); retiring failures "
            f"{svc['retiring_failures']}, worker failures {svc['worker_failures']}, stop timeouts "
            f"{svc.get('stop_timeouts', 'not counted')}")

        check(svc["live_generation"] == 6, f"live generation is {svc['live_generation']}, expected 6")
        check(len(r.live_workers(st)) == SIZES[-1], f"{len(r.live_workers(st))} live workers, expected {SIZES[-1]}")
        check(files >= 6 * 2, f"only {files} workers' output captured")
        check(report["ok"] >= RATE, f"only {report['ok']} requests answered: {report}")
        # Every failure is reported at once: which of them a daemon shows tells what went wrong.
        problems = []
        if strategy == "handoff":
            log(f"handoff (not asserted): {report['failed']} of {report['attempts']} requests failed")
        elif report["failed"]:
            problems.append(f"{report['failed']} of {report['attempts']} requests failed ({describe(report)})")
        if bad:
            problems.append(f"{len(bad)} of {files} workers' own output shows errors ({tally(bad)}), e.g. "
                            f"{next(iter(bad.values()))[0]}")
        if svc["retiring_failures"] or svc["worker_failures"]:
            problems.append(f"{svc['retiring_failures']} retired and {svc['worker_failures']} serving workers did "
                            "not end as asked")
        if svc.get("stop_timeouts"):
            problems.append(f"{svc['stop_timeouts']} workers did not stop within StopTimeoutSec=")
        if exits:
            problems.append("rpsupd reports workers that did not end as asked: " + "; ".join(exits[:3]))
        check(not problems, "; ".join(problems))
        if daemon == "proxyd" and strategy != "handoff":
            stop_in_flight(r, backend)
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
        bad, _ = worker_output(outdir)
        check(not bad, f"workers' own output shows errors after the service stopped ({tally(bad)}): " +
              "; ".join(f"{pid}: {lines[0]}" for pid, lines in bad.items()))
    finally:
        r.cleanup()
        if backend:
            backend.cleanup()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: test-retire-daemons.py proxyd|node-exporter|gunicorn drain|migrate|handoff", file=sys.stderr)
        sys.exit(2)
    run(test, *sys.argv[1:])
