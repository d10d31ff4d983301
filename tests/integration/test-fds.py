#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""rpsupctl fds lists every copy of the service's listening sockets and who holds it, and nothing else:
rpsupd, the fd store (played by this test, as systemd's PID 1 would be), each worker with the listeners
rpsupd handed to it, a process outside the service that took copies through GetListenerFds, flagged as
unexpected, and (drain, migrate) a same-uid program's listener in the workers' reuseport group, which
rpsupd does not hold, flagged too. After a reload the old generation's listeners leave the list once their
workers are gone, while the outsider's copies of them stay listed, still flagged. A caller who may not read
rpsupd's fds is told so. reloads: scans running while rpsupd reloads flag nothing (what rpsupd creates
during a scan is in its second answer; its children not listed yet are starting workers). notify-utf8: a
NOTIFY_SOCKET that is not UTF-8 does not make rpsupd's answer fail."""

import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import GET_LISTENER_FDS, Failed, FakeSystemd, Rpsup, check, log, run, wait_until  # noqa: E402


INTRUDER = """
import socket, sys
s = socket.socket(type=socket.SOCK_DGRAM if sys.argv[2] == "datagram" else socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "stream":
    s.listen(8)
print("listening", flush=True)
sys.stdin.read()
"""


def fds(r):
    rc, out, err = r.ctl("--json", "fds", r.name)
    check(rc == 0, f"rpsupctl --json fds failed with {rc}: {err}")
    return json.loads(out)


def holders(report):
    """{(inode, pid): holder record}"""
    return {(s["inode"], h["pid"]): h for s in report["sockets"] for h in s["holders"]}


def hold_copies(r):
    p = subprocess.Popen([GET_LISTENER_FDS, "--hold", rawdbus.control_path(r)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line.strip())
        if line.strip() == "holding":
            return p, lines
    p.wait()
    raise Failed(f"get-listener-fds --hold did not hold the listeners: {lines}")


def check_fields(report, r):
    for key in ("service", "strategy", "rpsupd_pid", "notify_socket", "live_generation", "sockets", "holders",
                "unexpected", "missing", "scan"):
        check(key in report, f"fds --json has no \"{key}\": {sorted(report)}")
    check(report["service"] == r.name and report["rpsupd_pid"] == r.proc.pid,
          f"fds names {report['service']}/{report['rpsupd_pid']}, not {r.name}/{r.proc.pid}")
    check(report["notify_socket"] == r.systemd.path, f"notify_socket is {report['notify_socket']!r}")
    for s in report["sockets"]:
        for key in ("inode", "address", "type", "role", "generation", "slot", "fdstore_name", "listening",
                    "rpsupd_holds", "holders"):
            check(key in s, f"a socket of fds --json has no \"{key}\": {s}")
        for h in s["holders"]:
            for key in ("pid", "command", "holder", "expected", "note", "fds", "fd_count", "cloexec"):
                check(key in h, f"a holder of fds --json has no \"{key}\": {h}")
            check(h["fd_count"] == len(h["fds"]) >= 1, f"holder without fds: {h}")
    scan = report["scan"]
    check(scan["processes"] > 0 and scan["not_inspected"] == 0 and scan["complete"] and scan["limits"] == [],
          f"a scan as root should be complete: {scan}")


def expected_holders(r, report, foreign_pid, foreign_inodes, intruder=None):
    """Each socket's holders, as this test set them up."""
    st = r.status()
    workers = {w["pid"]: w for w in st["workers"] if w["pid"]}
    got = {}
    for s in report["sockets"]:
        got[s["inode"]] = {(h["pid"], h["holder"], h["expected"]) for h in s["holders"]}
    want = {}
    for s in report["sockets"]:
        w = set()
        if s["rpsupd_holds"]:
            w.add((r.proc.pid, "rpsupd", True))
            w.add((os.getpid(), "fdstore", True))
        for pid, wk in workers.items():
            mine = s["role"] == "shared" or (s["role"] in ("slot", "retiring") and
                                            (wk["generation"], wk["slot"]) == (s["generation"], s["slot"]))
            if mine:
                w.add((pid, "worker", True))
        if s["inode"] in foreign_inodes:
            w.add((foreign_pid, "other", False))
        if intruder and s["role"] == "foreign":
            w.add((intruder.pid, "other", False))
        want[s["inode"]] = w
    return got, want


RELOADS = int(os.environ.get("RPSUP_FDS_RELOADS", "16"))


def test_reloads():
    """rpsupctl fds in a loop while rpsupd reloads (nobody outside the service holds anything): whatever
    rpsupd creates or starts while a scan runs (listeners, their fd store copies, workers) is never flagged."""
    r = Rpsup(workers=4, strategy="drain")
    reports, errors = [], []
    done = threading.Event()

    def loop():
        while not done.is_set():
            rc, out, err = r.ctl("--json", "fds", r.name)
            if rc != 0:
                errors.append(f"rc {rc}: {err}")
                continue
            reports.append(json.loads(out))

    try:
        r.start(with_systemd=True)
        r.systemd.sync()
        # Three scans at a time, so that scans overlap every step of each reload.
        threads = [threading.Thread(target=loop) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(RELOADS):
                rc, _, err = r.reload("--wait")
                check(rc == 0, f"reload {i + 1} failed: {err}")
            # Let the last reload's old generation drain under the scans too.
            wait_until(lambda: len(r.status()["generations"]) == 1, timeout=30,
                       what=f"the old generations leaving after {RELOADS} reloads")
        finally:
            done.set()
            for t in threads:
                t.join()
        check(not errors, f"rpsupctl fds failed during reloads: {errors[:3]}")
        check(len(reports) >= RELOADS, f"only {len(reports)} scans ran during {RELOADS} reloads")
        flagged = [(s["inode"], s["role"], h) for rep in reports for s in rep["sockets"] for h in s["holders"]
                   if not h["expected"]]
        check(not flagged, f"{len(flagged)} holders flagged unexpected in {len(reports)} scans during reloads, "
                           f"with no outsider: {flagged[:5]}")
        check(all(rep["unexpected"] == 0 for rep in reports), "a scan counts unexpected holders it does not list")
        starting = sum(1 for rep in reports for s in rep["sockets"] for h in s["holders"] if h["holder"] == "starting")
        log(f"{len(reports)} scans during {RELOADS} reloads of 4 drain workers: 0 unexpected; {starting} holders seen "
            f"as starting; {sum(1 for rep in reports if rep['missing'])} scans with a worker missing a listener: "
            f"{[rep['missing'] for rep in reports if rep['missing']][:3]}")
        r.stop()
    finally:
        done.set()
        r.cleanup()


def test_notify_utf8():
    """A NOTIFY_SOCKET that is not UTF-8 (rpsupd sends it as is in ListListenerHolders) is sent with U+FFFD
    in place of the invalid bytes: the answer is not refused for it."""
    r = Rpsup(workers=1, strategy="handoff")
    try:
        r.systemd = FakeSystemd(os.fsdecode(os.path.join(r.tmp, "notify-").encode() + b"\xff\xfe"))
        r.start(with_systemd=True)
        report = fds(r)
        check(report["notify_socket"].endswith("notify-\ufffd\ufffd"),
              f"a NOTIFY_SOCKET that is not UTF-8 comes back as {report['notify_socket']!r}")
        # The fd store (this process) cannot be found by that path: it shows as another process, and the
        # scan says why.
        hs = holders(report)
        kinds = {h["holder"] for h in hs.values() if h["pid"] != os.getpid()}
        check(kinds == {"rpsupd", "worker"} and all(h["holder"] == "other" for h in hs.values()
                                                    if h["pid"] == os.getpid()),
              f"rpsupctl fds with a NOTIFY_SOCKET that is not UTF-8: {report}")
        check(not report["scan"]["complete"] and any("NOTIFY_SOCKET" in m for m in report["scan"]["limits"]),
              f"the scan does not say the fd store could not be found: {report['scan']}")
        r.stop()
    finally:
        r.cleanup()


def test(mode):
    if mode == "reloads":
        return test_reloads()
    if mode == "notify-utf8":
        return test_notify_utf8()
    # A retired listener lingers for the SYN-ACK retries (63 s by default): 3 s in this test's own netns.
    with open("/proc/sys/net/ipv4/tcp_synack_retries", "w") as f:
        f.write("1")
    # udp: drain with a datagram socket per worker, which rpsupd closes (it does not linger) once its worker
    # is gone.
    strategy, kind = ("drain", "datagram") if mode == "udp" else (mode, "stream")
    r = Rpsup(workers=2, strategy=strategy, extra_service="FlowTableSize=0" if kind == "datagram" else "")
    if kind == "datagram":
        r.write_config(open(r.config).read().replace(f"ListenStream=127.0.0.1:{r.port}",
                                                     f"ListenDatagram=127.0.0.1:{r.port}"))
    foreign = intruder = None
    try:
        r.start(with_systemd=True)
        r.systemd.sync()
        check(r.systemd.stored(), "rpsupd stored no listener in the (test's) fd store")
        foreign, lines = hold_copies(r)
        check(len(lines) > 1, f"get-listener-fds got no listener: {lines}")
        if strategy != "handoff":
            # Another program of the same uid joins the workers' reuseport group: rpsupd does not hold it.
            intruder = subprocess.Popen([sys.executable, "-c", INTRUDER, str(r.port), kind], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
            check(intruder.stdout.readline().strip() == "listening", "the intruding listener did not start")

        report = fds(r)
        check_fields(report, r)
        hs = holders(report)
        foreign_inodes = {inode for inode, pid in hs if pid == foreign.pid}
        check(foreign_inodes, f"the process holding GetListenerFds copies (pid {foreign.pid}) is not listed")
        got, want = expected_holders(r, report, foreign.pid, foreign_inodes, intruder)
        check(got == want, f"fds lists {got}, the test set up {want}")
        intruders = [s for s in report["sockets"] if s["role"] == "foreign"]
        check(len(intruders) == (1 if intruder else 0), f"sockets not rpsupd's: {intruders}")
        for s in intruders:
            check(s["listening"] and s["uid"] == 0 and not s["rpsupd_holds"] and s["type"] == kind and
                  "reuseport group" in s["holders"][0]["note"], f"the intruding listener: {s}")
        check(report["unexpected"] == len(foreign_inodes) + len(intruders),
              f"{report['unexpected']} unexpected holders, the test set up {len(foreign_inodes) + len(intruders)}")
        for inode in foreign_inodes:
            h = hs[(inode, foreign.pid)]
            check("outside the service" in h["note"], f"the outsider's note: {h['note']!r}")
        live = [s for s in report["sockets"] if s["rpsupd_holds"]]
        check(all(s["listening"] for s in live), f"rpsupd's live listeners not listening: {live}")
        check(report["missing"] == [], f"workers miss listeners: {report['missing']}")
        workers = {w["pid"] for w in r.live_workers()}
        check(len(workers) == 2 and all(any(pid == w for _, pid in hs) for w in workers),
              f"each of the 2 workers {workers} should hold a listener")

        rc, text, err = r.ctl("fds", r.name)
        check(rc == 0 and "UNEXPECTED" in text and f" {foreign.pid} " in text and "Unexpected: pid" in text,
              f"rpsupctl fds (text) does not flag pid {foreign.pid}:\n{text}{err}")
        log("rpsupctl fds:\n" + text)

        # Someone who may not read rpsupd's fds sees what they can, and is told what they could not.
        rc, out, err = r.ctl("--json", "fds", r.name, user=65534)
        check(rc == 0, f"rpsupctl fds as uid 65534 failed with {rc}: {err}")
        scan = json.loads(out)["scan"]
        check(not scan["complete"] and any(p["is"] == "rpsupd" and p["pid"] == r.proc.pid
                                           for p in scan["not_inspected_service"]),
              f"as uid 65534, the scan does not say rpsupd could not be inspected: {scan}")

        old = {w["pid"] for w in r.status()["workers"]}
        rc, _, err = r.reload("--wait")
        check(rc == 0, f"reload failed: {err}")

        last = {}

        def settled():
            rep = last["report"] = fds(r)
            pids = {pid for _, pid in holders(rep)}
            old_listeners = [s for s in rep["sockets"]
                             if s["rpsupd_holds"] and s["role"] not in ("shared", "socket-unit") and
                             s["generation"] != rep["live_generation"]]
            return rep if not (pids & old) and not old_listeners else None
        report = wait_until(settled, timeout=30)
        check(report, "the old generation's workers and listeners did not leave fds within 30s: "
                      f"{json.dumps(last['report'], indent=1)}")
        check_fields(report, r)
        hs = holders(report)
        still = {inode for inode, pid in hs if pid == foreign.pid}
        check(still == foreign_inodes, f"after the reload the outsider holds {still}, listed before {foreign_inodes}")
        for inode in still:
            s = next(s for s in report["sockets"] if s["inode"] == inode)
            h = hs[(inode, foreign.pid)]
            check(not h["expected"] and h["holder"] == "other", f"the outsider is not flagged: {h}")
            if strategy == "handoff":
                check(s["role"] == "shared" and s["rpsupd_holds"], f"handoff's shared listener: {s}")
            else:
                # Gone from rpsupd and the fd store: only the outsider keeps it open.
                check(s["role"] in ("closed", "retired") and {h["pid"] for h in s["holders"]} <= {foreign.pid,
                                                                                                     r.proc.pid},
                      f"the old listener the outsider holds: {s}")
                # A TCP listener was shut down before rpsupd closed it: it listens no more. A datagram
                # socket stays bound to the port while the outsider holds it.
                check(s["listening"] == (kind == "datagram") and
                      ("can still reach it" if kind == "datagram" else "no longer listens") in h["note"],
                      f"what the outsider's copy of an old listener still does: {s}")
        got, want = expected_holders(r, report, foreign.pid, foreign_inodes, intruder)
        check(got == want, f"after the reload fds lists {got}, the test set up {want}")
        check(report["unexpected"] == len(foreign_inodes) + (1 if intruder else 0),
              f"{report['unexpected']} unexpected after the reload")
        rc, text, err = r.ctl("fds", r.name)
        check(rc == 0 and "Unexpected: pid" in text, f"rpsupctl fds after the reload:\n{text}{err}")
        log("rpsupctl fds after the reload:\n" + text)

        foreign.stdin.close()
        foreign.wait(timeout=10)
        foreign = None
        if intruder:
            intruder.stdin.close()
            intruder.wait(timeout=10)
            intruder = None
        report = wait_until(lambda: (lambda rep: rep if rep["unexpected"] == 0 else None)(fds(r)), timeout=10,
                            what="the outsider's copies leaving fds once it exited")
        check(all(s["rpsupd_holds"] for s in report["sockets"]),
              f"sockets rpsupd no longer holds are still listed: {report['sockets']}")
        r.stop()
    finally:
        for p in (foreign, intruder):
            if p:
                p.kill()
                p.wait()
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1])
