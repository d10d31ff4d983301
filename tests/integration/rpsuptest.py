# SPDX-License-Identifier: LGPL-2.1-or-later
"""Harness for rpsup's integration tests: real rpsupd, real workers, real clients, in a private network
namespace of the test's own. Each test is a script that exits 0 (pass), 1 (fail) or 77 (skipped: needs
root and namespaces; with RPSUP_REQUIRE_PRIVILEGED=1 a skip becomes a failure).

The harness plays systemd's part where a test needs it: it receives rpsupd's sd_notify() messages
(READY=1, STATUS=, FDSTORE=1 with the fds) on a NOTIFY_SOCKET of its own, and can start rpsupd again with
the stored fds in LISTEN_FDS, as systemd does after a crash."""

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpsupnet import (HarnessError, HeldAcks, LoadRun, NotifyReceiver, counters_delta,  # noqa: E402
                      enter_private_netns, free_port, handshakes_in_flight, kill_pid, tagged_pids, tcp_counters)

SKIP = 77

BUILD = os.environ.get("RPSUP_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
RPSUPD = os.environ.get("RPSUPD") or os.path.join(BUILD, "supervisor", "rpsupd")
RPSUPCTL = os.environ.get("RPSUPCTL") or os.path.join(BUILD, "ctl", "rpsupctl")
# RPSUP_TEST_PROGRAMS_FROM=BUILD_DIR takes the example worker and the load generator from another build: the
# sanitizer run checks rpsupd and rpsupctl, with the peers (not under test there) at full speed.
PEERS = os.environ.get("RPSUP_TEST_PROGRAMS_FROM")
WORKER = (os.path.join(PEERS, "examples", "rpsup-example-worker") if PEERS else
          os.environ.get("RPSUP_EXAMPLE_WORKER") or os.path.join(BUILD, "examples", "rpsup-example-worker"))
LOAD = (os.path.join(PEERS, "bench", "rpsup-load") if PEERS else
        os.environ.get("RPSUP_LOAD") or os.path.join(BUILD, "bench", "rpsup-load"))
XDP_DROP_ACK = os.environ.get("RPSUP_XDP_DROP_ACK") or os.path.join(BUILD, "tests", "helpers", "xdp-drop-ack")
GET_LISTENER_FDS = (os.environ.get("RPSUP_GET_LISTENER_FDS") or
                    os.path.join(BUILD, "tests", "helpers", "get-listener-fds"))


def log(*args):
    print("#", *args, flush=True)


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def prometheus_parser():
    """prometheus_client's text_string_to_metric_families, or a skip where it is not installed."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        # tools/setup installs python3-prometheus-client (pure Python) for the system's python3; a python3
        # found earlier in PATH can use it too.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            skip_or_fail("python3-prometheus-client is not installed (tools/setup installs it)")
    return text_string_to_metric_families


def skip_or_fail(reason):
    if os.environ.get("RPSUP_REQUIRE_PRIVILEGED") == "1":
        print(f"FAIL: cannot run, and RPSUP_REQUIRE_PRIVILEGED=1: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def process_state(pid):
    """The state letter of /proc/PID/stat (R, S, T, Z, ...), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def stop_process(pid):
    """SIGSTOP, and wait until the process is stopped: kill() only queues the signal, and a process caught
    between epoll_wait() and accept() would otherwise take what arrives next once it is continued."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: process_state(pid) in ("T", None), timeout=10, what=f"process {pid} stopping")


def wait_until(probe, timeout=15.0, what=None, interval=0.05):
    """Polls probe() until it returns something true, and returns that: the tests wait for what they can
    observe, not for a fixed time. After timeout seconds: Failed("what: ...") if what is given, else the
    last (false) value, for the caller's own check to report."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > end:
            break
        time.sleep(interval)
    if not value and what:
        raise Failed(f"{what}: not within {timeout:.0f}s")
    return value


class FakeSystemd:
    """The receiving end of rpsupd's sd_notify(): collects READY=1, STATUS= and the fd store. Reads in a
    thread of its own, as PID 1 would, so that rpsupd never waits for it."""

    def __init__(self, path):
        self.path = path
        self.messages = []
        self.store = {}  # name -> [fd, ...]
        self.lock = threading.Lock()
        self.syncs = 0
        self.receiver = NotifyReceiver(path, self._message)

    def _message(self, fields, fds, pid):
        with self.lock:
            self.messages.append(fields)
            if fields.get("FDSTORE") == "1":
                self.store.setdefault(fields.get("FDNAME", "stored"), []).extend(fds)
                fds = []
            elif fields.get("FDSTOREREMOVE") == "1":
                for fd in self.store.pop(fields.get("FDNAME"), []):
                    os.close(fd)
        for fd in fds:
            os.close(fd)

    def sync(self, timeout=5.0):
        """Returns once the reader has taken in everything sent to the socket so far: a datagram of ours,
        queued behind it (datagrams keep their order), comes out last."""
        self.syncs += 1
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(f"RPSUP_TEST_SYNC={self.syncs}".encode(), self.path)
        self.wait_for("RPSUP_TEST_SYNC", str(self.syncs), timeout)

    def wait_for(self, key, value=None, timeout=15.0, since=0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for m in self.messages[since:]:
                    if key in m and (value is None or m[key] == value):
                        return m
            time.sleep(0.02)
        raise Failed(f"rpsupd sent no {key}{'=' + value if value else ''} within {timeout}s")

    def stored(self):
        with self.lock:
            return [(name, fd) for name, fds in self.store.items() for fd in fds]

    def close(self):
        self.receiver.close()
        with self.lock:
            for fds in self.store.values():
                for fd in fds:
                    os.close(fd)
            self.store = {}


class Rpsup:
    """One rpsupd with a config of the test's, a runtime directory of its own, and cleanup by pid. Reloads
    do not soak unless the test asks (soak=SECONDS, or None for the default SoakSec=)."""

    def __init__(self, name="web", workers=2, extra_service="", extra_socket="", port=None, listen=None,
                 worker_args="", strategy=None, soak=0):
        self.tmp = tempfile.mkdtemp(prefix=f"rpsup-test-{name}-")
        os.chmod(self.tmp, 0o755)  # other users may read the status (the control socket is 0666)
        self.name = name
        self.port = port or free_port()
        self.runtime = os.path.join(self.tmp, "run")
        self.config = os.path.join(self.tmp, f"{name}.conf")
        self.logfile = os.path.join(self.tmp, "rpsupd.log")
        self.token = uuid.uuid4().hex
        self.proc = None
        self.pids = set()
        self.systemd = None
        listen = listen or f"ListenStream=127.0.0.1:{self.port}"
        self.write_config(f"""[Service]
ExecStart={WORKER} {worker_args}
Workers={workers}
ReadyTimeoutSec=10
StopTimeoutSec=5
{f'Strategy={strategy}' if strategy else ''}
{f'SoakSec={soak}' if soak is not None and 'SoakSec=' not in extra_service else ''}
{extra_service}

[Socket]
{listen}
{extra_socket}
""")

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def env(self):
        env = dict(os.environ)
        env["RPSUP_RUNTIME_DIR"] = self.runtime
        env["RPSUP_TEST_TOKEN"] = self.token  # inherited by the workers: how cleanup finds them
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_FDS", None)
        if self.systemd:
            env["NOTIFY_SOCKET"] = self.systemd.path
        return env

    def start(self, with_systemd=False, fds=None, wait=True, args=(), binary=RPSUPD):
        """Starts rpsupd (binary: another path to it). fds: [(name, fd)] passed as LISTEN_FDS/LISTEN_FDNAMES,
        as systemd does."""
        if with_systemd and not self.systemd:
            self.systemd = FakeSystemd(os.path.join(self.tmp, "systemd-notify"))
        logf = open(self.logfile, "a")
        argv = [binary, "--config", self.config, *args, self.name]
        env = self.env()
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in fds)
            pid = os.fork()
            if pid == 0:
                try:
                    # Into place at 3, 4, ...: first above all targets (and above every fd passed, so that no
                    # copy replaces one not yet copied), then down.
                    os.dup2(logf.fileno(), 1)
                    os.dup2(logf.fileno(), 2)
                    base = max([3 + len(fds)] + [fd for _, fd in fds]) + 1
                    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, base) for _, fd in fds]
                    for i, h in enumerate(high):
                        os.dup2(h, 3 + i)
                    os.closerange(3 + len(fds), 4096)
                    env["LISTEN_PID"] = str(os.getpid())
                    os.execve(binary, argv, env)
                finally:
                    os._exit(127)
            self.proc = PidProcess(pid)
        else:
            self.proc = subprocess.Popen(argv, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        if wait:
            return self.wait_running()
        return self.proc

    def wait_running(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failed(f"rpsupd exited with {self.proc.returncode}:\n{self.log()}")
            rc, st = self.status_json()
            if rc == 0 and st["service"]["state"] == "running":
                self.remember(st)
                return st
            time.sleep(0.05)
        raise Failed(f"rpsupd did not get running within {timeout}s:\n{self.log()}")

    def ctl(self, *args, timeout=60, user=None):
        argv = [RPSUPCTL, "--runtime-dir", self.runtime, *args]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def diagnose(self):
        """What rpsupd is doing, for a failure message."""
        out = []
        if self.proc and self.proc.poll() is None and shutil.which("gdb"):
            r = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "bt"], capture_output=True,
                               text=True, timeout=30)
            out.append(r.stdout[-3000:])
        for pid in sorted(self.our_processes()):
            try:
                state = [line.strip() for line in open(f"/proc/{pid}/status") if line.startswith(("Name", "State"))]
                wchan = open(f"/proc/{pid}/wchan").read()
                out.append(f"process {pid}: {', '.join(state)}, waiting in {wchan}")
            except OSError:
                pass
        out.append(self.log()[-4000:])
        return "\n".join(out)

    def status_json(self):
        try:
            rc, out, _ = self.ctl("--json", "status", self.name, timeout=10)
        except subprocess.TimeoutExpired:
            raise Failed(f"rpsupctl status got no answer within 10s:\n{self.diagnose()}")
        if rc != 0:
            return rc, None
        st = json.loads(out)
        self.remember(st)
        return rc, st

    def status(self):
        rc, st = self.status_json()
        check(rc == 0, f"rpsupctl status failed with {rc}")
        return st

    def remember(self, st):
        for w in st["workers"]:
            if w["pid"]:
                self.pids.add(w["pid"])

    def live_workers(self, st=None):
        st = st or self.status()
        live = st["service"]["live_generation"]
        return [w for w in st["workers"] if w["generation"] == live and not w["retiring"]]

    def reload(self, *args):
        return self.ctl("reload", self.name, *args)

    def scale(self, n):
        return self.ctl("scale", self.name, str(n))

    def log(self):
        try:
            with open(self.logfile) as f:
                return f.read()
        except OSError:
            return ""

    def our_processes(self):
        """Processes this test started, directly or through rpsupd: they carry our token."""
        return tagged_pids("RPSUP_TEST_TOKEN", self.token)

    def kill_rpsupd(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait()

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                what = self.diagnose()
                self.proc.kill()
                self.proc.wait()
                raise Failed(f"rpsupd did not stop within {timeout}s of SIGTERM:\n{what}")
        self.check_log()
        return self.proc.returncode if self.proc else None

    def check_log(self):
        """A sanitizer report in rpsupd's log (the sanitizer build) fails the test."""
        text = self.log()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            check(marker not in text, f"rpsupd's log has a {marker} report:\n{text[-4000:]}")

    def cleanup(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        except Exception:
            pass
        for pid in self.our_processes() | self.pids:
            if pid != os.getpid():
                kill_pid(pid, signal.SIGKILL)
        self.remove_cgroups()
        if self.systemd:
            self.systemd.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def remove_cgroups(self):
        """The cgroup subtree an rpsupd that did not stop left (named in the runtime directory), once the
        processes in it, ended above, are gone."""
        try:
            with open(os.path.join(self.runtime, self.name, "cgroup")) as f:
                subtree = f.readline().strip()
        except OSError:
            return
        if not os.path.basename(subtree).startswith(f"rpsup-{self.name}."):
            return
        for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            root = mount + subtree
            if not os.path.isdir(root):
                continue

            def removed():
                for d, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(d)
                    except OSError:
                        return False
                return True
            wait_until(removed, timeout=5)


class PidProcess:
    """Popen-like handle of a child started with fork()."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("rpsupd", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


# ---- clients ----

def request(port, timeout=5.0, host="127.0.0.1", data=b"hello\n"):
    """One connection: returns the reply line (str), or raises."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(1024)
            if not chunk:
                break
            buf += chunk
    return buf.decode().strip()


def parse_reply(line):
    return dict(kv.split("=", 1) for kv in line.split())


class PendingClient:
    """A connection opened now whose answer is read later (to hold connections in accept queues)."""

    def __init__(self, port, host="127.0.0.1", data=b"hello\n"):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.sendall(data)

    def answered_within(self, timeout):
        """The reply if one arrives within timeout, else None."""
        self.sock.settimeout(timeout)
        try:
            buf = b""
            while True:
                chunk = self.sock.recv(1024)
                if not chunk:
                    return buf.decode().strip() or None
                buf += chunk
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


def hold_acks(port):
    """Holds the clients' final ACKs to port (rpsupnet.HeldAcks); a machine without XDP on lo skips."""
    try:
        return HeldAcks(XDP_DROP_ACK, port)
    except HarnessError as e:
        skip_or_fail(str(e))


class Load:
    """rpsup-load running in the background until stop(); the report carries what the kernel counted
    meanwhile (in "kernel"): it helps to tell where a failure came from."""

    def __init__(self, port, concurrency=16, host="127.0.0.1", extra=(), interval_ms=100):
        self.counters_before = tcp_counters()
        self.dir = tempfile.mkdtemp(prefix="rpsup-load-")
        self.stopfile = os.path.join(self.dir, "stop")
        self.run = LoadRun(LOAD, host, port, os.path.join(self.dir, "report.json"), concurrency=concurrency,
                           stop_file=self.stopfile, interval_ms=interval_ms, extra=extra)

    def intervals(self):
        return self.run.intervals()

    def wait_for(self, what, probe, timeout=15.0):
        """Polls probe(intervals so far) while the load runs."""
        return wait_until(lambda: probe(self.run.intervals()), timeout, what)

    def wait_answered(self, timeout=15.0):
        """Returns once the load has had connections answered: it runs, and so does the service."""
        self.wait_for("the load's first answered connections", lambda iv: any(i["ok"] for i in iv), timeout)

    def stop(self):
        open(self.stopfile, "w").close()
        try:
            report, _ = self.run.wait(timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        report["kernel"] = counters_delta(self.counters_before, tcp_counters())
        return report

    def kill(self):
        self.run.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(test, *args, **kwargs):
    """Runs test(*args) with the netns set up; exit code as the test protocol wants."""
    enter_private_netns("RPSUP_TEST_IN_NETNS", skip_or_fail)
    for path in (RPSUPD, RPSUPCTL, WORKER) + ((LOAD,) if os.environ.get("RPSUP_SKIP_LOAD_CHECK") != "1" else ()):
        if not os.access(path, os.X_OK):
            print(f"FAIL: {path} is not built", flush=True)
            sys.exit(1)
    try:
        test(*args, **kwargs)
    except (Failed, HarnessError) as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)
