#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`rpsupctl metrics` (GetMetrics), parsed as Prometheus does, says what `rpsupctl status` says, through a
reload, a scale-out, a crashed worker and a refused reload: strategy, live generation, generations and
workers per state, target count, reloads and scales by result, worker starts and failures. (The format
itself is test-metrics-format's.)"""

import os
import signal
import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, prometheus_parser, run, wait_until  # noqa: E402


def metrics(r):
    rc, out, err = r.ctl("metrics", r.name, timeout=10)
    check(rc == 0, f"rpsupctl metrics failed with {rc}: {err}")
    samples = {}
    for family in prometheus_parser()(out):
        for s in family.samples:
            key = (s.name,) + tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))
            check(key not in samples, f"sample {key} appears twice")
            samples[key] = s.value
    return samples


def value(samples, name, **labels):
    key = (name,) + tuple(sorted(labels.items()))
    check(key in samples, f"no sample {name}{labels or ''}: {sorted(k for k in samples if k[0] == name)}")
    return samples[key]


def per_label(samples, name, label):
    """{label value: sample value} of a family's samples."""
    return {dict(k[1:])[label]: v for k, v in samples.items() if k[0] == name}


def settled(r):
    """The status once every worker is ready and no generation but the live one is left."""
    def probe():
        st = r.status()
        svc = st["service"]
        ready = [w for w in r.live_workers(st) if w["state"] == "ready"]
        return st if svc["generations"] == 1 and len(ready) == svc["workers"] == svc["ready_workers"] else None
    return wait_until(probe, what="workers ready and one generation left")


def agree(r, starts, scales=0):
    """Metrics match the status (both taken while nothing changes) and the events the test caused."""
    st = settled(r)
    m = metrics(r)
    svc = st["service"]
    info = [k for k in m if k[0] == "rpsup_info"]
    check(len(info) == 1 and dict(info[0][1:])["strategy"] == svc["strategy"],
          f"rpsup_info {info}, status strategy {svc['strategy']}")
    check(value(m, "rpsup_live_generation") == svc["live_generation"],
          f"rpsup_live_generation {value(m, 'rpsup_live_generation')}, status {svc['live_generation']}")
    check(value(m, "rpsup_workers_target") == svc["workers"],
          f"rpsup_workers_target {value(m, 'rpsup_workers_target')}, status {svc['workers']}")
    workers = per_label(m, "rpsup_workers", "state")
    check(workers.get("ready", 0) == svc["ready_workers"] and sum(workers.values()) == len(st["workers"]),
          f"rpsup_workers {workers}, status {svc['ready_workers']} ready of {len(st['workers'])}")
    generations = per_label(m, "rpsup_generations", "state")
    check(generations.get("live", 0) == 1 and sum(generations.values()) == svc["generations"],
          f"rpsup_generations {generations}, status {svc['generations']}")
    reloads = per_label(m, "rpsup_reloads_total", "result")
    check(reloads == {"promoted": svc["reloads_ok"], "failed": svc["reloads_failed"],
                      "rolled_back": svc["reloads_rolled_back"],
                      "rolled_back_by_operator": svc["reloads_rolled_back_by_operator"],
                      "refused": svc["reloads_refused"]},
          f"rpsup_reloads_total {reloads}, status ok {svc['reloads_ok']} failed {svc['reloads_failed']} "
          f"rolled back {svc['reloads_rolled_back']} + {svc['reloads_rolled_back_by_operator']} "
          f"refused {svc['reloads_refused']}")
    for name, key in (("rpsup_probe_failures_total", "probe_failures"),
                      ("rpsup_canary_percent", "canary_percent")):
        check(value(m, name) == svc[key], f"{name} {value(m, name)}, status {key} {svc[key]}")
    check(abs(value(m, "rpsup_last_reload_seconds") * 1e6 - svc["last_reload_usec"]) <= 1,
          f"rpsup_last_reload_seconds {value(m, 'rpsup_last_reload_seconds')}, status {svc['last_reload_usec']} µs")
    scaled = per_label(m, "rpsup_scales_total", "result")
    check(scaled.get("ok") == scales, f"rpsup_scales_total {scaled}, expected {scales} ok")
    check(value(m, "rpsup_worker_starts_total") == starts,
          f"rpsup_worker_starts_total {value(m, 'rpsup_worker_starts_total')}, expected {starts}")
    for name, key in (("rpsup_worker_failures_total", "worker_failures"),
                      ("rpsup_worker_retiring_failures_total", "retiring_failures"),
                      ("rpsup_watchdog_kills_total", "watchdog_kills"),
                      ("rpsup_stall_replacements_total", "stall_replacements")):
        check(value(m, name) == svc[key], f"{name} {value(m, name)}, status {key} {svc[key]}")
    slots = {k for k in m if k[0] == "rpsup_worker_accept_queue"}
    check(len(slots) == svc["workers"], f"{len(slots)} rpsup_worker_accept_queue samples, {svc['workers']} workers")
    return st


def test():
    prometheus_parser()  # or skip
    r = Rpsup(workers=2, strategy="drain", extra_service="DrainSec=1")
    try:
        r.start()
        agree(r, starts=2)
        log("at start: generation 1, 2 ready workers, no reloads")

        rc, out, err = r.reload()
        check(rc == 0, f"reload failed: {err}")
        st = agree(r, starts=4)
        check(st["service"]["live_generation"] == 2 and st["service"]["reloads_ok"] == 1,
              f"after a reload: generation {st['service']['live_generation']}, {st['service']['reloads_ok']} ok")
        log("after a reload: generation 2, reloads ok 1, 4 worker starts")

        rc, out, err = r.scale(3)
        check(rc == 0, f"scale to 3 failed: {err}")
        agree(r, starts=5, scales=1)
        log("after a scale-out: 3 workers, scales ok 1, 5 worker starts")

        victim = r.live_workers()[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: r.status()["service"]["worker_failures"] >= 1, what="the killed worker counted")
        st = agree(r, starts=6, scales=1)
        check(st["service"]["worker_failures"] == 1, f"{st['service']['worker_failures']} worker failures")
        log("after a crash: worker failures 1, 6 worker starts")

        with open(r.config) as f:
            good = f.read()
        r.write_config(good.replace("Workers=", "Workers=many\n#"))
        rc, out, err = r.reload()
        check(rc != 0, "a reload with a bad config succeeded")
        r.write_config(good)
        st = agree(r, starts=6, scales=1)
        check(st["service"]["reloads_refused"] == 1, f"{st['service']['reloads_refused']} reloads refused")
        log("after a refused reload: reloads refused 1, nothing else changed")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
