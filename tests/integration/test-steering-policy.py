#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Steering policies, per service, switched at run time (rpsupctl steer) and by the config (Steering=):
- round-robin: 8 workers get equal shares of new connections, ± 1 % (per-worker `syns` in status);
- hash: a given 4-tuple (fixed source port) always reaches the same worker while the workers stay;
- kernel: a socket of the same uid from outside that joins the reuseport group gets connections, and
  status says so (its count, the note); back to round-robin it gets nothing;
- 10 switches under client load (round-robin -> hash -> kernel -> round-robin ...) lose no connection;
- status and metrics say which policy runs, since when and who set it; an unprivileged caller is refused
  before its argument is looked at, an unknown policy is refused, and so is a canary under kernel and kernel
  during a canary (hash composes with a canary);
- the policy and who set it survive an rpsupd SIGKILL and restart (fd store and state file), and a reload
  applies a changed Steering= (the last action wins) but leaves a run-time choice when it did not change."""

import socket
import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import RPSUPCTL, Load, Rpsup, check, log, parse_reply, request, run, wait_until  # noqa: E402

WORKERS = 8
RR_CONNECTIONS = 8000
SWITCHES = ["hash", "kernel", "round-robin"] * 3 + ["hash"]  # 10 switches from round-robin


def steer(r, policy, user=None):
    return r.ctl("steer", r.name, policy, user=user)


def syns_by_pid(r):
    return {w["pid"]: w["syns"] for w in r.live_workers()}


def one_request(port, source_port):
    """A request from 127.0.0.1:source_port; returns the answering worker's pid. Closed with a reset, so
    that no TIME_WAIT keeps the 4-tuple from being used again at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.settimeout(5)
    try:
        s.bind(("127.0.0.1", source_port))
        s.connect(("127.0.0.1", port))
        s.sendall(b"hello\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1024)
            if not chunk:
                break
            buf += chunk
        return int(parse_reply(buf.decode().strip())["pid"])
    finally:
        s.close()


def metric(r, name, labels):
    rc, out, err = r.ctl("metrics", r.name)
    check(rc == 0, f"metrics: {err}")
    for line in out.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in the metrics")


def check_round_robin_shares(r):
    before = syns_by_pid(r)
    load = Load(r.port, concurrency=8, interval_ms=100)
    try:
        load.wait_for(f"{RR_CONNECTIONS} answered connections",
                      lambda iv: sum(i["ok"] for i in iv) >= RR_CONNECTIONS, timeout=60)
    finally:
        report = load.stop()
    check(report["failed"] == 0, f"round-robin load: {report}")
    after = syns_by_pid(r)
    counts = {pid: after[pid] - before.get(pid, 0) for pid in after}
    total = sum(counts.values())
    mean = total / len(counts)
    shares = sorted(c / total for c in counts.values())
    log(f"round-robin, {WORKERS} workers, {total} connections: per worker {sorted(counts.values())}; shares "
        f"{', '.join(f'{s:.3%}' for s in shares)}; max/min {max(counts.values()) / max(1, min(counts.values())):.4f}")
    check(len(counts) == WORKERS, f"{len(counts)} live workers")
    check(total >= RR_CONNECTIONS, f"status counted {total} connections, the load made {report['ok']}")
    for pid, c in counts.items():
        check(abs(c - mean) <= 0.01 * mean, f"worker {pid} got {c} connections, {c / mean - 1:+.2%} off the "
              f"equal share {mean:.1f}: {counts}")


def check_hash_affinity(r):
    rc, out, err = steer(r, "hash")
    check(rc == 0, f"steer hash: {err}")
    flows = {}
    for i in range(32):
        port = 40000 + i
        pids = {one_request(r.port, port) for _ in range(5)}
        check(len(pids) == 1, f"the flow from port {port} reached {len(pids)} workers under hash: {pids}")
        flows[port] = pids.pop()
    spread = len(set(flows.values()))
    log(f"hash: 32 flows, 5 connections each, each to one worker; {spread} of {WORKERS} workers got flows")
    check(spread >= 4, f"32 flows reached only {spread} workers under hash")
    return flows


def check_kernel_foreign(r):
    rc, out, err = steer(r, "kernel")
    check(rc == 0, f"steer kernel: {err}")
    intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    intruder.bind(("127.0.0.1", r.port))
    intruder.listen(512)
    intruder.setblocking(False)

    def accept_all():
        n = 0
        while True:
            try:
                c, _ = intruder.accept()
                c.close()
                n += 1
            except BlockingIOError:
                return n

    def connect_many(n):
        conns = [socket.create_connection(("127.0.0.1", r.port), timeout=5) for _ in range(n)]
        stolen = accept_all()
        for c in conns:
            c.close()
        return stolen

    try:
        stolen = connect_many(300)
        st = r.status()["service"]
        log(f"kernel: the outsider took {stolen} of 300 connections; status: {st['steering_note']!r}, "
            f"{st['steering_foreign_listeners']} foreign listener(s), {st['steering_kernel_connections']} "
            f"connections left to the kernel")
        check(stolen > 0, "under kernel, the outsider in the reuseport group got no connection")
        check(st["steering"] == "kernel", f"status says steering {st['steering']}")
        check(st["steering_foreign_listeners"] == 1,
              f"status counts {st['steering_foreign_listeners']} foreign listeners")
        check("1 listener not rpsupd's gets a share" in st["steering_note"], f"status note: {st['steering_note']}")
        check(st["steering_kernel_connections"] >= 300, f"{st['steering_kernel_connections']} kernel connections")
        rc, out, err = r.ctl("status", r.name)
        check(rc == 0 and "Steering: kernel" in out and "not rpsupd's" in out, f"status text:\n{out}")

        rc, out, err = steer(r, "round-robin")
        check(rc == 0, f"steer round-robin: {err}")
        stolen = connect_many(300)
        check(stolen == 0, f"back under round-robin, the outsider took {stolen} of 300 connections")
        st = r.status()["service"]
        check(st["steering_foreign_listeners"] == 1 and "not rpsupd's" not in st["steering_note"],
              f"round-robin note: {st['steering_note']}")
    finally:
        intruder.close()


def check_switching_under_load(r):
    load = Load(r.port, concurrency=8, interval_ms=100)
    try:
        load.wait_answered()
        for policy in SWITCHES:
            done = sum(i["ok"] for i in load.intervals())
            rc, out, err = steer(r, policy)
            check(rc == 0, f"steer {policy} under load: {err}")
            # Each policy serves a few hundred connections before the next switch.
            load.wait_for(f"connections under {policy}",
                          lambda iv: sum(i["ok"] for i in iv) >= done + 300, timeout=20)
    finally:
        report = load.stop()
    log(f"{len(SWITCHES)} switches under load: {report['ok']} answered, {report['failed']} failed")
    check(report["failed"] == 0, f"connections lost while switching policies: {report}")
    check(report["ok"] >= 300 * len(SWITCHES), f"load: {report}")


def test():
    r = Rpsup(workers=WORKERS, strategy="migrate", soak=0)
    try:
        r.start(with_systemd=True)
        r.systemd.wait_for("READY", "1")
        st = r.status()["service"]
        check(st["steering"] == "round-robin" and st["steering_by"] == "config", f"at start: {st['steering']} "
              f"by {st['steering_by']}")
        check(metric(r, "rpsup_steering_policy", {"policy": "round-robin"}) == 1, "round-robin metric is not 1")

        # Refusals: the caller first, then the argument; kernel during a canary.
        rc, out, err = steer(r, "no-such-policy", user=65534)
        check(rc == 1 and "not allowed" in err, f"an unprivileged steer: {rc} {err}")
        rc, out, err = steer(r, "no-such-policy")
        check(rc == 1 and "is not a steering policy" in err, f"an unknown policy: {rc} {err}")

        check_round_robin_shares(r)
        check_switching_under_load(r)
        st = r.status()["service"]
        check(st["steering"] == "hash" and st["steering_by"] == "uid 0", f"after the switches: {st['steering']} "
              f"by {st['steering_by']}")
        check(st["steering_changes"] == len(SWITCHES), f"{st['steering_changes']} changes counted")
        check(metric(r, "rpsup_steering_policy_changes_total", {}) == len(SWITCHES), "changes metric")
        check(metric(r, "rpsup_steering_policy", {"policy": "hash"}) == 1, "hash metric is not 1")
        check(metric(r, "rpsup_steering_policy", {"policy": "round-robin"}) == 0, "round-robin metric is not 0")

        check_kernel_foreign(r)
        flows = check_hash_affinity(r)

        # ---- an rpsupd restart keeps the policy, who set it and since when; flows keep their worker ----
        before = r.status()["service"]
        r.kill_rpsupd()
        r.systemd.sync()
        r.start(fds=r.systemd.stored())
        st = r.status()["service"]
        log(f"after an rpsupd restart: {st['steering']} by {st['steering_by']} since {st['steering_since_usec']}")
        check(st["steering"] == "hash" and st["steering_by"] == "uid 0", f"after a restart: {st['steering']} by "
              f"{st['steering_by']}")
        check(abs(st["steering_since_usec"] - before["steering_since_usec"]) < 1000,
              f"since {before['steering_since_usec']} became {st['steering_since_usec']}")
        for port, pid in list(flows.items())[:8]:
            check(one_request(r.port, port) == pid, f"the flow from port {port} moved across the rpsupd restart")

        # ---- reloads: the same Steering= leaves the run-time choice; a changed one applies ----
        rc, out, err = r.reload()
        check(rc == 0, f"reload: {err}")
        st = r.status()["service"]
        check(st["steering"] == "hash" and st["steering_by"] == "uid 0", f"a reload without a change of Steering= "
              f"replaced the run-time choice: {st['steering']} by {st['steering_by']}")
        text = open(r.config).read().replace("[Service]\n", "[Service]\nSteering=kernel\n", 1)
        r.write_config(text)
        rc, out, err = r.reload()
        check(rc == 0, f"reload with Steering=kernel: {err}")
        st = r.status()["service"]
        check(st["steering"] == "kernel" and st["steering_by"] == "config", f"after a reload with Steering=kernel: "
              f"{st['steering']} by {st['steering_by']}")
        # kernel leaves no share to a canary: refused before anything starts.
        r.write_config(text.replace("SoakSec=0\n", "SoakSec=30\n"))
        rc, out, err = r.reload("--canary", "10")
        check(rc == 1 and "policy kernel" in err, f"a canary under kernel: {rc} {err}")
        rc, out, err = steer(r, "round-robin")
        check(rc == 0, f"steer round-robin: {err}")
        # During a canary: kernel is refused, hash composes with it (the share first, then the policy).
        rl = subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name, "--canary", "50"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: r.status()["service"]["canary_percent"] == 50, timeout=15, what="the canary's soak")
        rc, out, err = steer(r, "kernel")
        check(rc == 1 and "a canary runs" in err, f"kernel during a canary: {rc} {err}")
        rc, out, err = steer(r, "hash")
        check(rc == 0, f"hash during a canary: {err}")
        generations = {int(parse_reply(request(r.port))["generation"]) for _ in range(100)}
        check(len(generations) == 2, f"under hash, a 50 % canary's connections went to generations {generations}")
        rc, out, err = r.ctl("promote", r.name)
        check(rc == 0, f"promote: {err}")
        out, err = rl.communicate(timeout=30)
        check(rl.returncode == 0, f"the canary's reload: {err}")
        wait_until(lambda: all(w["state"] == "ready" for w in r.live_workers()), timeout=15)
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
