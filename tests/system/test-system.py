#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""System tests: systemd 252 as PID 1 in systemd-nspawn, the project's own units, real rpsupd, workers and
clients. What runs is the Debian package, installed with dpkg in the container, when RPSUP_SYSTEM_PACKAGE_DIR
names the directory tools/package left it in (tools/test does), else this build, installed with meson. Each run boots a container of its own for one
scenario (see guest.py), which writes its verdict to /out and powers the container off.

    test-system.py SCENARIO [STRATEGY]

Needs root and systemd-nspawn: exits 77 without them (a failure with RPSUP_REQUIRE_PRIVILEGED=1)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("RPSUP_BUILD_DIR") or os.path.join(TESTS, "..", "build"))
TIMEOUT = 240


def skip_or_fail(reason):
    if os.environ.get("RPSUP_REQUIRE_PRIVILEGED") == "1":
        print(f"FAIL: cannot run, and RPSUP_REQUIRE_PRIVILEGED=1: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(77)


def main():
    scenario = sys.argv[1]
    strategy = sys.argv[2] if len(sys.argv) > 2 else "auto"
    if os.geteuid() != 0:
        skip_or_fail("needs root (systemd-nspawn)")
    nspawn = shutil.which("systemd-nspawn")
    if not nspawn:
        skip_or_fail("systemd-nspawn is not installed (Debian package systemd-container)")

    # What the container runs: the Debian package (tools/package built it; tools/test says where), installed
    # with dpkg in the container, or else this build, installed with meson under /usr/local.
    package_dir = os.environ.get("RPSUP_SYSTEM_PACKAGE_DIR")
    debs = (sorted(f for f in os.listdir(package_dir) if f.startswith("rpsup_") and f.endswith(".deb"))
            if package_dir else [])
    if package_dir and not debs:
        print(f"FAIL: RPSUP_SYSTEM_PACKAGE_DIR={package_dir} holds no .deb (tools/package builds it)", flush=True)
        return 1
    if scenario == "quickstart" and not debs:
        skip_or_fail("the quick start runs on the installed package: build it with tools/package and set "
                     "RPSUP_SYSTEM_PACKAGE_DIR=build/deb (tools/test does both)")
    tmp = tempfile.mkdtemp(prefix=f"rpsup-system-{scenario}-")
    os.chmod(tmp, 0o755)
    try:
        destdir = os.path.join(tmp, "root")
        if debs:
            install = [f"--bind-ro={os.path.abspath(package_dir)}:/pkg",
                       # dpkg writes to /usr and /var: both as overlays on the host's, thrown away at exit.
                       "--overlay=/usr::/usr", "--overlay=/var::/var"]
            worker = "/usr/bin/rpsup-example-worker"
        else:
            r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", destdir, "--no-rebuild", "--quiet"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL: meson install: {r.stdout}{r.stderr}", flush=True)
                return 1
            install = [f"--bind-ro={destdir}/usr/local:/usr/local"]
            worker = "/usr/local/bin/rpsup-example-worker"
        units, conf, out = (os.path.join(tmp, d) for d in ("units", "conf", "out"))
        for d in (units, conf, out, os.path.join(units, "multi-user.target.wants")):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(units, "rpsup-systemtest.service"), "w") as f:
            f.write(f"""[Unit]
Description=rpsup system test: {scenario} ({strategy})

[Service]
Type=simple
Environment=RPSUP_LOAD={BUILD}/bench/rpsup-load
Environment=RPSUP_EXAMPLE_WORKER={worker}
Environment=RPSUP_PACKAGE={"/pkg/" + debs[-1] if debs else ""}
Environment=PYTHONDONTWRITEBYTECODE=1
ExecStart=/usr/bin/python3 {HERE}/guest.py {scenario} {strategy}
StandardOutput=append:/out/guest.log
StandardError=append:/out/guest.log
""")
        os.symlink("../rpsup-systemtest.service", os.path.join(units, "multi-user.target.wants",
                                                               "rpsup-systemtest.service"))
        machine = f"rpsup-{scenario}-{os.getpid()}"[:60]
        argv = [nspawn, "-D", "/", "--volatile=yes", "--private-network", "--register=no", "--keep-unit",
                "-M", machine,
                # BPF steering inside the container: CAP_BPF and the bpf() system call.
                "--capability=CAP_BPF,CAP_PERFMON", "--system-call-filter=bpf",
                *install,
                f"--bind={units}:/etc/systemd/system", f"--bind={out}:/out",
                # The quick start works on /etc/rpsup as the package made it, and reads the README.
                *([f"--bind={conf}:/etc/rpsup"] if scenario != "quickstart" else
                  [f"--bind-ro={os.path.join(TESTS, '..', 'README.md')}:/quickstart/README.md"]),
                f"--bind-ro={BUILD}:{BUILD}", f"--bind-ro={TESTS}:{TESTS}",
                # man(1) needs its configuration, which a volatile /etc lacks (systemd-analyze verify calls it).
                *([f"--bind-ro=/etc/manpath.config"] if os.path.exists("/etc/manpath.config") else []),
                "--console=read-only", "-b", "systemd.firstboot=off", "systemd.unit=multi-user.target"]
        begin = time.monotonic()
        with open(os.path.join(tmp, "console.log"), "w") as console:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
            try:
                p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        took = time.monotonic() - begin
        log = open(os.path.join(out, "guest.log")).read() if os.path.exists(os.path.join(out, "guest.log")) else ""
        for line in log.splitlines():
            print(f"# {line}", flush=True)
        try:
            result = json.load(open(os.path.join(out, "result.json")))
        except (OSError, json.JSONDecodeError):
            console_tail = open(os.path.join(tmp, "console.log")).read()[-3000:]
            print(f"FAIL: the container ({took:.1f} s, exit {p.returncode}) left no result:\n{console_tail}",
                  flush=True)
            return 1
        if not result["ok"]:
            print(f"FAIL: {result['message']}", flush=True)
            return 1
        print(f"PASS ({took:.1f} s in the container)", flush=True)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
