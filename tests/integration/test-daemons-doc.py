#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""docs/daemons.md, as written: each daemon's rpsup config (the first ```ini block of its section, and for
lighttpd the lighttpd.conf block beside it) runs the Debian-packaged daemon through 3 reloads under HTTP
load (requests with `Connection: close`), and no request fails.

Only what a reader must change is changed: the address (ListenStream=127.0.0.1:PORT of the test's network
namespace), /srv/app (an app of the test's), lighttpd's config path and document root, and socket-proxyd's
backend (example workers under an rpsupd of their own). Everything else, Workers=, User=, Ready=,
ReadyProbe=, KillSignal=, Strategy=, the daemons' options, is the document's.

Argument: lighttpd | gunicorn | uwsgi | systemd-socket-proxyd | prometheus-node-exporter. Exits 77 (skipped)
when the daemon is not installed, unless RPSUP_REQUIRE_PRIVILEGED=1."""

import os
import re
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import Load, Rpsup, check, log, run, skip_or_fail, wait_until  # noqa: E402

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "daemons.md")
RELOADS = 3
RATE = 1000        # requests per second
CONCURRENCY = 8
TIMEOUT_MS = 2000  # a request not answered within this counts as failed
REQUEST = "GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n"

NEEDS = {
    "lighttpd": (["/usr/sbin/lighttpd", "/usr/share/lighttpd/create-mime.conf.pl"], "lighttpd"),
    "gunicorn": (["/usr/lib/python3/dist-packages/gunicorn/__init__.py"], "python3-gunicorn"),
    "uwsgi": (["/usr/bin/uwsgi-core", "/usr/lib/uwsgi/plugins/python3_plugin.so"], "uwsgi-core, uwsgi-plugin-python3"),
    "systemd-socket-proxyd": (["/lib/systemd/systemd-socket-proxyd"], "systemd"),
    "prometheus-node-exporter": (["/usr/bin/prometheus-node-exporter"], "prometheus-node-exporter"),
}

APP = '''def app(environ, start_response):
    body = b"hello from the app\\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def section_blocks(daemon):
    """The fenced blocks of the document's section for daemon: [(language, text)]."""
    text = open(DOC).read()
    m = re.search(rf"^## {re.escape(daemon)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    check(m is not None, f"docs/daemons.md has no section '## {daemon}'")
    return re.findall(r"^```(\w+)\n(.*?)^```", m.group(1), re.M | re.S)


def adapt(config, port, tmp, backend_port):
    """What a reader changes for their host: here, the test's address, directories and backend."""
    config = re.sub(r"^ListenStream=.*$", f"ListenStream=127.0.0.1:{port}", config, flags=re.M)
    config = config.replace("/srv/app", os.path.join(tmp, "app"))
    config = config.replace("/etc/lighttpd/web.conf", os.path.join(tmp, "lighttpd.conf"))
    if backend_port:
        config = config.replace("127.0.0.1:8080", f"127.0.0.1:{backend_port}")
    return config


def test(daemon):
    check(daemon in NEEDS, f"unknown daemon {daemon}")
    paths, package = NEEDS[daemon]
    absent = [p for p in paths if not os.path.exists(p)]
    if absent:
        skip_or_fail(f"{', '.join(absent)} not found (Debian package {package}; tools/setup installs it)")
    blocks = section_blocks(daemon)
    configs = [text for lang, text in blocks if lang == "ini"]
    check(configs, f"docs/daemons.md's section {daemon} has no ```ini block")
    backend = None
    r = Rpsup(workers=2)
    try:
        # The workers run as the document's User=: what they read must be readable to it.
        os.makedirs(os.path.join(r.tmp, "app"), mode=0o755)
        with open(os.path.join(r.tmp, "app", "app.py"), "w") as f:
            f.write(APP)
        if daemon == "lighttpd":
            conf = next((text for lang, text in blocks if lang == "lighttpd"), None)
            check(conf is not None, "docs/daemons.md's lighttpd section has no ```lighttpd block")
            docroot = os.path.join(r.tmp, "www")
            os.makedirs(docroot, mode=0o755)
            with open(os.path.join(docroot, "index.html"), "w") as f:
                f.write("hello from lighttpd\n")
            with open(os.path.join(r.tmp, "lighttpd.conf"), "w") as f:
                f.write(conf.replace("/var/www/html", docroot))
        if daemon == "systemd-socket-proxyd":
            backend = Rpsup(name="backend", workers=2, strategy="handoff")
            backend.start()
        config = adapt(configs[0], r.port, r.tmp, backend.port if backend else None)
        log("the config, as run:\n" + "\n".join("  " + line for line in config.splitlines()))
        r.write_config(config)
        r.start()
        load = Load(r.port, concurrency=CONCURRENCY, interval_ms=100,
                    extra=("--request", REQUEST, "--rate", str(RATE), "--timeout", str(TIMEOUT_MS)))
        try:
            load.wait_answered()
            for i in range(RELOADS):
                rc, out, err = r.reload()
                check(rc == 0, f"reload {i + 1} failed ({rc}): {err}\n{r.log()[-3000:]}")
                log(f"reload {i + 1}: {out.strip()}")
                mark = len(load.intervals())
                wait_until(lambda: len(load.intervals()) >= mark + 3, what="3 more intervals of load")
        finally:
            report = load.stop()
        log(f"{daemon}: {report['ok']} ok, {report['failed']} failed (refused {report['refused']}, reset "
            f"{report['reset']}, timeout {report['timeout']}, eof {report['eof']}, other {report['other']})")
        st = r.status()
        check(st["service"]["live_generation"] == RELOADS + 1,
              f"live generation {st['service']['live_generation']}, expected {RELOADS + 1}")
        check(report["ok"] >= RATE, f"only {report['ok']} requests answered")
        check(report["failed"] == 0, f"{report['failed']} of {report['attempts']} requests failed across "
              f"{RELOADS} reloads with the config docs/daemons.md gives for {daemon}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()
        if backend:
            backend.cleanup()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(f"usage: test-daemons-doc.py {'|'.join(NEEDS)}", file=sys.stderr)
        sys.exit(2)
    run(test, sys.argv[1])
