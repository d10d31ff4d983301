#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Upgrades of real Debian-packaged daemons (lighttpd, gunicorn, uwsgi) run unmodified as workers, under
continuous HTTP client load, with the settings docs/daemons.md recommends for each.

Arguments: DAEMON UPGRADE GATE
  DAEMON   lighttpd (Ready=exec) | gunicorn | gunicorn-preload (--preload with Ready=exec) |
           gunicorn-preload-notify (--preload) | uwsgi (without --need-app) | uwsgi-need-app
  UPGRADE  good: the new release works; broken: lighttpd.conf names a module that does not exist, or the
           app fails to import
  GATE     probe: ReadyProbe=http:/ and the soak; soak: no probe, the soak. The soak is the default one
           (5 s), which a broken upgrade ends early; a good one soaks 3 s, to keep the case short.

A broken upgrade behind the probe is refused before it takes a connection: the reload exits 1, the
previous generation serves on, and the client sees no failed or non-2xx request. Without the probe, the
soak rolls back a generation whose workers exit (reload 1) and the client's failures are counted and
bounded; a generation that runs but answers 500 (uwsgi without --need-app) cannot be told from a good one
without the probe, and is not rolled back. A good upgrade exits 0 with no failure. Each case exits 77
(skipped) when its daemon is not installed, unless RPSUP_REQUIRE_PRIVILEGED=1."""

import os
import socket
import sys
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, run, skip_or_fail, wait_until  # noqa: E402

LIGHTTPD = "/usr/sbin/lighttpd"
PYTHON = "/usr/bin/python3"
UWSGI = "/usr/bin/uwsgi-core"
UWSGI_PYTHON3 = "/usr/lib/uwsgi/plugins/python3_plugin.so"

RATE = 1000        # requests per second started by the client
CONCURRENCY = 8
TIMEOUT_MS = 2000  # a request not answered within this counts as failed: a client would have given up
TEST_SOAK = 3      # SoakSec= of the good upgrades (the broken ones end at the rollback, whatever the soak)

APP = '''import os


def app(environ, start_response):
    body = "generation={g} pid={p} worker={w}\\n".format(g=os.environ.get("RPSUP_GENERATION", "0"), p=os.getpid(),
                                                           w=os.environ.get("RPSUP_WORKER", "0")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

# The new release's app does not import (a dependency it needs is missing).
BROKEN_APP = '''import os

import module_the_new_release_needs  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"never\\n"]
'''

# Like Debian's default lighttpd.conf (which takes the MIME types from the same script), on the inherited
# listener only: without server.port or server.bind, lighttpd binds nothing of its own.
LIGHTTPD_CONF = '''server.modules = ( "mod_indexfile", "mod_staticfile" )
server.document-root = "{docroot}"
server.systemd-socket-activation = "enable"
index-file.names = ( "index.txt" )
include_shell "/usr/share/lighttpd/create-mime.conf.pl"
'''


class Daemon:
    """One daemon's files and rpsup settings. release(n) writes release n (good or broken) in place, as a
    deployment does before `systemctl reload`; a generation reads what is on disk when it starts."""

    def __init__(self, kind, tmp):
        self.kind = kind
        self.dir = tmp
        self.app = os.path.join(tmp, "app.py")

    def missing(self):
        if self.kind == "lighttpd":
            need = [LIGHTTPD, "/usr/share/lighttpd/create-mime.conf.pl"]
            package = "lighttpd"
        elif self.kind.startswith("gunicorn"):
            need = [PYTHON, "/usr/lib/python3/dist-packages/gunicorn/__init__.py"]
            package = "python3-gunicorn"
        else:
            need = [UWSGI, UWSGI_PYTHON3]
            package = "uwsgi-core and uwsgi-plugin-python3"
        absent = [p for p in need if not os.path.exists(p)]
        return f"{', '.join(absent)} not found (Debian package {package}; tools/setup installs it)" if absent else None

    def service(self):
        """[Service] lines: how the daemon runs as a worker, as docs/daemons.md recommends."""
        if self.kind == "lighttpd":
            # No READY=1 from lighttpd: Ready=exec. SIGINT is its graceful stop.
            return (f"ExecStart={LIGHTTPD} -D -f {self.dir}/lighttpd.conf\n"
                    "Ready=exec\nKillSignal=SIGINT\n")
        if self.kind == "gunicorn":
            # READY=1 comes from the master before its workers import the app.
            return f"ExecStart={PYTHON} -m gunicorn --workers 2 --chdir {self.dir} app:app\n"
        if self.kind.startswith("gunicorn-preload"):
            # The master imports the app before READY=1; Ready=exec (a common mistake) ignores that.
            return (f"ExecStart={PYTHON} -m gunicorn --preload --workers 2 --chdir {self.dir} app:app\n" +
                    ("Ready=exec\n" if self.kind == "gunicorn-preload" else ""))
        # uwsgi: HTTP on the inherited listener (it finds LISTEN_FDS itself); SIGTERM stops it gracefully
        # with the hook (uwsgi's own SIGTERM is a reload). READY=1 comes once the master loaded the app or,
        # without --need-app, failed to.
        need_app = " --need-app" if self.kind == "uwsgi-need-app" else ""
        return (f"ExecStart={UWSGI} --plugin python3 --protocol http --master --processes 2 --chdir {self.dir} "
                f"--wsgi app:app --disable-logging{need_app} "
                "--hook-master-start 'unix_signal:15 gracefully_kill_them_all'\n")

    def release(self, n, broken=False):
        if self.kind == "lighttpd":
            docroot = os.path.join(self.dir, f"www-{n}")
            os.makedirs(docroot, exist_ok=True)
            # A static file names the release as the generation it should run in (1, then 2).
            with open(os.path.join(docroot, "index.txt"), "w") as f:
                f.write(f"generation={n} pid=0 worker=0\n")
            conf = LIGHTTPD_CONF.format(docroot=docroot)
            if broken:
                conf += 'server.modules += ( "mod_acess" )\n'  # mod_access, misspelt
            path = os.path.join(self.dir, "lighttpd.conf")
        else:
            conf = BROKEN_APP if broken else APP
            path = self.app
        with open(path + ".new", "w") as f:
            f.write(conf)
        os.rename(path + ".new", path)


def http_get(port, path="/"):
    """(status, body) of one HTTP/1.0 GET on loopback."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode(errors="replace").strip()


def serving_generation(port):
    status, body = http_get(port)
    check(status == 200, f"GET / answered {status}: {body}")
    return int(dict(kv.split("=", 1) for kv in body.split())["generation"])


def load_ok_since(load, start):
    """Requests answered in the load's intervals from index start on."""
    return sum(i["ok"] for i in load.intervals()[start:])


def describe(report):
    return (f"{report['ok']} ok, {report['failed']} failed (refused {report['refused']}, reset {report['reset']}, "
            f"timeout {report['timeout']}, eof {report['eof']}, non-2xx or other {report['other']})")


def test(kind, upgrade, gate):
    check(upgrade in ("good", "broken") and gate in ("probe", "soak"), f"unknown case {upgrade} {gate}")
    r = Rpsup(workers=2)
    try:
        d = Daemon(kind, r.tmp)
        reason = d.missing()
        if reason:
            skip_or_fail(reason)
        d.release(1)
        # Per-worker listeners (migrate, what Strategy=auto picks here), so that the probe reaches the worker
        # under test. The interpreter writes no bytecode next to the app: each release is read afresh. A
        # worker that runs but never passes the probe (uwsgi answering 500) fails at ReadyTimeoutSec=.
        r.write_config(f"""[Service]
{d.service()}Workers=2
Strategy=migrate
{'ReadyProbe=http:/' if gate == 'probe' else ''}
{f'SoakSec={TEST_SOAK}' if upgrade == 'good' else ''}
Environment=PYTHONDONTWRITEBYTECODE=1
ReadyTimeoutSec=5
StopTimeoutSec=10

[Socket]
ListenStream=127.0.0.1:{r.port}
""")
        r.start()
        check(serving_generation(r.port) == 1, "generation 1 does not answer")

        load = Load(r.port, concurrency=CONCURRENCY, interval_ms=100,
                    extra=("--request", "GET / HTTP/1.0\\r\\n\\r\\n", "--rate", str(RATE),
                           "--timeout", str(TIMEOUT_MS)))
        try:
            load.wait_answered()
            wait_until(lambda: load_ok_since(load, 0) >= RATE // 2, what="the client's first 0.5 s of answers")
            d.release(2, broken=upgrade == "broken")
            started = time.monotonic()
            rc, out, err = r.reload()
            took = time.monotonic() - started
            log(f"reload exited {rc} after {took:.2f}s: {(out + err).strip()}")
            # Half a second more of load after the reload: whoever serves now is in the count too.
            mark = len(load.intervals())
            wait_until(lambda: len(load.intervals()) >= mark + 5, what="half a second of load after the reload")
        finally:
            report = load.stop()
        log(f"client during the {upgrade} upgrade ({gate}): {describe(report)}; {report['rate_per_s']:.0f}/s")
        st = r.status()
        live = st["service"]["live_generation"]

        if upgrade == "good":
            check(rc == 0, f"a good upgrade exited {rc}: {err}")
            check(report["failed"] == 0, f"{report['failed']} requests failed during a good upgrade: {report}")
            check(live == 2 and serving_generation(r.port) == 2, f"generation {live} is live, expected 2")
            check({"1", "2"} <= set(report["generations"]), f"generations answering: {report['generations']}")
            # The previous generation stopped as asked (KillSignal= is the daemon's graceful stop).
            wait_until(lambda: all(w["generation"] == 2 for w in r.status()["workers"]), timeout=20,
                       what="generation 1 gone")
            failures = r.status()["service"]["retiring_failures"]
            check(failures == 0, f"{failures} workers of generation 1 did not stop as asked:\n{r.log()[-3000:]}")
        elif gate == "probe" or kind in ("uwsgi-need-app", "gunicorn-preload-notify"):
            # Caught before it took a connection: by the probe, or by its exit before READY=1.
            check(rc == 1, f"a broken upgrade behind the probe exited {rc}, expected 1: {out} {err}")
            if kind == "uwsgi":  # its workers run: only the probe can have failed them
                check("readiness probe" in err and "500" in err, f"the probe is not the reason: {err}")
            check(report["failed"] == 0, f"{report['failed']} requests failed or were not 2xx: {report}")
            check(set(report["generations"]) == {"1"}, f"generations answering: {report['generations']}")
            check(live == 1 and serving_generation(r.port) == 1, f"generation {live} is live, expected 1")
        elif kind == "uwsgi":
            # uwsgi without --need-app runs without its app and answers 500: no worker fails, so the soak
            # sees nothing and the generation is promoted. Only the probe tells (the "probe" case).
            check(rc == 0, f"reload exited {rc}: {err}")
            status, body = http_get(r.port)
            check(status == 500, f"uwsgi without its app answered {status}: {body}")
            check(report["other"] > 0, f"the client saw no 500: {report}")
            log(f"without a probe, uwsgi without --need-app answered {report['other']} of {report['attempts']} "
                f"requests with 500 after a reload that succeeded")
        else:
            # Rolled back by the soak: the workers exit (lighttpd at start; gunicorn's master once a worker
            # fails to boot; gunicorn --preload at the import).
            check(rc == 1, f"a broken upgrade without the probe exited {rc}, expected 1 (rolled back): {err}")
            check("rolled back" in err, f"no reason given: {err}")
            check(live == 1 and serving_generation(r.port) == 1, f"generation {live} is live, expected 1")
            # The broken workers exit within half a second of their start (0.07-0.45 s measured): the rollback
            # follows at once, 3 s leave room for a loaded machine. What the client can have lost is what it
            # started while the broken generation took connections: at most the reload's length at RATE per
            # second, and those already in flight. The count is reported; a service left broken after the
            # rollback would exceed the bound within the half second of load that follows.
            check(took < 3, f"the rollback took {took:.2f}s")
            bound = int(RATE * took) + CONCURRENCY
            log(f"without the probe: {report['failed']} requests failed (bound {bound}: {RATE}/s for the "
                f"{took:.2f}s of the reload, plus {CONCURRENCY} in flight)")
            check(report["failed"] <= bound, f"{report['failed']} requests failed, more than {bound}: {report}")
        check(all(w["state"] == "ready" for w in r.live_workers(st)), f"live workers not ready: {st['workers']}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: test-daemon-upgrades.py DAEMON good|broken probe|soak", file=sys.stderr)
        sys.exit(2)
    run(test, *sys.argv[1:])
