#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Regression: label values were not escaped; worker families were interleaved under repeated HELP/TYPE.
"""`rpsupctl metrics` is the text exposition format 0.0.4 to the letter, as a Prometheus parser reads it:
label values escaped (a service named like a systemd instance, with a quote and a backslash), each family
once, with all of its samples under its own HELP and TYPE."""

import sys

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, prometheus_parser, run  # noqa: E402

# systemd's %i keeps escapes such as \x2d; the quote is what breaks an unescaped label.
NAME = 'we"b\\x2dapi'


def parse(text):
    # Label values were not escaped, and the worker families' samples were interleaved under
    # repeated HELP/TYPE blocks (filed by parsers under duplicate untyped families).
    families = list(prometheus_parser()(text))
    names = [f.name for f in families]
    dups = sorted({n for n in names if names.count(n) > 1})
    check(not dups, f"families that appear more than once: {dups}\n{text}")
    for f in families:
        check(f.type != "unknown", f"samples outside of a typed family: {f.name} {f.samples[:3]}\n{text}")
        for s in f.samples:
            check(s.name in (f.name, f.name + "_total"), f"sample {s.name} filed under family {f.name}")
            check(s.labels.get("service") == NAME, f"{s.name}: service label {s.labels.get('service')!r}, "
                  f"expected {NAME!r}")
    return {f.name: f for f in families}


def metrics(r):
    rc, out, err = r.ctl("metrics", r.name, timeout=10)
    check(rc == 0, f"rpsupctl metrics failed with {rc}: {err}")
    return out


def test():
    prometheus_parser()  # or skip
    # With per-worker listeners: the worker families that were interleaved.
    r = Rpsup(name=NAME, workers=3, strategy="drain")
    try:
        st = r.start()
        check(st["service"]["strategy"] == "drain", f"strategy {st['service']['strategy']}")
        fams = parse(metrics(r))
        for name, kind, n in (("rpsup_worker_accept_queue", "gauge", 3), ("rpsup_worker_syns", "counter", 3),
                              ("rpsup_worker_migrations", "counter", 9),
                              ("rpsup_flow_table_enabled", "gauge", 1), ("rpsup_flow_table_size", "gauge", 1),
                              ("rpsup_flow_table_flows", "gauge", 1), ("rpsup_flow_table_hits", "counter", 1),
                              ("rpsup_flow_table_new", "counter", 1), ("rpsup_flow_table_lost", "counter", 1),
                              ("rpsup_flow_table_hit_ratio", "gauge", 1), ("rpsup_worker_flow_hits", "counter", 3),
                              ("rpsup_worker_connections_last_minute", "gauge", 3),
                              ("rpsup_balance_imbalance", "gauge", 1), ("rpsup_balance_cv", "gauge", 1),
                              ("rpsup_worker_accept_queue_high_water", "gauge", 3)):
            check(name in fams and fams[name].type == kind, f"no {kind} family {name}: {sorted(fams)}")
            check(len(fams[name].samples) == n, f"{name}: {len(fams[name].samples)} samples, expected {n}")
        log(f"drain: {len(fams)} families, each once, labels intact")
        # A shadow policy adds its families (and per-worker samples), under the same rules.
        rc, out, err = r.ctl("steer", NAME, "--shadow", "hash")
        check(rc == 0, f"steer --shadow hash: {err}")
        fams = parse(metrics(r))
        for name, kind, n in (("rpsup_steering_shadow", "gauge", 2), ("rpsup_steering_shadow_imbalance", "gauge", 2),
                              ("rpsup_worker_connections_projected", "counter", 3),
                              ("rpsup_worker_shadow_share", "gauge", 6)):
            check(name in fams and fams[name].type == kind, f"no {kind} family {name}: {sorted(fams)}")
            check(len(fams[name].samples) == n, f"{name}: {len(fams[name].samples)} samples, expected {n}")
        r.stop()
    finally:
        r.cleanup()

    # Handoff: one shared queue, no per-worker families' samples, the same rules.
    r = Rpsup(name=NAME, workers=2, strategy="handoff")
    try:
        r.start()
        fams = parse(metrics(r))
        check(fams["rpsup_info"].samples[0].labels["strategy"] == "handoff", "not handoff")
        check(len(fams["rpsup_listener_accept_queue"].samples) == 1, "no listener accept queue sample")
        # No per-worker counts or queues: the balance figures are not made up.
        check("rpsup_balance_imbalance" not in fams and "rpsup_worker_connections_last_minute" not in fams,
              "handoff shows per-worker connection counts")
        check(not fams["rpsup_worker_accept_queue_high_water"].samples, "handoff shows per-worker queue marks")
        log(f"handoff: {len(fams)} families, each once, labels intact")
        r.stop()
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
