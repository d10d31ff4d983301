# SPDX-License-Identifier: LGPL-2.1-or-later
"""The inside of a system test: runs in the container as a unit of systemd 252 (PID 1), drives rpsup@web
with systemctl and rpsupctl, checks, writes /out/result.json and powers the container off.

    guest.py SCENARIO STRATEGY"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from rpsuptest import Failed, Load, check, parse_reply, request  # noqa: E402

WORKER = os.environ.get("RPSUP_EXAMPLE_WORKER", "/usr/local/bin/rpsup-example-worker")
PORT = 8080
UNIT = "rpsup@web.service"


def log(*args):
    print(*args, flush=True)


def sh(*argv, timeout=120):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def systemctl(*args, timeout=120):
    return sh("systemctl", *args, timeout=timeout)


def prop(name, unit=UNIT):
    return systemctl("show", "-P", name, unit)[1].strip()


def journal(unit=UNIT, lines=60):
    return sh("journalctl", "--no-pager", "-o", "cat", "-u", unit, "-n", str(lines))[1]


def write_config(strategy, extra="", worker_args="", workers=2):
    with open("/etc/rpsup/web.conf", "w") as f:
        f.write(f"""[Service]
ExecStart={WORKER} {worker_args}
Workers={workers}
Strategy={strategy}
ReadyTimeoutSec=10
StopTimeoutSec=5
{extra}

[Socket]
ListenStream={PORT}
""")


def status():
    rc, out, err = sh("rpsupctl", "--json", "status", "web")
    check(rc == 0, f"rpsupctl status exited {rc}: {err}")
    return json.loads(out)


def live_pids(st):
    live = st["service"]["live_generation"]
    return sorted(w["pid"] for w in st["workers"] if w["generation"] == live and not w["retiring"] and w["pid"])


def wait_for(what, cond, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise Failed(f"{what} did not happen within {timeout}s")


def start(strategy):
    rc, out, err = systemctl("start", UNIT)
    check(rc == 0, f"systemctl start {UNIT} exited {rc}: {err}\n{journal()}")
    st = status()
    log(f"started: {st['service']['strategy']} ({st['service']['strategy_reason']})")
    if strategy != "auto":
        check(st["service"]["strategy"] == strategy, f"the service runs {st['service']['strategy']}")
    return st


def load_report(load, what):
    report = load.stop()
    log(f"{what}: {report['ok']} ok, {report['failed']} failed (refused {report['refused']}, reset "
        f"{report['reset']}, timeout {report['timeout']}), {report['rate_per_s']:.0f}/s; kernel {report['kernel']}")
    return report


# ---- scenarios ----

def notify_start(strategy):
    """Type=notify: active only once the workers are ready; rpsupd and its workers in the unit's cgroup;
    STATUS= readable."""
    write_config(strategy, worker_args="--ready-delay 1500")
    states = []

    def watch():
        while not states or states[-1] != "active":
            states.append(systemctl("is-active", UNIT)[1].strip())
            time.sleep(0.1)

    t0 = time.monotonic()
    w = threading.Thread(target=watch)
    w.start()
    st = start(strategy)
    took = time.monotonic() - t0
    w.join(timeout=10)
    log(f"systemctl start returned after {took:.2f} s; states seen: {sorted(set(states))}")
    check(took >= 1.4, f"systemctl start returned after {took:.2f} s, before the workers were ready (1.5 s)")
    check("activating" in states, "the unit was never seen activating while the workers got ready")
    check(prop("ActiveState") == "active" and prop("SubState") == "running", "the unit is not active/running")
    text = prop("StatusText")
    log(f"StatusText: {text}")
    check("Generation 1 serving: 2/2 workers ready" in text, f"StatusText is {text!r}")

    main = int(prop("MainPID"))
    cgroup = prop("ControlGroup")

    def in_unit(pid, below):
        """In the unit's cgroup, below it in cgroup `below` (Delegate=yes: rpsupd's leaf, a worker's own)."""
        paths = [line.rstrip().split(":", 2)[2] for line in open(f"/proc/{pid}/cgroup")]
        return any(p.startswith(cgroup + "/") and below(p[len(cgroup) + 1:]) for p in paths)

    log(f"cgroup {cgroup}: MainPID {main}, workers {live_pids(st)}")
    check(in_unit(main, lambda sub: sub == "supervisor") and
          all(in_unit(p, lambda sub: sub.startswith("gen-1/worker-")) for p in live_pids(st)),
          "rpsupd is not in the unit's supervisor leaf, or its workers are not in generation 1's cgroups")
    rc, out, _ = systemctl("status", "--no-pager", "-l", UNIT)
    check("rpsupd web" in out and out.count("rpsup-example-worker") >= 2, f"systemctl status shows:\n{out}")
    check(parse_reply(request(PORT))["generation"] == "1", "the service does not answer")


def socket_activation(strategy):
    """With rpsup@web.socket started and the service not running, a client starts it and is answered; rpsupd
    adopts the socket by FileDescriptorName=."""
    write_config(strategy)
    rc, out, err = systemctl("start", "rpsup@web.socket")
    check(rc == 0, f"systemctl start rpsup@web.socket: {err}")
    check(prop("ActiveState") == "inactive", "the service runs before any connection")
    reply = request(PORT, timeout=20)
    log(f"first connection answered: {reply}")
    check(parse_reply(reply)["generation"] == "1", f"unexpected reply {reply}")
    wait_for("the service to be active", lambda: prop("ActiveState") == "active", timeout=10)
    st = status()
    adopted = [l for l in st["listeners"] if l["socket_unit"]]
    log(f"strategy {st['service']['strategy']}; listeners: "
        f"{[(l['address'], l['owner'], l['socket_unit']) for l in st['listeners']]}")
    check(adopted, "rpsupd did not adopt the socket unit's listener")


def reload_under_load(strategy):
    """systemctl reload under load: zero failed connections; it returns once the new generation takes
    connections; a reload whose generation cannot start fails, with the reason in the journal, and the old
    generation keeps serving."""
    write_config(strategy)
    start(strategy)
    load = Load(PORT, concurrency=16)
    try:
        time.sleep(0.5)
        for i in range(5):
            rc, out, err = systemctl("reload", UNIT)
            check(rc == 0, f"systemctl reload {i + 1} exited {rc}: {err}\n{journal()}")
            # Returned: the new generation takes every new connection.
            g = int(parse_reply(request(PORT))["generation"])
            check(g == i + 2, f"after reload {i + 1} returned, generation {g} answered, expected {i + 2}")
            time.sleep(0.3)
        report = load_report(load, "5 reloads")
    finally:
        load.kill()
    check(report["failed"] == 0, f"connections failed during systemctl reload: {report}")

    write_config(strategy, worker_args="--fail-start")
    rc, out, err = systemctl("reload", UNIT)
    log(f"failing reload: systemctl exited {rc}")
    check(rc != 0, "systemctl reload succeeded although the new generation cannot start")
    j = journal()
    check("rolled back" in j and "generation 7 failed" in j, f"no reason in the journal:\n{j}")
    log("journal: " + [line for line in j.splitlines() if "rolled back" in line][-1])
    check(int(parse_reply(request(PORT))["generation"]) == 6, "the old generation does not answer")
    check(prop("ActiveState") == "active", "the unit is not active after a failed reload")


def crash_restart(strategy):
    """rpsupd SIGKILLed (systemctl kill --kill-whom=main): Restart=on-failure starts it again, the listeners
    come back from the fd store, the workers are taken over, and a client load across the crash sees no
    refused or reset connection."""
    write_config(strategy)
    start(strategy)
    before = status()
    main = int(prop("MainPID"))
    load = Load(PORT, concurrency=16)
    try:
        time.sleep(0.5)
        rc, out, err = systemctl("kill", "--kill-whom=main", "-s", "SIGKILL", UNIT)
        check(rc == 0, f"systemctl kill: {err}")
        wait_for("the restart", lambda: prop("ActiveState") == "active" and int(prop("MainPID") or 0) not in (0, main))
        time.sleep(0.5)
        after = status()
        rc, out, err = systemctl("reload", UNIT)
        check(rc == 0, f"reload after the restart: {err}")
        time.sleep(0.5)
        report = load_report(load, "across the crash")
    finally:
        load.kill()
    log(f"MainPID {main} -> {prop('MainPID')}, NRestarts {prop('NRestarts')}; workers {live_pids(before)} -> "
        f"{live_pids(after)}")
    restored = [l for l in after["listeners"] if l["restored"]]
    log(f"listeners restored from the fd store: {[(l['address'], l['owner']) for l in restored]}")
    check(restored, "no listener came back from the fd store")
    check(live_pids(after) == live_pids(before), "the workers were not taken over")
    check(report["refused"] == 0 and report["reset"] == 0 and report["failed"] == 0,
          f"connections failed across the crash: {report}")


def restart(strategy):
    """systemctl restart under load: zero refused or reset connections (the fd store survives a restart job
    in systemd 252). Then stop + start: systemd 252 empties the fd store on stop, so without a socket unit
    the address is gone in between (measured, not asserted); with rpsup@web.socket owning the address,
    nothing is lost."""
    write_config(strategy)
    start(strategy)
    load = Load(PORT, concurrency=16, extra=("--timeout", "15000"))
    try:
        time.sleep(0.5)
        rc, out, err = systemctl("restart", UNIT)
        check(rc == 0, f"systemctl restart: {err}\n{journal()}")
        time.sleep(0.5)
        report = load_report(load, "systemctl restart")
    finally:
        load.kill()
    check(report["failed"] == 0, f"connections failed across systemctl restart: {report}")
    st = status()
    check(any(l["restored"] for l in st["listeners"]), "the listeners did not come from the fd store")

    # stop + start without a socket unit: the address is closed in between.
    load = Load(PORT, concurrency=4, extra=("--timeout", "15000"))
    try:
        time.sleep(0.3)
        systemctl("stop", UNIT)
        time.sleep(1)
        systemctl("start", UNIT)
        time.sleep(0.5)
        report = load_report(load, "stop + start without a socket unit")
    finally:
        load.kill()
    log(f"without a socket unit, stop + start refused {report['refused']} and reset {report['reset']} "
        "connections: systemd 252 closes the fd store on stop (FileDescriptorStorePreserve= needs 254)")
    check(report["refused"] > 0 or report["reset"] > 0,
          "stop + start lost nothing without a socket unit: the harness cannot tell loss")

    # stop + start with the socket unit owning the address: connections wait in its queue.
    systemctl("stop", UNIT)
    rc, out, err = systemctl("start", "rpsup@web.socket")
    check(rc == 0, f"systemctl start rpsup@web.socket: {err}")
    start(strategy)
    load = Load(PORT, concurrency=16, extra=("--timeout", "15000"))
    try:
        time.sleep(0.5)
        for _ in range(2):
            systemctl("stop", UNIT)
            time.sleep(1)
            rc, out, err = systemctl("start", UNIT)
            check(rc == 0, f"systemctl start: {err}\n{journal()}")
            time.sleep(0.5)
        report = load_report(load, "stop + start with rpsup@web.socket")
    finally:
        load.kill()
    check(report["failed"] == 0, f"connections failed across stop + start with a socket unit: {report}")


def scale_status(strategy):
    """rpsupctl scale and status inside the container, against the unit's runtime directory."""
    write_config(strategy)
    start(strategy)
    rc, out, err = sh("rpsupctl", "scale", "web", "6")
    check(rc == 0, f"rpsupctl scale web 6 exited {rc}: {err}")
    log(out.strip())
    st = status()
    pids = live_pids(st)
    check(len(pids) == 6 and all(w["state"] == "ready" for w in st["workers"] if w["pid"] in pids),
          f"{len(pids)} live workers after scale 6")
    rc, out, err = sh("rpsupctl", "status", "web")
    check(rc == 0 and "Generation 1 serving: 6/6 workers ready" in out, f"rpsupctl status:\n{out}{err}")
    log(out.splitlines()[0])
    check(st["service"]["runtime_directory"] == "/run/rpsup/web", st["service"]["runtime_directory"])
    rc, out, err = sh("rpsupctl", "list")
    check(rc == 0 and "web" in out, f"rpsupctl list: {out}{err}")


def verify_units(strategy):
    """The installed units pass systemd-analyze verify (commands exist, man pages are found)."""
    rc, out, err = sh("systemd-analyze", "verify", "rpsup@web.service", "rpsup@web.socket")
    log(f"systemd-analyze verify: exit {rc}{': ' + (out + err).strip() if (out + err).strip() else ''}")
    check(rc == 0 and not (out + err).strip(), f"systemd-analyze verify reports:\n{out}{err}")


def quickstart_block():
    """The shell block under the README's "Quick start with systemd" heading, as written."""
    text = open("/quickstart/README.md").read()
    section = text.split("## Quick start with systemd", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0] + "\n"


def quickstart(strategy):
    """The README's quick start, read literally: its block runs as written (bash -e, each line traced) on the
    installed package, then the service is what the README says: 8 workers (after the scale) of generation
    2 (after the reload), all of them running as the user it created without any capability, answering on
    the address it gave."""
    check(os.path.isdir("/etc/rpsup"), "the package did not create /etc/rpsup")
    block = quickstart_block()
    r = subprocess.run(["bash", "-euxo", "pipefail", "-c", block], capture_output=True, text=True, timeout=180)
    for line in (r.stdout + r.stderr).splitlines()[:200]:
        log(f"  | {line}")
    check(r.returncode == 0, f"the README's quick start failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    check("rpsup_" in r.stdout, "rpsupctl metrics web printed no rpsup_ metric")
    st = status()
    pids = live_pids(st)
    check(st["service"]["live_generation"] == 2 and len(pids) == 8,
          f"after the quick start: generation {st['service']['live_generation']}, {len(pids)} live workers "
          "(expected generation 2 after the reload, 8 workers after the scale)")
    uid = int(sh("id", "-u", "web")[1])
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        check(int(fields["Uid"].split()[0]) == uid, f"worker {pid} does not run as web: Uid {fields['Uid'].strip()}")
        caps = {k: int(fields[k], 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")}
        check(not any(caps.values()) and fields["NoNewPrivs"].strip() == "1",
              f"worker {pid} has privileges: {caps}, NoNewPrivs {fields['NoNewPrivs'].strip()}")
    reply = parse_reply(request(PORT))
    check(reply["generation"] == "2", f"127.0.0.1:{PORT} answered {reply}")
    log(f"quick start: generation 2, {len(pids)} workers as web (uid {uid}), no capabilities; 127.0.0.1:{PORT} "
        "answers")


METRICS_PORT = 10142  # rpsup-metrics.socket


def curl(url):
    """curl's view of a GET: (status, headers {lowercase name: value}, body)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "-", url], capture_output=True,
                       timeout=30)
    check(r.returncode == 0, f"curl {url} exited {r.returncode}: {r.stderr.decode()}")
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return int(lines[0].split()[1]), {k.strip().lower(): v.strip() for k, _, v in
                                      (line.partition(":") for line in lines[1:])}, body


def metrics_exporter(strategy):
    """rpsup-metrics.socket, enabled by nothing until the operator does: then curl's GET /metrics on its
    port gets rpsup@web's metrics with the service label, valid for promtool check metrics (where Debian's
    prometheus is installed) or else prometheus_client's parser; each scrape is an instance of
    rpsup-metrics@.service that runs as a dynamic user and is gone afterwards."""
    write_config(strategy)
    rc, out, _ = systemctl("is-enabled", "rpsup-metrics.socket")
    check(out.strip() == "disabled", f"rpsup-metrics.socket is {out.strip()} before anyone enabled it")
    start(strategy)
    rc, out, err = systemctl("enable", "--now", "rpsup-metrics.socket")
    check(rc == 0, f"systemctl enable --now rpsup-metrics.socket: {err}")
    rc, out, err = sh("systemd-analyze", "verify", "rpsup-metrics.socket", "rpsup-metrics@0.service")
    check(rc == 0 and not (out + err).strip(), f"systemd-analyze verify of the exporter's units:\n{out}{err}")

    status, headers, body = curl(f"http://127.0.0.1:{METRICS_PORT}/metrics")
    check(status == 200, f"GET /metrics: {status}\n{body[:300]}\n{journal('rpsup-metrics@*')}")
    check(headers.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
          f"Content-Type: {headers.get('content-type')}")
    text = body.decode()
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"promtool check metrics:\n{r.stdout}{r.stderr}")
        log("promtool check metrics: OK")
    else:
        from prometheus_client.parser import text_string_to_metric_families
        fams = list(text_string_to_metric_families(text))
        names = [f.name for f in fams]
        check(len(names) == len(set(names)) and all(f.type != "unknown" for f in fams),
              f"not one typed family each: {names}")
        log(f"prometheus_client's parser (promtool is not installed): {len(fams)} families")
    check('rpsup_info{service="web",' in text and 'rpsup_exporter_service_up{service="web"} 1' in text,
          f"web's metrics are not there:\n{text[:1000]}")
    status, _, _ = curl(f"http://127.0.0.1:{METRICS_PORT}/other")
    check(status == 404, f"GET /other: {status}")

    # A scrape in progress (its request not sent yet): what its instance runs as.
    with socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=20) as conn:
        def instance_pid():
            units = sh("systemctl", "list-units", "--plain", "--no-legend", "--state=active", "rpsup-metrics@*")[1]
            return units.split()[0] if units.strip() else None
        def exporter_pid():
            # Active as soon as it is forked; the hardening applies once it runs the exporter.
            pid = prop("MainPID", instance_pid()) if instance_pid() else "0"
            try:
                return pid if os.readlink(f"/proc/{pid}/exe").endswith("/rpsup-metrics-http") else None
            except OSError:
                return None
        wait_for("the instance of the open connection", lambda: exporter_pid(), timeout=10)
        pid = exporter_pid()
        with open(f"/proc/{pid}/status") as f:
            fields = {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
        conn.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    log(f"an instance: Uid {fields['Uid']}, CapBnd {fields['CapBnd']}, CapEff {fields['CapEff']}, NoNewPrivs "
        f"{fields['NoNewPrivs']}")
    check(fields["Uid"].split()[0] != "0" and int(fields["CapBnd"], 16) == 0 and fields["NoNewPrivs"] == "1",
          f"the scrape runs as uid {fields['Uid']} with bounding set {fields['CapBnd']}")
    check(answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'rpsup_info{service="web",' in answer,
          f"its answer: {answer[:300]!r}")

    accepted = prop("NAccepted", "rpsup-metrics.socket")
    check(accepted == "3", f"rpsup-metrics.socket accepted {accepted} connections, expected 3")
    wait_for("the scrape instances to be gone", lambda: not sh("systemctl", "list-units", "--all", "--plain",
             "--no-legend", "rpsup-metrics@*")[1].strip(), timeout=10)
    def instances_log():
        return sh("journalctl", "--no-pager", "-o", "cat", "-u", "rpsup-metrics@*")[1]
    try:
        wait_for("3 instances ending", lambda: instances_log().count("Deactivated successfully") == 3, timeout=10)
    except Failed as e:
        raise Failed(f"{e}:\n{instances_log()[-2000:]}")
    check("Failed" not in instances_log(), f"a scrape instance failed:\n{instances_log()[-2000:]}")
    log(f"GET /metrics 200 ({len(body)} bytes), /other 404; 3 connections accepted, 3 instances ended well")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def worker_privileges(strategy):
    """Under the hardened unit: rpsupd has the unit's capabilities, its workers (User=, numeric: the volatile
    /etc has no passwd entry for it) none, the bounding set included, and no_new_privs; BPF steering runs
    (strategy migrate); and rpsupd still sees what those workers of another user serve (their /proc/PID/fd):
    a retired worker with a request open shows 1 connection and leaves as soon as it is answered."""
    from rpsuptest import PendingClient
    write_config(strategy, extra="User=65534\nGroup=65534\nSoakSec=0\nDrainSec=60\nStallSec=0",
                 worker_args="--slow-request 4000", workers=1)
    st = start(strategy)
    main = proc_status(int(prop("MainPID")))
    log(f"rpsupd: CapBnd {main['CapBnd']}, CapEff {main['CapEff']}, NoNewPrivs {main['NoNewPrivs']}")
    check(int(main["CapBnd"], 16) != 0 and main["NoNewPrivs"] == "1", f"rpsupd runs with {main}")
    old = live_pids(st)[0]
    fields = proc_status(old)
    got = {k: fields[k] for k in ("Uid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")}
    log(f"worker {old}: {got}")
    check(fields["Uid"].split()[0] == "65534", f"the worker runs as {fields['Uid']}")
    check(all(int(fields[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
          f"the worker has capabilities: {got}")
    check(fields["NoNewPrivs"] == "1", "the worker runs without no_new_privs")

    client = PendingClient(PORT, data=b"SLOW\n")
    wait_for("the worker busy with the slow request", lambda: "nanosleep" in open(f"/proc/{old}/wchan").read())
    rc, out, err = systemctl("reload", UNIT)
    check(rc == 0, f"systemctl reload exited {rc}: {err}\n{journal()}")
    retired = time.monotonic()
    w = next((x for x in status()["workers"] if x["pid"] == old), None)
    check(w is not None and w["state"] == "draining", f"the retired worker is not draining: {w}")
    log(f"retired worker {old}: {w['drain_open_connections']} connection(s) open, queue {w['drain_queue']}")
    check(w["drain_open_connections"] == 1,
          f"status shows {w['drain_open_connections']} connections open on the retired worker of another user, "
          "expected 1 (-1: rpsupd cannot read its /proc/PID/fd)")
    reply = client.answered_within(10)
    check(reply is not None and parse_reply(reply)["pid"] == str(old), f"the slow request got {reply!r}")
    client.close()
    wait_for("the retired worker to leave", lambda: not os.path.exists(f"/proc/{old}"), timeout=20)
    gone = time.monotonic() - retired
    log(f"retired worker gone {gone:.1f} s after the reload (DrainSec=60)")
    check(gone < 15, f"the retired worker left only after {gone:.1f} s")


def fds(strategy):
    """rpsupctl fds under systemd: PID 1 holds the socket unit's listener (port 8080) and the fd store's
    copies of the others (8081, which rpsupd binds), rpsupd and each worker the listeners it has, and nobody
    else."""
    write_config(strategy)
    with open("/etc/rpsup/web.conf", "a") as f:
        f.write(f"ListenStream={PORT + 1}\n")
    rc, out, err = systemctl("start", "rpsup@web.socket")
    check(rc == 0, f"systemctl start rpsup@web.socket: {err}")
    request(PORT, timeout=20)  # starts the service
    wait_for("the service to be active", lambda: prop("ActiveState") == "active", timeout=10)
    workers = set(live_pids(status()))
    rc, out, err = sh("rpsupctl", "--json", "fds", "web")
    check(rc == 0, f"rpsupctl --json fds web exited {rc}: {err}")
    report = json.loads(out)
    log(sh("rpsupctl", "fds", "web")[1])
    check(report["notify_socket"] == "/run/systemd/notify", f"rpsupd's NOTIFY_SOCKET: {report['notify_socket']}")
    check(report["unexpected"] == 0 and report["scan"]["complete"] and not report["missing"],
          f"unexpected holders, or an incomplete scan: {json.dumps(report, indent=1)}")
    roles = {s["role"] for s in report["sockets"]}
    check("socket-unit" in roles and any(s["fdstore_name"] for s in report["sockets"]),
          f"the socket unit's listener, or one in the fd store, is not listed: {roles}")
    seen = set()
    for s in report["sockets"]:
        holders = {(h["pid"], h["holder"]) for h in s["holders"]}
        seen |= {pid for pid, kind in holders if kind == "worker"}
        check((report["rpsupd_pid"], "rpsupd") in holders, f"rpsupd does not hold {s}")
        if s["role"] == "socket-unit":
            check((1, "socket-unit") in holders, f"PID 1 does not hold the socket unit's listener: {s}")
        elif s["fdstore_name"]:
            check((1, "fdstore") in holders, f"PID 1 does not hold the fd store's copy: {s}")
    check(seen == workers, f"the workers holding listeners are {seen}, the live ones {workers}")


def unit_cgroup_procs(unit=UNIT):
    """Every process in the unit's cgroup and below it (cgroup2, pure or hybrid)."""
    cg = prop("ControlGroup", unit)
    pids = set()
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        base = root + cg
        if not cg or not os.path.exists(base + "/cgroup.procs"):
            continue
        for d, _, files in os.walk(base):
            if "cgroup.procs" in files:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids |= {int(p) for p in f.read().split()}
        return pids
    return pids


def cgroup_excerpt(status_text):
    """The CGroup: part of systemctl status, with the worker's 200 sleeps as one line."""
    lines, sleeps = [], 0
    for line in status_text.splitlines():
        if "CGroup:" in line or lines and ("─" in line or "│" in line):
            if "sleep 100000" in line:
                sleeps += 1
                if sleeps > 1:
                    continue
                line = line.replace("sleep 100000", "sleep 100000  (and the other sleeps)")
            lines.append(line)
        elif lines:
            break
    return "\n".join(lines) + f"\n({sleeps} sleep processes)"


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def cgroups(strategy):
    """Delegate=yes: rpsupd runs in the supervisor leaf, each worker in gen-G/worker-I.N, and "systemctl
    status" shows the tree by generation. A worker that forks 200 children and double-forks a daemon: after a
    reload nothing of the old generation is left, after the stop nothing of the service (KillMode=process
    leaves that to rpsupd), and nothing answers on the port."""
    script = "/etc/rpsup/forking-worker.sh"
    with open("/etc/rpsup/daemon.py", "w") as f:
        f.write("import select, socket\n"
                "s = socket.socket(fileno=3)\n"
                "while True:\n"
                "    select.select([s], [], [])\n"
                "    try:\n"
                "        c, _ = s.accept()\n"
                "    except BlockingIOError:\n"
                "        continue\n"
                "    c.sendall(b'daemon\\n')\n"
                "    c.close()\n")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                "i=0\n"
                "while [ $i -lt 200 ]; do sleep 100000 & i=$((i + 1)); done\n"
                f"(setsid {sys.executable} /etc/rpsup/daemon.py 3<&3 </dev/null >/dev/null 2>&1 &)\n"
                f'exec {WORKER} "$@"\n')
    os.chmod(script, 0o755)
    write_config(strategy, workers=1)
    with open("/etc/rpsup/web.conf") as f:
        text = f.read().replace(f"ExecStart={WORKER}", f"ExecStart={script}")
    with open("/etc/rpsup/web.conf", "w") as f:
        f.write(text)
    start(strategy)
    wait_for("200 children and a daemon", lambda: len(unit_cgroup_procs()) >= 203)
    gen1 = unit_cgroup_procs() - {int(prop("MainPID"))}
    out = systemctl("status", "--no-pager", "-l", UNIT)[1]
    tree = [line for line in out.splitlines() if "─" in line and ("supervisor" in line or "gen-" in line or "worker-" in line)]
    log("systemctl status, generation 1 (the cgroup tree, sleeps counted):\n" + cgroup_excerpt(out))
    check(any("supervisor" in line for line in tree), f"systemctl status shows no supervisor cgroup:\n{out}")
    check(any("gen-1" in line for line in tree), f"systemctl status shows no generation cgroup:\n{out}")
    with open(f"/proc/{prop('MainPID')}/cgroup") as f:
        own = [line for line in f.read().splitlines() if line.startswith("0::")][0]
    check(own.endswith("/supervisor"), f"rpsupd is not in its supervisor leaf: {own}")

    rc, out, err = systemctl("reload", UNIT)
    check(rc == 0, f"reload: {err}")
    wait_for("generation 1's processes to go", lambda: not any(alive(p) for p in gen1))
    wait_for("generation 2's children", lambda: len(unit_cgroup_procs()) >= 203)
    out = systemctl("status", "--no-pager", "-l", UNIT)[1]
    log("systemctl status, after the reload (the cgroup tree, sleeps counted):\n" + cgroup_excerpt(out))
    check("gen-2" in out and "gen-1" not in out, f"systemctl status does not show generation 2 alone:\n{out}")
    st = status()
    gens = {g["id"]: g for g in st["generations"]}
    check(gens[2].get("cpu_usec", 0) > 0, f"status shows no CPU time for generation 2: {gens[2]}")
    gen2 = unit_cgroup_procs() - {int(prop("MainPID"))}

    rc, out, err = systemctl("stop", UNIT)
    check(rc == 0, f"stop: {err}")
    wait_for("the service's processes to go", lambda: not any(alive(p) for p in gen2))
    try:
        reply = request(PORT, timeout=2)
    except OSError:
        reply = None
    check(reply is None, f"something answers on port {PORT} after the stop: {reply}")
    log(f"reload: {len(gen1)} processes of generation 1 gone; stop: {len(gen2)} of generation 2 gone, port closed")


def fdstore(strategy):
    """A worker that stores its connections (FDSTORE=1, tests/integration/fdstore-worker.py) keeps them
    under real systemd across a reload, a worker crash and an rpsupd SIGKILL: systemd's fd store carries
    them while rpsupd restarts, and the restarted rpsupd hands them to the next workers."""
    # In /etc/rpsup: the unit's PrivateTmp= hides a tree under /tmp (where CI clones it) from the workers.
    worker = "/etc/rpsup/fdstore-worker.py"
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "fdstore-worker.py"),
                worker)
    write_config(strategy, extra="Ready=notify\nFileDescriptorStoreMax=64")
    with open("/etc/rpsup/web.conf") as f:
        text = f.read().replace(f"ExecStart={WORKER} ", f"ExecStart=/usr/bin/python3 {os.path.abspath(worker)} ")
    with open("/etc/rpsup/web.conf", "w") as f:
        f.write(text)
    start(strategy)
    conns = [socket.create_connection(("127.0.0.1", PORT), timeout=5) for _ in range(10)]

    def ask_all(what):
        for i, c in enumerate(conns):
            c.sendall(f"line-{i}\n".encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = c.recv(4096)
                check(chunk, f"connection {i} closed {what}")
                reply += chunk
            check(reply.startswith(f"line-{i} ".encode()), f"connection {i} {what}: {reply!r}")
        log(f"{what}: all {len(conns)} connections answered")

    try:
        ask_all("at start")
        wait_for("the connections stored", lambda: sum({w["slot"]: w["stored_fds"]
                                                         for w in status()["workers"]}.values()) == len(conns))
        rc, out, err = systemctl("reload", UNIT)
        check(rc == 0, f"reload: {err}")
        ask_all("after a reload")
        victim = live_pids(status())[0]
        os.kill(victim, 9)
        wait_for("the killed worker replaced", lambda: victim not in live_pids(status()) and
                 len(live_pids(status())) == 2)
        ask_all("after a worker crash")
        stored = int(prop("NFileDescriptorStore") or 0)
        log(f"systemd's fd store holds {stored} fds")
        check(stored >= len(conns), f"systemd's fd store holds {stored} fds, fewer than the connections")
        main = int(prop("MainPID"))
        rc, out, err = systemctl("kill", "--kill-whom=main", "-s", "SIGKILL", UNIT)
        check(rc == 0, f"systemctl kill: {err}")
        wait_for("the restart", lambda: prop("ActiveState") == "active" and int(prop("MainPID") or 0) not in (0, main))
        check(f"Took over {len(conns)} fds that workers stored" in journal(lines=200),
              "the restarted rpsupd did not take the stored fds over")
        rc, out, err = systemctl("reload", UNIT)
        check(rc == 0, f"reload after the restart: {err}")
        ask_all("after an rpsupd SIGKILL and a reload")
    finally:
        for c in conns:
            c.close()


SCENARIOS = {f.__name__.replace("_", "-"): f for f in
             (notify_start, socket_activation, reload_under_load, crash_restart, restart, scale_status,
              verify_units, quickstart, metrics_exporter, worker_privileges, fds, fdstore, cgroups)}


def install_package():
    """The Debian package tools/package built, installed as an operator would (the test runs on it)."""
    deb = os.environ.get("RPSUP_PACKAGE")
    if not deb:
        return
    # The container's /etc is empty (volatile): system groups that the host's dpkg overrides name do not
    # exist in it, and dpkg refuses to run over such an override. The host's own file is not touched (/var
    # is an overlay).
    open("/var/lib/dpkg/statoverride", "w").close()
    rc, out, err = sh("dpkg", "-i", deb, timeout=120)
    check(rc == 0, f"dpkg -i {deb} exited {rc}:\n{out}{err}")
    rc, out, err = systemctl("daemon-reload")
    check(rc == 0, f"systemctl daemon-reload: {err}")
    enabled = [u for u in ("rpsup@.service", "rpsup@.socket") if systemctl("is-enabled", u)[1].strip() == "enabled"]
    check(not enabled, f"the package enabled {enabled}")
    log(f"installed {os.path.basename(deb)}")


def main():
    scenario, strategy = sys.argv[1], sys.argv[2]
    result = {"ok": False, "message": ""}
    try:
        log(f"== {scenario} ({strategy}), systemd {sh('systemctl', '--version')[1].split()[1]}")
        install_package()
        SCENARIOS[scenario](strategy)
        result["ok"] = True
    except Failed as e:
        result["message"] = str(e)
    except Exception:
        result["message"] = traceback.format_exc()
    if not result["ok"]:
        log(f"journal of {UNIT}:\n{journal(lines=40)}")
    with open("/out/result.json", "w") as f:
        json.dump(result, f)
    systemctl("poweroff", "--no-block")


if __name__ == "__main__":
    main()
