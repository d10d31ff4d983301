# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the integration tests (rpsuptest.py) and the benchmarks (bench/run) share to put a service under
load on loopback: a network namespace of their own, fresh ports, the kernel's TCP counters, handshakes held
in flight with XDP, the load generator rpsup-load and its report, and the processes a run started, found by
a token in their environment.

bench/run imports this file from here (it adds tests/integration to sys.path); the tests find it next to
them. Failures raise HarnessError; each caller turns that into its own verdict."""

import array
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading

# TcpExt (bare names) and Tcp ("Tcp.Name") counters kept with every load report: where a failure came from,
# as the kernel saw it.
KERNEL_COUNTERS = ("TCPMigrateReqSuccess", "TCPMigrateReqFailure", "ListenDrops", "ListenOverflows",
                   "TCPReqQFullDrop", "TCPAbortOnClose", "TCPAbortOnData", "TCPBacklogDrop",
                   "TCPTimeWaitOverflow", "Tcp.OutRsts", "Tcp.AttemptFails", "Tcp.EstabResets")


class HarnessError(Exception):
    pass


# ---- the namespace ----

def enter_private_netns(marker, unavailable):
    """Re-executes the running script in a network namespace of its own (once), with loopback up. exec keeps
    the pid: the environment variable `marker` holding it says "this process is already inside".
    unavailable(reason) is called, and must not return, where that cannot be done."""
    if os.geteuid() != 0:
        unavailable("needs root (network namespaces, binding, XDP, signals to other users' processes)")
    if os.environ.get(marker) != str(os.getpid()):
        if not shutil.which("unshare"):
            unavailable("unshare(1) is not installed")
        env = dict(os.environ)
        env[marker] = str(os.getpid())
        os.execvpe("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(sys.argv[0])] +
                   sys.argv[1:], env)
    r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if r.returncode != 0:
        unavailable(f"cannot bring up loopback in a new network namespace: {r.stderr.strip()}")


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- what the kernel saw ----

def tcp_counters():
    """TcpExt (bare names) and Tcp ("Tcp.Name") counters of this network namespace."""
    out = {}
    for path, prefixes in (("/proc/net/netstat", {"TcpExt:": ""}), ("/proc/net/snmp", {"Tcp:": "Tcp."})):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            head = names.split()[0]
            if head in prefixes:
                for k, v in zip(names.split()[1:], values.split()[1:]):
                    out[prefixes[head] + k] = int(v)
    return out


def counters_delta(before, after, names=KERNEL_COUNTERS):
    return {k: after.get(k, 0) - before.get(k, 0) for k in names}


def handshakes_in_flight(port):
    """Server-side handshakes in flight (SYN_RECV request sockets) on a local port, from /proc/net/tcp*."""
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


# ---- sd_notify() ----

class NotifyReceiver:
    """The receiving end of sd_notify() on a datagram socket at path. It is read all the time, in a thread of
    its own, as systemd does: the queue is short (net.unix.max_dgram_qlen), and a sender that found it full
    would block there. handle(fields, fds, pid) is called in that thread for each message, with its
    KEY=VALUE lines, the fds that came with it (handle's to close) and the sender's pid."""

    MAX_FDS = 64

    def __init__(self, path, handle):
        self.path = path
        self.handle = handle
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        cred_size = struct.calcsize("3i")
        space = socket.CMSG_SPACE(self.MAX_FDS * 4) + socket.CMSG_SPACE(cred_size)
        while self.running:
            try:
                msg, anc, _, _ = self.sock.recvmsg(65536, space)
            except socket.timeout:
                continue
            except OSError:
                return
            fds, pid = [], None
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += array.array("i", data[:len(data) - len(data) % 4])
                elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", data[:cred_size])[0]
            fields = dict(line.split("=", 1) for line in msg.decode(errors="replace").split("\n") if "=" in line)
            self.handle(fields, fds, pid)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


# ---- held ACKs ----

class HeldAcks:
    """Clients' final ACKs (and everything else they send with ACK set) to `port` are dropped on lo by XDP
    (the helper program xdp-drop-ack) until release(): their handshakes stay in flight on the server side
    (request sockets). spawn starts the helper (subprocess.Popen, or a registry that ends it by pid)."""

    def __init__(self, program, port, spawn=subprocess.Popen):
        self.proc = spawn([program, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "attached":
            err = self.proc.stderr.read()
            self.proc.wait()
            raise HarnessError(f"cannot attach an XDP program to lo: {err.strip()}")

    def release(self):
        """Lets the ACKs through again; returns how many segments were dropped."""
        if self.proc.poll() is not None:
            return 0
        self.proc.stdin.close()
        out = self.proc.stdout.read().strip()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return int(out.split()[-1]) if out.startswith("dropped") else 0


# ---- the load generator ----

class LoadRun:
    """One rpsup-load process against host:port. Its JSON report (stdout) and, with interval_ms, its
    per-interval lines (stderr) go to files named by `out`, so that neither pipe can fill up. It runs for
    `duration` seconds, or until stop_file exists."""

    def __init__(self, program, host, port, out, concurrency=16, duration=3600, stop_file=None, timeout_ms=None,
                 interval_ms=None, sources=None, extra=(), spawn=subprocess.Popen):
        argv = [program, "--connect", f"{host}:{port}", "--concurrency", str(concurrency), "--duration",
                str(duration), "--json"]
        if stop_file:
            argv += ["--stop-file", stop_file]
        if timeout_ms is not None:
            argv += ["--timeout", str(timeout_ms)]
        if interval_ms:
            argv += ["--interval", str(interval_ms)]
        if sources:
            argv += ["--source", ",".join(sources)]
        self.out, self.err = out, out + ".err"
        with open(self.out, "w") as fo, open(self.err, "w") as fe:
            self.proc = spawn(argv + list(extra), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)

    def intervals(self):
        """The per-interval lines printed so far: {"t", "ok", "failed", "rate"} each."""
        lines = []
        for line in read_text(self.err).splitlines():
            if line.startswith("{") and line.endswith("}"):
                lines.append(json.loads(line))
        return lines

    def wait(self, timeout):
        """Waits for the process to end; returns (report, intervals)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError(f"rpsup-load did not finish within {timeout:.0f}s")
        text = read_text(self.out)
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            raise HarnessError(f"rpsup-load printed no report (exit {self.proc.returncode}): {text}\n"
                               f"{read_text(self.err)[-2000:]}")
        return report, self.intervals()

    def kill(self):
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ---- processes ----

def tagged_pids(var, token):
    """Processes other than this one whose environment holds var=token: started by the run, directly or
    through an rpsupd of its own (workers inherit the environment)."""
    pids = set()
    needle = f"{var}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.add(int(entry))
        except OSError:
            pass
    return pids


def kill_pid(pid, sig):
    """Sends sig; SIGKILL goes with SIGCONT, so that a stopped process also dies at once."""
    try:
        if sig == signal.SIGKILL:
            os.kill(pid, signal.SIGCONT)
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default
