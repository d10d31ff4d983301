#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: odd STATUS= texts made GetStatus/ListWorkers fail with "Invalid argument".
"""A hostile worker's STATUS= cannot break the status replies: invalid UTF-8 becomes U+FFFD, control
characters spaces, and a long status is cut at a character boundary, where it enters rpsupd."""

import json
import os
import sys
import textwrap
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, run  # noqa: E402

HOSTILE = textwrap.dedent('''\
    import os, signal, socket
    texts = [
        b"caf\\xe9",                                       # Latin-1, not UTF-8
        "\\u00e9".encode() * 150,                          # 300 bytes of two-byte characters
        b"\\x1b[31mred\\x7f \\xc0\\xaf " + "\\u20ac".encode() * 90,  # controls, an overlong '/', three-byte characters
    ]
    path = os.environ["NOTIFY_SOCKET"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("\\0" + path[1:] if path.startswith("@") else path)
    s.send(b"STATUS=" + texts[int(os.environ["RPSUP_WORKER"]) % len(texts)])
    s.send(b"READY=1")
    while True:
        signal.pause()
''')

EXPECTED = [
    "caf\ufffd",
    "\u00e9" * 128,                                     # 256 bytes: the whole characters that fit
    " [31mred  \ufffd\ufffd " + "\u20ac" * 79,          # 17 + 237 = 254 bytes
]


def test():
    r = Rpsup(workers=3)
    script = os.path.join(r.tmp, "hostile-worker.py")
    with open(script, "w") as f:
        f.write(HOSTILE)
    r.write_config(f"""[Service]
ExecStart={sys.executable} {script}
Workers=3
ReadyTimeoutSec=10
StopTimeoutSec=5

[Socket]
ListenStream=127.0.0.1:{r.port}
""")
    try:
        r.start(wait=False)
        # Each of these made GetStatus/ListWorkers fail with "Invalid argument".
        end = time.monotonic() + 15
        while True:
            check(r.proc.poll() is None, f"rpsupd exited with {r.proc.returncode}:\n{r.log()}")
            rc, out, err = r.ctl("--json", "status", r.name, timeout=10)
            st = json.loads(out) if rc == 0 else None
            if st and st["service"]["state"] == "running":
                break
            check(time.monotonic() < end, f"no running status within 15s; rpsupctl --json status: {rc} {err}")
            time.sleep(0.05)
        r.remember(st)
        by_slot = {w["slot"]: w["status"] for w in st["workers"]}
        log(f"statuses: {by_slot}")
        for slot, want in enumerate(EXPECTED):
            got = by_slot.get(slot)
            check(got == want, f"worker {slot}: status {got!r}, expected {want!r}")
            check(len(got.encode()) <= 256, f"worker {slot}: status of {len(got.encode())} bytes")

        rc, out, err = r.ctl("status", r.name, timeout=10)
        check(rc == 0, f"rpsupctl status failed with {rc}: {err}")
        check("caf\ufffd" in out and "\u00e9" * 64 in out and "\u20ac" * 64 in out,
              f"rpsupctl status does not show the statuses:\n{out}")
        check("\x1b" not in out and "\x7f" not in out, "a control character reached the terminal")

        check("is not valid UTF-8" in r.log() and "longer than 256 bytes" in r.log(),
              f"rpsupd did not say what it changed:\n{r.log()[-2000:]}")
        r.stop()
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
