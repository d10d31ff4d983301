#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shadow steering (rpsupctl steer NAME --shadow POLICY): the steering program counts, per worker, where
POLICY would have sent each new connection, without sending it there. At 8 workers:
- hash as the shadow of round-robin: 1,600 fixed 4-tuples (8 source addresses 127.0.0.2-9, 200 fixed ports
  each, closed with a reset so that the same 4-tuple can come again at once) under round-robin; then hash is
  enforced and the same 4-tuples come again: the per-worker counts the shadow projected are those hash gave,
  within 2 % of the total (they are the same, as the hash is);
- round-robin as the shadow of hash: the per-worker counts it projects match enforced round-robin's on as
  many connections, within 2 %; its window and its counts survive an rpsupd SIGKILL and restart;
- status and metrics show the shadow, since when and who set it, both shares and both imbalances; the window
  restarts with the policy; `--shadow kernel` is refused, saying why; `--shadow off` stops the counting
  (the projected counters stand still under new connections); an unprivileged caller is refused first."""

import socket
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, parse_reply, run  # noqa: E402

WORKERS = 8
SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]
PORTS = range(42000, 42200)
TUPLES = [(a, p) for a in SOURCES for p in PORTS]  # 1,600
RR_CONNECTIONS = 1600
TOLERANCE = 0.02


def steer(r, *args, user=None):
    return r.ctl("steer", r.name, *args, user=user)


def one_request(port, source=None):
    """A request, from `source` (address, port) if given; returns the answering worker's pid. Closed with a
    reset: no TIME_WAIT keeps the 4-tuple from coming again at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.settimeout(5)
    try:
        if source:
            s.bind(source)
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


def window(r):
    """Per live worker (by slot): actual and projected new connections in the shadow's window."""
    st = r.status()
    workers = r.live_workers(st)
    check(len(workers) == WORKERS, f"{len(workers)} live workers")
    return st, {w["slot"]: w["shadow_actual"] for w in workers}, {w["slot"]: w["shadow_projected"] for w in workers}


def projected_totals(r):
    """rpsup_worker_connections_projected_total of every slot, from the metrics."""
    rc, out, err = r.ctl("metrics", r.name)
    check(rc == 0, f"metrics: {err}")
    return {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
            if line.startswith("rpsup_worker_connections_projected_total{")}, out


def compare(what, projected, enforced):
    total = sum(enforced.values())
    diffs = {slot: projected.get(slot, 0) - enforced.get(slot, 0) for slot in enforced}
    worst = max(abs(d) for d in diffs.values())
    log(f"{what}: projected {[projected.get(s, 0) for s in sorted(enforced)]}, enforced "
        f"{[enforced[s] for s in sorted(enforced)]}; largest difference {worst} of {total} "
        f"({worst / max(1, total):.3%})")
    check(sum(projected.values()) == total, f"{what}: {sum(projected.values())} projected, {total} enforced")
    check(worst <= TOLERANCE * total, f"{what}: per-worker counts differ by up to {worst} of {total}: {diffs}")
    return worst


def check_hash_shadow(r):
    rc, out, err = steer(r, "--shadow", "hash")
    check(rc == 0 and "shadow policy hash" in out, f"steer --shadow hash: {rc} {out} {err}")
    st, actual, projected = window(r)
    check(sum(actual.values()) == 0 and sum(projected.values()) == 0, f"a fresh window counts {actual} {projected}")
    for t in TUPLES:
        one_request(r.port, t)
    st, actual, projected = window(r)
    service = st["service"]
    log(f"round-robin with shadow hash, {len(TUPLES)} 4-tuples: actual {sorted(actual.values())}, projected "
        f"{sorted(projected.values())}; imbalance actual {service['steering_shadow_imbalance_actual']:.3f}, "
        f"projected {service['steering_shadow_imbalance_projected']:.3f}")
    check(service["steering"] == "round-robin" and service["steering_shadow"] == "hash", f"status: {service}")
    check(service["steering_shadow_by"] == "uid 0", f"shadow by {service['steering_shadow_by']}")
    check(sum(actual.values()) == len(TUPLES), f"{sum(actual.values())} actual of {len(TUPLES)}")
    check(max(actual.values()) - min(actual.values()) <= 2 * 4, f"round-robin was not round: {actual}")
    check(len(set(projected.values())) > 1, f"hash projected the exact shares of round-robin: {projected}")
    expected = max(projected.values()) / min(projected.values())
    check(abs(service["steering_shadow_imbalance_projected"] - expected) < 1e-6,
          f"projected imbalance {service['steering_shadow_imbalance_projected']}, counts give {expected}")
    shares = [w["shadow_projected_share"] for w in r.live_workers(st)]
    check(abs(sum(shares) - 1) < 1e-6, f"projected shares add up to {sum(shares)}")
    rc, text, err = r.ctl("status", r.name)
    check(rc == 0 and "Shadow: hash since" in text and "by uid 0" in text and "PROJECTED" in text,
          f"status text:\n{text}")
    log("status: " + next(line.strip() for line in text.splitlines() if "Shadow:" in line))

    # Enforced: the same 4-tuples again. Setting the policy restarts the shadow's window.
    rc, out, err = steer(r, "hash")
    check(rc == 0, f"steer hash: {err}")
    for t in TUPLES:
        one_request(r.port, t)
    st, enforced, again = window(r)
    diff = compare("hash: projected under round-robin vs enforced on the same 4-tuples", projected, enforced)
    check(again == enforced, f"under hash, shadow hash projected {again}, hash gave {enforced}")
    return diff


def check_round_robin_shadow(r):
    rc, out, err = steer(r, "--shadow", "round-robin")
    check(rc == 0, f"steer --shadow round-robin: {err}")
    before = r.status()["service"]
    for _ in range(RR_CONNECTIONS // 2):
        one_request(r.port)
    # The shadow, its window and its counts survive an rpsupd restart (fd store, state file).
    r.kill_rpsupd()
    r.systemd.sync()
    r.start(fds=r.systemd.stored())
    st, actual, projected = window(r)
    service = st["service"]
    check(service["steering_shadow"] == "round-robin" and service["steering_shadow_by"] == "uid 0",
          f"after an rpsupd restart: shadow {service['steering_shadow']} by {service['steering_shadow_by']}")
    # Shown in wall-clock time, converted from the monotonic clock at each call: two clock reads apart, which a
    # busy machine may stretch; a window started afresh would be seconds off.
    check(abs(service["steering_shadow_since_usec"] - before["steering_shadow_since_usec"]) < 200000,
          f"the window began at {before['steering_shadow_since_usec']}, after the restart at "
          f"{service['steering_shadow_since_usec']}")
    check(sum(projected.values()) == RR_CONNECTIONS // 2, f"after the restart the window counts "
          f"{sum(projected.values())} projected, {RR_CONNECTIONS // 2} were made")
    for _ in range(RR_CONNECTIONS - RR_CONNECTIONS // 2):
        one_request(r.port)
    st, actual, projected = window(r)
    log(f"hash with shadow round-robin, {RR_CONNECTIONS} connections: actual {sorted(actual.values())}, "
        f"projected {sorted(projected.values())}")
    rc, out, err = steer(r, "round-robin")
    check(rc == 0, f"steer round-robin: {err}")
    for _ in range(RR_CONNECTIONS):
        one_request(r.port)
    st, enforced, _ = window(r)
    return compare("round-robin: projected under hash vs enforced", projected, enforced)


def check_metrics(r):
    totals, text = projected_totals(r)
    check(len(totals) >= WORKERS, f"{len(totals)} projected counters:\n{text}")
    for line in ('rpsup_steering_shadow{service="%s",policy="round-robin"} 1' % r.name,
                 'rpsup_steering_shadow{service="%s",policy="hash"} 0' % r.name):
        check(line in text, f"no {line!r} in the metrics")
    for kind in ("actual", "projected"):
        check(f'rpsup_steering_shadow_imbalance{{service="{r.name}",kind="{kind}"}}' in text,
              f"no {kind} imbalance in the metrics")
        check(text.count(f'kind="{kind}"}}') >= WORKERS + 1, f"no per-worker {kind} shares in the metrics")


def check_off(r):
    rc, out, err = steer(r, "--shadow", "off")
    check(rc == 0, f"steer --shadow off: {err}")
    before, _ = projected_totals(r)
    for _ in range(200):
        one_request(r.port)
    after, text = projected_totals(r)
    service = r.status()["service"]
    check(service["steering_shadow"] == "off" and service["steering_shadow_connections"] == 0,
          f"status after --shadow off: {service['steering_shadow']}")
    check(after == before, f"the projected counters moved after --shadow off: {before} -> {after}")
    check(f'rpsup_steering_shadow{{service="{r.name}",policy="hash"}} 0' in text and
          "rpsup_steering_shadow_imbalance" not in text, "the metrics still show a shadow")
    log("--shadow off: 200 new connections, the projected counters stood still")


def test():
    r = Rpsup(workers=WORKERS, strategy="migrate", soak=0)
    try:
        r.start(with_systemd=True)
        r.systemd.wait_for("READY", "1")
        st = r.status()["service"]
        check(st["steering_shadow"] == "off", f"at start: shadow {st['steering_shadow']}")

        # Refusals: the caller before the argument; kernel, with the reason; an unknown name.
        rc, out, err = steer(r, "--shadow", "kernel", user=65534)
        check(rc == 1 and "not allowed" in err, f"an unprivileged --shadow: {rc} {err}")
        rc, out, err = steer(r, "--shadow", "kernel")
        check(rc == 1 and "cannot be shadowed" in err and "kernel" in err, f"--shadow kernel: {rc} {err}")
        log(f"--shadow kernel: {err.strip()}")
        rc, out, err = steer(r, "--shadow", "fair")
        check(rc == 1 and "is not a shadow policy" in err, f"--shadow fair: {rc} {err}")
        rc, out, err = r.ctl("status", r.name, "--shadow", "hash")
        check(rc == 2 and "option of \"steer\" only" in err, f"status --shadow: {rc} {err}")

        hash_diff = check_hash_shadow(r)
        rr_diff = check_round_robin_shadow(r)
        rc, out, err = steer(r, "hash", "--shadow", "round-robin")
        check(rc == 0, f"steer hash --shadow round-robin: {err}")
        for _ in range(100):
            one_request(r.port)
        check_metrics(r)
        check_off(r)
        log(f"largest per-worker difference, projected vs enforced: hash {hash_diff} of {len(TUPLES)}, "
            f"round-robin {rr_diff} of {RR_CONNECTIONS}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
