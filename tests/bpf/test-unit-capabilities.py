#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The steering program loads with exactly the capabilities rpsup@.service leaves rpsupd
(CapabilityBoundingSet=, read from the unit): no CAP_SYS_ADMIN, no CAP_PERFMON. Without CAP_PERFMON the
verifier refuses some pointer arithmetic it accepts from root (bpf/steer.bpf.c, list_entry()), so a
program that loads as root can still fail under the unit: `rpsupctl probe`, run with that bounding set,
must say that BPF steering and migration are available. Needs root: exits 77 without it, or fails with
RPSUP_REQUIRE_PRIVILEGED=1."""

import os
import re
import shutil
import subprocess
import sys


def main():
    unit, rpsupctl = sys.argv[1], sys.argv[2]
    required = os.environ.get("RPSUP_REQUIRE_PRIVILEGED") == "1"
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print(f"{'FAIL' if required else 'SKIP'}: needs root and setpriv(1)")
        return 1 if required else 77
    text = open(unit).read()
    m = re.search(r"^CapabilityBoundingSet=(.+)$", text, re.M)
    if not m:
        print(f"FAIL: no CapabilityBoundingSet= in {unit}")
        return 1
    caps = [c.lower().removeprefix("cap_") for c in m.group(1).split()]
    if "sys_admin" in caps or "perfmon" in caps:
        print(f"FAIL: the unit's bounding set has {caps}: this test is about a set without them")
        return 1
    cmd = ["setpriv", "--bounding-set", "-all," + ",".join("+" + c for c in caps), "--inh-caps", "-all",
           rpsupctl, "probe"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    print(r.stdout, r.stderr, sep="")
    ok = re.search(r"^BPF steering:\s+yes", r.stdout, re.M) and re.search(r"^BPF migration:\s+yes", r.stdout, re.M)
    if r.returncode != 0 or not ok:
        print(f"FAIL: with the bounding set {','.join(caps)} the steering program does not load (above)")
        return 1
    print(f"ok: the steering program loads with {','.join(caps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
