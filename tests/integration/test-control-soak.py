#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The control surface of a soak: `rpsupctl reload --canary` and `--no-soak`, `promote` and `rollback`, and
what `status`, `--json` and `metrics` say during a soak and after it (the deadline, the canary's share and
the connections steered to each generation; how the last reload ended and who decided); who may call them;
usage errors; ReloadWithOptions refuses options it does not know; a canary under handoff is refused. (That
a soak catches failures, and the canary's accuracy under load, are other tests'.)"""

import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import RPSUPCTL, Rpsup, check, log, request, run, wait_until  # noqa: E402


def metrics(r):
    rc, out, err = r.ctl("metrics", r.name, timeout=10)
    check(rc == 0, f"rpsupctl metrics failed with {rc}: {err}")
    return out


def reload_in_background(r, *args):
    return subprocess.Popen([RPSUPCTL, "--runtime-dir", r.runtime, "reload", r.name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def soaking(r, generation):
    def probe():
        st = r.status()
        return st if st["service"]["soak_generation"] == generation else None
    return wait_until(probe, what=f"generation {generation} soaking")


def options_body(key, value):
    """a{sv} with one boolean entry, marshalled by hand (little-endian; the body starts 8-aligned)."""
    k = key.encode()
    entry = struct.pack("<I", len(k)) + k + b"\0" + b"\1b\0"
    entry += b"\0" * (-len(entry) % 4) + struct.pack("<I", value)
    return struct.pack("<I", len(entry)) + b"\0" * 4 + entry


def refusals(r):
    for args, code, says in ((("promote", r.name), 1, "soak"), (("rollback", r.name), 1, "soak"),
                             (("reload", r.name, "--canary", "0"), 2, "percentage"),
                             (("reload", r.name, "--canary", "101"), 2, "percentage"),
                             (("reload", r.name, "--canary", "10", "--no-soak"), 2, "no-soak"),
                             (("status", r.name, "--no-soak"), 2, "reload")):
        rc, out, err = r.ctl(*args)
        check(rc == code and says in err, f"rpsupctl {' '.join(args)}: exit {rc} (expected {code}): {err}")
    for verb in ("promote", "rollback"):
        rc, out, err = r.ctl(verb, r.name, user=65534)
        check(rc == 1 and "only root" in err, f"{verb} as nobody exited {rc}: {err}")
    rc, out, err = r.ctl("reload", r.name, "--no-soak", user=65534)
    check(rc == 1 and "only root" in err, f"reload --no-soak as nobody exited {rc}: {err}")
    c = rawdbus.Client(rawdbus.control_path(r)).connect_and_auth()
    reply = c.call("ReloadWithOptions", signature="a{sv}", body=options_body("bogus", 1))
    check(reply["type"] == rawdbus.ERROR and reply.get("error_name") == "io.rpsup.Error.InvalidArgument"
          and "bogus" in reply["body"][0], f"an unknown option: {reply}")
    reply = c.call("Rollback")
    check(reply["type"] == rawdbus.ERROR and reply.get("error_name") == "io.rpsup.Error.NotSoaking",
          f"Rollback without a soak: {reply}")
    c.close()
    check(r.status()["service"]["live_generation"] == 1, "a refused call changed the live generation")
    log("refused: promote/rollback without a soak, bad --canary, as nobody, an unknown option")


def ready_pending(r, since):
    """Whether systemd was told RELOADING=1 after `since` and no READY=1 after it yet."""
    r.systemd.sync()
    with r.systemd.lock:
        seen = r.systemd.messages[since:]
    reloading = [i for i, m in enumerate(seen) if m.get("RELOADING") == "1"]
    return bool(reloading) and not any(m.get("READY") == "1" for m in seen[reloading[-1]:])


def canary_then_promote(r):
    since = len(r.systemd.messages)
    p = reload_in_background(r, "--canary", "10")
    st = soaking(r, 2)
    check(ready_pending(r, since), "systemd was told READY=1 before the soak ended")
    svc = st["service"]
    now = time.time() * 1e6
    check(svc["soak_warm_generation"] == 1 and svc["canary_percent"] == 10, f"soak: {svc}")
    check(svc["soak_started_usec"] <= now < svc["soak_deadline_usec"] <= now + 61e6, f"soak times: {svc}")
    states = {g["id"]: g["state"] for g in st["generations"]}
    check(states == {1: "warm", 2: "soaking"}, f"generations during the soak: {states}")
    for _ in range(50):
        request(r.port)
    st = wait_until(lambda: (lambda s: s if s["service"]["soak_steered"] + s["service"]["soak_warm_steered"] >= 50
                             else None)(r.status()), what="50 connections counted")
    svc = st["service"]
    steered = {g["id"]: g["steered"] for g in st["generations"]}
    check(steered == {1: svc["soak_warm_steered"], 2: svc["soak_steered"]}, f"steered {steered}, {svc}")
    rc, out, err = r.ctl("status", r.name)
    check(rc == 0 and "Soak: generation 2 on probation until" in out and "canary 10 %:" in out
          and "generation 1 warm" in out, f"status during the soak:\n{out}{err}")
    text = metrics(r)
    check('rpsup_canary_percent{service="web"} 10' in text and 'generation="2",state="soaking"' in text
          and 'generation="1",state="warm"' in text, f"metrics during the soak:\n{text}")
    check('rpsup_soak_deadline_seconds{service="web"} 0.000' not in text, "no soak deadline in the metrics")
    rc, out, err = r.ctl("reload", r.name)
    check(rc == 1 and "soak" in err, f"a reload during the soak exited {rc}: {out}{err}")
    log(f"soaking with a canary of 10 %: {svc['soak_steered']} of "
        f"{svc['soak_steered'] + svc['soak_warm_steered']} connections to generation 2; a second reload refused")

    check(ready_pending(r, since), "systemd was told READY=1 during the soak")
    rc, out, err = r.ctl("promote", r.name)
    check(rc == 0 and "generation 2 promoted" in out, f"promote exited {rc}: {out}{err}")
    out, err = p.communicate(timeout=30)
    check(p.returncode == 0 and "generation 2" in out, f"the promoted reload exited {p.returncode}: {out}{err}")
    wait_until(lambda: not ready_pending(r, since), what="READY=1 to systemd after the soak")
    svc = r.status()["service"]
    check(svc["soak_generation"] == 0 and svc["live_generation"] == 2 and svc["reloads_ok"] == 1
          and svc["last_reload_outcome"] == "promoted" and svc["last_reload_generation"] == 2
          and svc["last_reload_previous"] == 1 and "via rpsupctl" in svc["last_reload_by"], f"after promote: {svc}")
    log(f"promoted: the reload exited 0, systemd told READY=1 then; last reload by \"{svc['last_reload_by']}\"")


def rollback(r):
    p = reload_in_background(r)
    soaking(r, 3)
    rc, out, err = r.ctl("--json", "rollback", r.name)
    check(rc == 0 and '"generation": 2' in out, f"rollback exited {rc}: {out}{err}")
    out, reload_err = p.communicate(timeout=30)
    check(p.returncode == 1 and "rolled back" in reload_err,
          f"the rolled-back reload exited {p.returncode}: {out}{reload_err}")
    svc = r.status()["service"]
    check(svc["live_generation"] == 2 and svc["reloads_rolled_back_by_operator"] == 1
          and svc["last_reload_outcome"] == "rolled-back" and svc["last_reload_generation"] == 3
          and svc["last_reload_by"].startswith(f"uid {os.getuid()} via rpsupctl"), f"after rollback: {svc}")
    rc, out, err = r.ctl("status", r.name)
    check(rc == 0 and "Last reload: generation 3 rolled back at " in out and "by uid" in out
          and "1 rolled back (1 by an operator)" in out, f"status after the rollback:\n{out}{err}")
    check('rpsup_reloads_total{service="web",result="rolled_back_by_operator"} 1' in metrics(r), "metrics")
    log(f"rolled back: the reload exited 1: {reload_err.strip()}")

    rc, out, err = r.ctl("reload", r.name, "--no-soak")
    svc = r.status()["service"]
    check(rc == 0 and svc["live_generation"] == 4 and svc["soak_generation"] == 0, f"--no-soak: {rc} {err} {svc}")
    log("--no-soak: generation 4 live at once")


def handoff_canary():
    r = Rpsup(workers=1, strategy="handoff", name="one", soak=60)
    try:
        r.start()
        rc, out, err = r.ctl("reload", r.name, "--canary", "10")
        check(rc == 1 and "Strategy=drain or migrate" in err, f"a canary under handoff: exit {rc}: {err}")
        check(r.status()["service"]["live_generation"] == 1, "a refused canary changed the live generation")
        log(f"handoff refuses a canary: {err.strip()}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test():
    r = Rpsup(workers=2, strategy="drain", soak=60)
    try:
        r.start(with_systemd=True)
        refusals(r)
        canary_then_promote(r)
        rollback(r)
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()
    handoff_canary()


if __name__ == "__main__":
    run(test)
