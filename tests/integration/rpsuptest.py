# SPDX-License-Identifier: LGPL-2.1-or-later
"""Harness for rpsup's integration tests: real rpsupd, real workers, real clients, in a private network
namespace of the test's own. Each test is a script that exits 0 (pass), 1 (fail) or 77 (skipped: needs
root and namespaces; with RPSUP_REQUIRE_PRIVILEGED=1 a skip becomes a failure).

The harness plays systemd's part where a test needs it: it receives rpsupd's sd_notify() messages
(READY=1, STATUS=, FDSTORE=1 with the fds) on a NOTIFY_SOCKET of its own, and can start rpsupd again with
the stored fds in LISTEN_FDS, as systemd does after a crash."""

import array
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


def skip_or_fail(reason):
    if os.environ.get("RPSUP_REQUIRE_PRIVILEGED") == "1":
        print(f"FAIL: cannot run, and RPSUP_REQUIRE_PRIVILEGED=1: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def enter_private_netns():
    """Re-executes the test in a network namespace of its own (once), with loopback up."""
    if os.geteuid() != 0:
        skip_or_fail("needs root (network namespaces, binding, signals to other users' processes)")
    if os.environ.get("RPSUP_TEST_IN_NETNS") != str(os.getpid()):
        if not shutil.which("unshare"):
            skip_or_fail("unshare(1) is not installed")
        env = dict(os.environ)
        # exec keeps the pid: the marker says "this process is already inside".
        env["RPSUP_TEST_IN_NETNS"] = str(os.getpid())
        os.execvpe("unshare", ["unshare", "--net", "--", sys.executable] + sys.argv, env)
    r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if r.returncode != 0:
        skip_or_fail(f"cannot bring up loopback in a new network namespace: {r.stderr.strip()}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeSystemd:
    """The receiving end of rpsupd's sd_notify(): collects READY=1, STATUS= and the fd store. Reads in a
    thread of its own, as PID 1 would, so that rpsupd never waits for it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.store = {}  # name -> [fd, ...]
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while self.running:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 65536, 64)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in msg.decode().split("\n") if "=" in line)
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

    def pump(self, timeout=0.0):
        """Gives the reader time to take in what was sent."""
        time.sleep(timeout)

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
        self.running = False
        self.thread.join()
        with self.lock:
            for fds in self.store.values():
                for fd in fds:
                    os.close(fd)
            self.store = {}
        self.sock.close()


class Rpsup:
    """One rpsupd with a config of the test's, a runtime directory of its own, and cleanup by pid."""

    def __init__(self, name="web", workers=2, extra_service="", extra_socket="", port=None, listen=None,
                 worker_args="", strategy=None):
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

    def start(self, with_systemd=False, fds=None, wait=True, args=()):
        """Starts rpsupd. fds: [(name, fd)] passed as LISTEN_FDS/LISTEN_FDNAMES, as systemd does."""
        if with_systemd and not self.systemd:
            self.systemd = FakeSystemd(os.path.join(self.tmp, "systemd-notify"))
        logf = open(self.logfile, "a")
        argv = [RPSUPD, "--config", self.config, *args, self.name]
        env = self.env()
        if fds:
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in fds)
            pid = os.fork()
            if pid == 0:
                try:
                    # Into place at 3, 4, ...: first above all targets, then down.
                    high = [os.dup(fd) for _, fd in fds]
                    high = [os.dup2(h, 100 + i) or (100 + i) for i, h in enumerate(high)]
                    for i, h in enumerate(high):
                        os.dup2(h, 3 + i)
                    os.dup2(logf.fileno(), 1)
                    os.dup2(logf.fileno(), 2)
                    os.closerange(3 + len(fds), 4096)
                    env["LISTEN_PID"] = str(os.getpid())
                    os.execve(RPSUPD, argv, env)
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
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"RPSUP_TEST_TOKEN={self.token}".encode() in f.read().split(b"\0"):
                        pids.add(int(entry))
            except OSError:
                pass
        return pids

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
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.systemd:
            self.systemd.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


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


class HeldAcks:
    """Clients' final ACKs to `port` are dropped on lo (XDP) until release(): their handshakes stay in
    flight on the server side (request sockets)."""

    def __init__(self, port):
        self.proc = subprocess.Popen([XDP_DROP_ACK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "attached":
            err = self.proc.stderr.read()
            self.proc.wait()
            skip_or_fail(f"cannot attach an XDP program to lo: {err.strip()}")

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            out = self.proc.stdout.read()
            self.proc.wait(timeout=10)
            return out.strip()
        return ""


def syn_recv_count(port):
    """Handshakes in flight on the server side for a local port (state SYN_RECV in /proc/net/tcp*)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "03" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


def netstat():
    """TcpExt counters of this network namespace."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:])))
    return {}


class Load:
    """rpsup-load running in the background until stop()."""

    def __init__(self, port, concurrency=16, host="127.0.0.1", extra=()):
        self.netstat_before = netstat()
        self.stopfile = tempfile.mktemp(prefix="rpsup-load-stop-")
        self.proc = subprocess.Popen(
            [LOAD, "--connect", f"{host}:{port}", "--concurrency", str(concurrency), "--duration", "3600",
             "--stop-file", self.stopfile, "--json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        open(self.stopfile, "w").close()
        out, err = self.proc.communicate(timeout=60)
        os.unlink(self.stopfile)
        try:
            report = json.loads(out)
            after = netstat()
            # What the kernel saw meanwhile: helps to tell where a failure came from.
            report["kernel"] = {k: after.get(k, 0) - self.netstat_before.get(k, 0)
                                for k in ("TCPMigrateReqSuccess", "TCPMigrateReqFailure", "ListenDrops",
                                          "ListenOverflows", "TCPAbortOnClose", "TCPAbortOnData", "TCPReqQFullDrop",
                                          "TCPBacklogDrop")}
            return report
        except json.JSONDecodeError:
            raise Failed(f"rpsup-load printed no report (exit {self.proc.returncode}): {out}\n{err}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(test, *args, **kwargs):
    """Runs test(*args) with the netns set up; exit code as the test protocol wants."""
    enter_private_netns()
    for path in (RPSUPD, RPSUPCTL, WORKER) + ((LOAD,) if os.environ.get("RPSUP_SKIP_LOAD_CHECK") != "1" else ()):
        if not os.access(path, os.X_OK):
            print(f"FAIL: {path} is not built", flush=True)
            sys.exit(1)
    try:
        test(*args, **kwargs)
    except Failed as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)
