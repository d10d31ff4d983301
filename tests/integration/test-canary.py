#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Canaries: `reload --canary 10` gives the new generation 10 % (± 1 %) of 20,000 new connections during
its soak and the previous generation the rest; `promote` and `rollback` take effect at once (the next
connections all go to one generation); and a canary whose workers start failing mid-soak is rolled back
without anyone asking, with the client load seeing no failure."""

import subprocess
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import (RPSUPCTL, WORKER, Load, Rpsup, check, log, parse_reply, request, run,  # noqa: E402
                       wait_until)

CONNECTIONS = 20000


def generations_of(port, n):
    seen = {}
    for _ in range(n):
        g = int(parse_reply(request(port))["generation"])
        seen[g] = seen.get(g, 0) + 1
    return seen


def reload_in_background(r, *args):
    return subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_soaking(r, generation):
    return wait_until(lambda: (lambda st: st if st["service"]["soak_generation"] == generation else None)(r.status()),
                      15, f"generation {generation} soaking")


def test(strategy):
    # A long soak: the test ends each one itself.
    r = Rpsup(workers=2, strategy=strategy, soak=120)
    try:
        r.start()
        good = open(r.config).read()

        # ---- 10 % to the canary ----
        rl = reload_in_background(r, "--canary", "10")
        st = wait_soaking(r, 2)
        check(st["service"]["canary_percent"] == 10, f"canary_percent is {st['service']['canary_percent']}")
        load = Load(r.port, concurrency=8, interval_ms=100)
        try:
            load.wait_for(f"{CONNECTIONS} answered connections",
                          lambda iv: sum(i["ok"] for i in iv) >= CONNECTIONS, timeout=120)
        finally:
            report = load.stop()
        gens = {int(g): n for g, n in report["generations"].items()}
        total = sum(gens.values())
        share = gens.get(2, 0) / total
        st = r.status()
        svc = st["service"]
        log(f"canary 10 %: generation 2 answered {gens.get(2, 0)} of {total} connections ({share:.2%}); "
            f"rpsupd counted {svc['soak_steered']} to it and {svc['soak_warm_steered']} to generation 1")
        check(report["failed"] == 0, f"{report['failed']} connections failed during the canary: {report}")
        check(total >= CONNECTIONS and set(gens) <= {1, 2}, f"answers by generation: {gens}")
        check(0.09 <= share <= 0.11, f"the canary got {share:.2%} of new connections, expected 10 % ± 1 %")
        measured = svc["soak_steered"] / max(1, svc["soak_steered"] + svc["soak_warm_steered"])
        check(abs(measured - share) < 0.01, f"status says {measured:.2%}, the clients saw {share:.2%}")
        check(svc["soak_steered"] + svc["soak_warm_steered"] >= total, "status counted fewer connections")

        # ---- promote: at once, everything to generation 2 ----
        rc, out, err = r.ctl("promote", r.name)
        check(rc == 0, f"promote exited {rc}: {err}")
        seen = generations_of(r.port, 200)
        check(seen == {2: 200}, f"after promote the next 200 connections went to {seen}")
        out, err = rl.communicate(timeout=30)
        check(rl.returncode == 0, f"the promoted reload exited {rl.returncode}: {err}")
        st = r.status()
        check(st["service"]["last_reload_outcome"] == "promoted", f"outcome: {st['service']['last_reload_outcome']}")
        check(st["service"]["soak_generation"] == 0, "still soaking after promote")

        # ---- rollback: at once, everything back to generation 2 ----
        rl = reload_in_background(r, "--canary", "50")
        wait_soaking(r, 3)
        check(set(generations_of(r.port, 100)) == {2, 3}, "a 50 % canary did not split")
        rc, out, err = r.ctl("rollback", r.name)
        check(rc == 0, f"rollback exited {rc}: {err}")
        seen = generations_of(r.port, 200)
        check(seen == {2: 200}, f"after rollback the next 200 connections went to {seen}")
        out, err = rl.communicate(timeout=30)
        log(err.strip())
        check(rl.returncode == 1 and "rolled back" in err, f"the rolled-back reload exited {rl.returncode}: {err}")
        st = r.status()
        check(st["service"]["live_generation"] == 2, f"live generation {st['service']['live_generation']}")
        check(st["service"]["last_reload_outcome"] == "rolled-back", "outcome is not rolled-back")
        check(st["service"]["reloads_rolled_back_by_operator"] == 1, "the operator's rollback was not counted")

        # ---- a canary that starts failing mid-soak: rolled back by rpsupd, no client failure ----
        r.write_config(good.replace(f"ExecStart={WORKER}", f"ExecStart={WORKER} --exit-after 1500"))
        load = Load(r.port, concurrency=8)
        try:
            load.wait_answered()
            rl = reload_in_background(r, "--canary", "10")
            out, err = rl.communicate(timeout=60)
        finally:
            report = load.stop()
        log(err.strip())
        check(rl.returncode == 1, f"a failing canary's reload exited {rl.returncode}: {err}")
        check("failed during its soak" in err and "exited with status 3" in err, f"no reason given: {err}")
        st = r.status()
        check(st["service"]["live_generation"] == 2, f"live generation {st['service']['live_generation']}")
        check(st["service"]["last_reload_by"] == "rpsupd", f"decided by {st['service']['last_reload_by']}")
        check(st["service"]["reloads_rolled_back"] == 1, "the automatic rollback was not counted")
        log(f"load across the failing canary: {report['ok']} ok, {report['failed']} failed, "
            f"generations {report['generations']}")
        check(report["failed"] == 0, f"{report['failed']} connections failed across the failing canary: {report}")
        check(generations_of(r.port, 50) == {2: 50}, "generation 2 does not take every connection again")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test, sys.argv[1] if len(sys.argv) > 1 else "migrate")
