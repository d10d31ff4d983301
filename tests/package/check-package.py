#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Debian package tools/package built: lintian reports no error (its warnings and the rest are printed),
and the package holds what an operator installs it for, and enables nothing.

The package is looked for in RPSUP_SYSTEM_PACKAGE_DIR (tools/test builds it and sets the variable). Without
it: exit 77 (skipped), a failure with RPSUP_REQUIRE_PRIVILEGED=1 (CI)."""

import os
import shutil
import subprocess
import sys

EXPECTED = [
    "./usr/sbin/rpsupd", "./usr/bin/rpsupctl", "./usr/bin/rpsup-example-worker",
    "./lib/systemd/system/rpsup@.service", "./lib/systemd/system/rpsup@.socket",
    "./usr/share/man/man8/rpsupd.8.gz", "./usr/share/man/man1/rpsupctl.1.gz", "./usr/share/man/man5/rpsup.conf.5.gz",
    "./usr/share/man/man1/rpsup-example-worker.1.gz",
    "./usr/share/doc/rpsup/CONTROL.md", "./usr/share/doc/rpsup/WORKER-PROTOCOL.md", "./usr/share/doc/rpsup/copyright",
    "./usr/share/dbus-1/interfaces/io.rpsup.Supervisor1.xml", "./etc/rpsup/",
    "./usr/libexec/rpsup-metrics-http", "./lib/systemd/system/rpsup-metrics.socket",
    "./lib/systemd/system/rpsup-metrics@.service", "./lib/systemd/system-preset/90-rpsup.preset",
    "./usr/share/man/man8/rpsup-metrics-http.8.gz",
]


def skip_or_fail(reason):
    if os.environ.get("RPSUP_REQUIRE_PRIVILEGED") == "1":
        print(f"FAIL: cannot run, and RPSUP_REQUIRE_PRIVILEGED=1: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(77)


def main():
    where = os.environ.get("RPSUP_SYSTEM_PACKAGE_DIR")
    if not where:
        skip_or_fail("no package to check: tools/package builds it, tools/test sets RPSUP_SYSTEM_PACKAGE_DIR")
    debs = sorted(os.path.join(where, f) for f in os.listdir(where) if f.startswith("rpsup_") and f.endswith(".deb"))
    if not debs:
        print(f"FAIL: {where} holds no .deb", flush=True)
        return 1
    if not shutil.which("lintian"):
        skip_or_fail("lintian is not installed (tools/setup installs it)")
    ok = True
    deb = debs[-1]
    r = subprocess.run(["lintian", "--info", "--display-info", "--pedantic", deb], capture_output=True, text=True)
    tags = [line for line in (r.stdout + r.stderr).splitlines()
            if line.strip() and "running with root privileges" not in line]
    for line in tags:
        print(f"# lintian: {line}", flush=True)
    errors = [line for line in tags if line.startswith("E:")]
    print(f"# lintian: {len(errors)} errors, {sum(1 for t in tags if t.startswith('W:'))} warnings, "
          f"{len(tags)} lines in all", flush=True)
    if errors:
        print(f"FAIL: lintian reports {len(errors)} errors, e.g. {errors[0]}", flush=True)
        ok = False

    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    missing = [f for f in EXPECTED if f not in files]
    if missing:
        print(f"FAIL: the package lacks {missing}", flush=True)
        ok = False
    scripts = subprocess.run(["dpkg-deb", "-I", deb, "postinst"], capture_output=True, text=True).stdout
    if "enable" in scripts and "deb-systemd-helper" in scripts and "was-enabled" not in scripts:
        print(f"FAIL: the package's postinst enables units:\n{scripts}", flush=True)
        ok = False
    if ok:
        print(f"PASS: {os.path.basename(deb)}: {len(files)} entries, every expected file present, no lintian error")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
