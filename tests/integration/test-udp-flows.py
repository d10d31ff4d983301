#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Datagram flows keep their worker (FlowTableSize=), with the drain strategy and per-worker datagram
listeners.

sticky: 200 long-lived flows (each a socket with a fixed source port, one datagram every 50 ms, each
answered with the answering worker's pid) across 10 reloads and 2 scale-ins: no flow is ever answered by
another worker while the worker that answered it before is alive; flows started after a reload are
answered by the live generation; after a scale-out (where the hash alone would move most of them) and
rpsupd killed (SIGKILL) and started again with its fd store, the flows still keep their workers: the table
came back with the program. Then, with FlowTableSize=0 (which applies at the next reload), one reload
does move the flows of the old workers while those still live: what the table prevents, measured with the
same detector.

retire: a worker whose slot has a stream and a datagram listener on one port exits (DrainSec=2): its flows
are answered by the live generation at once (they miss: flow_table_lost), not after the stream listener's
linger; with Steering=kernel in the config and hash set by rpsupctl steer, a retiring datagram worker keeps
its flows past the 1 s of datagrams without the table; a TCP-only service gets a 1-entry table, off; a
count of 50,000 flows (several steps of the walk) is finished by the event loop and published, and rpsupd
is idle after it.

bound: a million distinct flows (16 source addresses x 62,500 source ports, sent from one raw socket with
sendmmsg) through a table of 4096: the table holds at most 4096 flows, rpsupd's memory does not grow, and
neither does the kernel's memory for the map (a preallocated LRU hash map: its memlock is fixed at
creation, whatever the entries)."""

import ctypes
import os
import re
import selectors
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, sys.path[0])
from rpsuptest import Rpsup, check, log, process_state, request, run, wait_until  # noqa: E402

FLOWS = 200
PERIOD = 0.05


def alive(pid):
    return process_state(pid) not in (None, "Z", "X")


def pid_of(reply):
    m = re.search(rb"pid=(\d+)", reply)
    return int(m.group(1)) if m else None


def udp_config(r, extra):
    r.write_config(open(r.config).read().replace(f"ListenStream=127.0.0.1:{r.port}",
                                                 f"ListenDatagram=127.0.0.1:{r.port}")
                   .replace("[Socket]", f"{extra}\n\n[Socket]", 1))


class Flows:
    """FLOWS sockets, each with a source port of its own, sending one datagram every PERIOD from a thread;
    for each answer, the flow's previous worker: a change while that worker lives is a broken flow."""

    def __init__(self, port, n=FLOWS):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = []
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.socks.append(s)
        self.lock = threading.Lock()
        self.last = [None] * n          # pid that answered each flow last
        self.counts = [0] * n           # answers each flow got
        self.broken = []                # (flow, old pid, new pid): moved while the old worker lived
        self.moved_after_exit = 0       # moved because their worker was gone: steered afresh
        self.sent = self.answered = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        next_send = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_send:
                for s in self.socks:
                    try:
                        s.send(b"hello\n")
                        self.sent += 1
                    except OSError:
                        pass  # ECONNREFUSED from an ICMP error of an earlier datagram: sent on
                next_send += PERIOD
                if next_send < now:
                    next_send = now + PERIOD
            for key, _ in self.sel.select(timeout=max(0.0, next_send - time.monotonic())):
                s, i = key.fileobj, key.data
                while True:
                    try:
                        data = s.recv(512)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    self._answer(i, pid_of(data))

    def _answer(self, i, pid):
        with self.lock:
            self.answered += 1
            self.counts[i] += 1
            old = self.last[i]
            if old is not None and pid != old:
                if alive(old):
                    self.broken.append((i, old, pid))
                else:
                    self.moved_after_exit += 1
            self.last[i] = pid

    def answer_counts(self):
        with self.lock:
            return list(self.counts)

    def answered_again(self, n, what, timeout=15):
        """Waits until every flow has been answered n more times (n periods of traffic observed)."""
        base = self.answer_counts()
        wait_until(lambda: all(c - b >= n for c, b in zip(self.answer_counts(), base)), timeout=timeout,
                   what=f"every flow answered {n} more times {what}")

    def snapshot(self):
        with self.lock:
            return list(self.last), list(self.broken), self.moved_after_exit, self.sent, self.answered

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def new_flows_answered_by(port, keep, n=10):
    """Pids that answer n flows opened now (one datagram each; retried: a datagram may meet a worker's exit).
    Their sockets stay open (in keep): a later flow must not reuse a source port, whose 4-tuple the table
    would know."""
    pids = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        keep.append(s)
        s.settimeout(0.5)
        s.connect(("127.0.0.1", port))
        for _ in range(6):
            s.send(b"hello\n")
            try:
                pids.append(pid_of(s.recv(512)))
                break
            except (socket.timeout, ConnectionRefusedError):
                continue
    return pids


def live_pids(r):
    return {w["pid"] for w in r.live_workers()}


def test_sticky():
    r = Rpsup(workers=4, strategy="drain")
    udp_config(r, "FlowIdleSec=1")
    try:
        st = r.start(with_systemd=True)
        check(st["service"]["flow_table"], f"the flow table is off: {st['service']}")
        check(st["service"]["flow_table_size"] == 65536, f"flow table size {st['service']['flow_table_size']}")
        flows = Flows(r.port)
        probes = []
        try:
            wait_until(lambda: all(flows.snapshot()[0]), timeout=10, what="every flow answered")
            ops = ["reload", "reload", "scale 3", "reload", "reload", "reload", "scale 2", "reload", "reload",
                   "reload", "reload", "reload"]
            for op in ops:
                before = set(flows.snapshot()[0])
                rc, out, err = r.reload() if op == "reload" else r.scale(int(op.split()[1]))
                check(rc == 0, f"{op}: {err}")
                live = live_pids(r)
                fresh = new_flows_answered_by(r.port, probes)
                check(all(p in live for p in fresh),
                      f"after {op}, new flows answered by {fresh}, not all of the live generation {sorted(live)}")
                # Let the flows run on with their (now retiring) workers for a while.
                flows.answered_again(16, f"after {op}")
                last, broken, moved, sent, answered = flows.snapshot()
                still = sum(1 for p in last if p in before and alive(p))
                log(f"{op}: new flows to the live generation {sorted(set(fresh))}; {still} flows still with "
                    f"their old worker, {moved} moved after their worker was gone, {len(broken)} broken")
                check(not broken, f"flows answered by another worker while theirs lived: {broken[:5]}")
            st = r.status()
            retiring = [w for w in st["workers"] if w["retiring"] and w["pid"]]
            check(any(w["drain_flows_active"] for w in retiring),
                  f"no retiring worker says its flows are active: {[(w['pid'], w['state']) for w in retiring]}")
            log(f"flow table: {st['service']['flow_table_flows']} flows, {st['service']['flow_table_hits']} hits, "
                f"{st['service']['flow_table_new']} new, {st['service']['flow_table_lost']} lost, hit ratio "
                f"{st['service']['flow_table_hit_ratio']:.4f}")
            check(st["service"]["flow_table_hits"] > 0, "no flow hits counted")
            check(sum(w["flow_hits"] for w in st["workers"]) > 0, "no per-worker flow hits")
            rc, text, err = r.ctl("status", r.name)
            check(rc == 0 and "Flows: sticky" in text and "flows active (last datagram" in text,
                  f"rpsupctl status does not say the flows are sticky and why a retiring worker stays:\n{text}")
            log("rpsupctl status: " + " | ".join(line.strip() for line in text.splitlines()
                                                 if "Flows:" in line or "flows active" in line)[:600])

            # rpsupd dies; the program and its flow table live on in the fd store, and so do the workers.
            # First every flow with a live worker (their old ones reached their drain deadline), then a
            # scale-out: the set changes, so the hash alone would move about 2 flows in 3; the table keeps
            # each with its worker, before the restart and after it (a table loaded afresh would not).
            wait_until(lambda: set(flows.snapshot()[0]) <= live_pids(r), timeout=15,
                       what="every flow with a worker of the live generation")
            rc, out, err = r.scale(3)
            check(rc == 0, f"scale 3: {err}")
            flows.answered_again(10, "after the scale-out")
            last, broken, _, _, _ = flows.snapshot()
            check(not broken and set(last) <= live_pids(r), f"flows moved at the scale-out: {broken[:5]}")
            # While rpsupd is dead, the program it left steers on: the workers keep answering.
            r.kill_rpsupd()
            flows.answered_again(5, "while rpsupd is dead")
            r.systemd.sync()
            r.start(fds=r.systemd.stored())
            st = r.wait_running()
            # Each flow must be answered again after the restart, by the worker it had before.
            flows.answered_again(10, "after the rpsupd restart")
            last2, broken, moved, sent, answered = flows.snapshot()
            kept = sum(1 for a, b in zip(last, last2) if a == b)
            log(f"across the rpsupd restart: {kept}/{FLOWS} flows kept their worker, {len(broken)} broken; new "
                f"flows now go to {sorted(set(new_flows_answered_by(r.port, probes, 20)))}")
            check(not broken, f"flows answered by another worker while theirs lived: {broken[:5]}")
            check(kept == FLOWS, f"only {kept} flows kept their worker across the rpsupd restart")
            check(st["service"]["flow_table_size"] == 65536, "the restored flow table changed size")
            rc, out, err = r.reload()
            check(rc == 0, f"reload after the restart: {err}")
            flows.answered_again(20, "after the reload that followed the restart")
            _, broken, moved, sent, answered = flows.snapshot()
            check(not broken, f"flows answered by another worker while theirs lived: {broken[:5]}")
            log(f"{sent} datagrams sent, {answered} answered, {moved} flows moved after their worker was gone, "
                f"0 broken")

            # The same, without the table: one reload moves the flows while their old workers still drain.
            udp_config(r, "FlowIdleSec=1\nFlowTableSize=0")
            rc, out, err = r.reload()
            check(rc == 0, f"reload with FlowTableSize=0: {err}")
            flows.answered_again(10, "after the reload that turned the table off")
            _, broken_before, _, _, _ = flows.snapshot()
            rc, out, err = r.reload()
            check(rc == 0, f"reload: {err}")
            # Within the old workers' 1 s drain window (the table is off): each flow answered again.
            flows.answered_again(3, "after the reload without the table", timeout=5)
            _, broken, _, _, _ = flows.snapshot()
            moved_alive = len({i for i, _, _ in broken[len(broken_before):]})
            log(f"without the flow table: one reload moved {moved_alive}/{FLOWS} flows while their worker lived")
            check(moved_alive >= FLOWS * 9 // 10, f"only {moved_alive} flows moved without the flow table: the "
                  "detector does not see moves")
        finally:
            flows.stop()
            for s in probes:
                s.close()
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


# ---- retiring workers ----

def test_mixed_slot():
    """A slot with a stream and a datagram listener on one port: once its worker has exited, its flows are
    answered at once by the live generation (the datagram listener left the steering with the worker; it
    does not linger with the stream one for the handshakes in flight)."""
    r = Rpsup(workers=2, strategy="drain")
    r.write_config(open(r.config).read().replace(
        f"ListenStream=127.0.0.1:{r.port}",
        f"ListenStream=127.0.0.1:{r.port}\nListenDatagram=127.0.0.1:{r.port}")
                   .replace("[Socket]", "FlowIdleSec=30\nDrainSec=2\n\n[Socket]", 1))
    try:
        st = r.start()
        check(st["service"]["flow_table"], f"the flow table is off: {st['service']}")
        flows = Flows(r.port, 20)
        try:
            wait_until(lambda: all(flows.snapshot()[0]), timeout=10, what="every flow answered")
            old = set(flows.snapshot()[0])
            lost = r.status()["service"]["flow_table_lost"]
            rc, out, err = r.reload()
            check(rc == 0, f"reload: {err}")
            # The old workers keep their flows through DrainSec=2, then are stopped and exit.
            wait_until(lambda: not any(alive(p) for p in old), timeout=15, what="the old workers' exit")
            gone = time.monotonic()
            flows.answered_again(3, "after their workers exited", timeout=5)
            log(f"flows of the exited workers answered again {time.monotonic() - gone:.2f}s after the exit")
            last, broken, moved, _, _ = flows.snapshot()
            live = live_pids(r)
            check(not broken, f"flows answered by another worker while theirs lived: {broken[:5]}")
            check(set(last) <= live, f"flows answered by {set(last) - live}, not the live generation {sorted(live)}")
            st = r.status()["service"]
            check(st["flow_table_lost"] > lost, f"flow_table_lost {lost} -> {st['flow_table_lost']}: the exited "
                  "workers' flows did not miss")
            log(f"mixed slot: {moved} flows moved after their worker was gone, flow_table_lost {lost} -> "
                f"{st['flow_table_lost']}")
            check("pid=" in request(r.port), "no TCP answer after the reload")
        finally:
            flows.stop()
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test_policy_switched():
    """Steering=kernel in the config, hash set at run time: the table is on, and a retiring datagram
    worker keeps its flows through the drain window of the flow table (StopTimeoutSec=20: far past the
    2.5 s looked at, whatever the machine's pace), not the 1 s of datagrams without it."""
    r = Rpsup(workers=2, strategy="drain")
    udp_config(r, "Steering=kernel\nFlowIdleSec=30")
    r.write_config(open(r.config).read().replace("StopTimeoutSec=5", "StopTimeoutSec=20"))
    try:
        st = r.start()
        check(not st["service"]["flow_table"], "the flow table is on under Steering=kernel")
        rc, out, err = r.ctl("steer", r.name, "hash")
        check(rc == 0, f"rpsupctl steer hash: {err}")
        wait_until(lambda: r.status()["service"]["flow_table"], timeout=5, what="the flow table on under hash")
        flows = Flows(r.port, 20)
        try:
            wait_until(lambda: all(flows.snapshot()[0]), timeout=10, what="every flow answered")
            flows.answered_again(3, "before the reload")
            before = flows.snapshot()[0]
            rc, out, err = r.reload()
            check(rc == 0, f"reload: {err}")
            # 2.5 s of traffic: past the 1 s window, within the flow table's.
            flows.answered_again(50, "after the reload")
            last, broken, moved, _, _ = flows.snapshot()
            check(not broken, f"flows answered by another worker while theirs lived: {broken[:5]}")
            check(last == before and moved == 0 and all(alive(p) for p in set(before)),
                  f"the retiring workers {sorted(set(before))} lost their flows within 2.5 s (moved {moved}): "
                  "their drain window did not follow the policy set at run time")
            log(f"policy switched at run time: {len(before)} flows still with their retiring workers after 2.5 s")
        finally:
            flows.stop()
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test_tcp_only():
    """A service without a datagram listener gets a flow table of 1 entry (not a preallocated 65,536), and
    status says the table is off."""
    r = Rpsup(workers=2, strategy="drain")
    try:
        st = r.start()["service"]
        check(not st["flow_table"] and st["flow_table_size"] == 1,
              f"TCP only: flow_table {st['flow_table']}, size {st['flow_table_size']}")
        check(flow_map_info(r.proc.pid, 1) is not None, "rpsupd holds no 1-entry flow table")
        rc, text, err = r.ctl("status", r.name)
        check(rc == 0 and "Flows: off" in text, f"rpsupctl status does not say the flows are off:\n{text}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test_count_walk():
    """50,000 flows in a table of 65,536: more than one step of the count (16,384 entries), so the count is
    finished by rpsupd's event loop after the status call that started it, and published; then rpsupd
    does nothing while nobody asks."""
    r = Rpsup(workers=2, strategy="drain")
    udp_config(r, "")
    try:
        r.start()
        pid = r.proc.pid
        sent = send_flows(r.port, [f"127.0.0.{i}" for i in range(2, 18)], range(1024, 1024 + 3125))
        check(sent == 50000, f"sent {sent} flows")
        flood_over = time.time()

        seen = {}

        def counted():
            s = seen["last"] = r.status()["service"]
            return s if s["flow_table_counted_usec"] / 1e6 > flood_over and s["flow_table_flows"] > 16384 else None

        s = wait_until(counted, timeout=10)
        check(s, f"no count of the flow table past one step within 10 s: {seen.get('last')}")
        log(f"count walk: {s['flow_table_flows']} flows counted, {s['flow_table_new']} entered")
        check(s["flow_table_flows"] <= 65536, f"{s['flow_table_flows']} flows in a table of 65536")
        # Idle: no walk runs once the count is published (a source left on would spin).
        cpu = cpu_seconds(pid)
        time.sleep(1.0)  # an observation window, not a synchronisation
        idle = cpu_seconds(pid) - cpu
        check(idle < 0.1, f"rpsupd used {idle:.2f}s of CPU in 1 s with nothing to do")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test_retire():
    test_mixed_slot()
    test_policy_switched()
    test_tcp_only()
    test_count_walk()


# ---- the bound ----

class Mmsghdr(ctypes.Structure):
    pass


class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32), ("msg_iov", ctypes.POINTER(Iovec)),
                ("msg_iovlen", ctypes.c_size_t), ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


Mmsghdr._fields_ = [("msg_hdr", Msghdr), ("msg_len", ctypes.c_uint)]


def send_flows(port, addresses, ports, batch=1024):
    """One UDP datagram per (source address, source port), crafted on a raw socket (IP_HDRINCL) and sent
    with sendmmsg in batches. Returns how many were sent."""
    libc = ctypes.CDLL(None, use_errno=True)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_IP, socket.IP_HDRINCL, 1)
    payload = b"x"
    size = 20 + 8 + len(payload)
    bufs = ctypes.create_string_buffer(size * batch)
    iovs = (Iovec * batch)()
    msgs = (Mmsghdr * batch)()
    dst = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_aton("127.0.0.1"))
    name = ctypes.create_string_buffer(dst, len(dst))
    base = ctypes.addressof(bufs)
    for i in range(batch):
        iovs[i].iov_base = base + i * size
        iovs[i].iov_len = size
        msgs[i].msg_hdr.msg_name = ctypes.addressof(name)
        msgs[i].msg_hdr.msg_namelen = len(dst)
        msgs[i].msg_hdr.msg_iov = ctypes.pointer(iovs[i])
        msgs[i].msg_hdr.msg_iovlen = 1
    dst_addr = socket.inet_aton("127.0.0.1")
    sent = 0
    pending = 0
    for a in addresses:
        src = socket.inet_aton(a)
        for p in ports:
            off = pending * size
            # IPv4 header (the kernel fills in the checksum, the id and the total length), then UDP
            # (checksum 0: none).
            struct.pack_into("!BBHHHBBH4s4sHHHH", bufs, off, 0x45, 0, size, 0, 0, 64, socket.IPPROTO_UDP, 0, src,
                             dst_addr, p, port, 8 + len(payload), 0)
            bufs[off + 28] = payload
            pending += 1
            if pending == batch:
                sent += _sendmmsg(libc, raw, msgs, pending)
                pending = 0
    if pending:
        sent += _sendmmsg(libc, raw, msgs, pending)
    raw.close()
    return sent


def _sendmmsg(libc, raw, msgs, n):
    done = 0
    while done < n:
        k = libc.sendmmsg(raw.fileno(), ctypes.byref(msgs, done * ctypes.sizeof(Mmsghdr)), n - done, 0)
        if k < 0:
            err = ctypes.get_errno()
            if err in (11, 105):  # EAGAIN, ENOBUFS: the loopback backlog is full; let it drain
                time.sleep(0.001)
                continue
            raise OSError(err, os.strerror(err))
        done += k
    return done


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def flow_map_info(pid, max_entries):
    """The fdinfo (map_type, max_entries, memlock) of rpsupd's map fd that is the flow table: the LRU hash
    (map_type 9) of that size."""
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        if info.get("map_type") == "9" and info.get("max_entries") == str(max_entries):
            return info
    return None


def test_bound():
    size = 4096
    r = Rpsup(workers=2, strategy="drain")
    udp_config(r, f"FlowTableSize={size}")
    try:
        st = r.start()
        check(st["service"]["flow_table_size"] == size, f"flow table size {st['service']['flow_table_size']}")
        pid = r.proc.pid
        before = flow_map_info(pid, size)
        check(before is not None, "rpsupd holds no LRU hash map of the flow table's size")
        rss_before = rss_kib(pid)
        cpu_before = cpu_seconds(pid)
        addresses = [f"127.0.0.{i}" for i in range(2, 18)]
        ports = range(1024, 1024 + 62500)
        t0 = time.monotonic()
        sent = send_flows(r.port, addresses, ports)
        log(f"{sent} distinct flows sent in {time.monotonic() - t0:.1f}s; rpsupd used {cpu_seconds(pid) - cpu_before:.2f}s "
            "of CPU meanwhile")
        check(sent == 1000000, f"sent {sent} flows")

        flood_over = time.time()

        def counted():
            # A count that ended after the flood (status starts one when the last is 2 s old).
            s = r.status()["service"]
            return s if s["flow_table_counted_usec"] / 1e6 > flood_over and s["flow_table_flows"] > 0 else None

        s = wait_until(counted, timeout=10, what="a count of the flow table after the flood")
        after = flow_map_info(pid, size)
        # Several status calls, each may count the table again.
        for _ in range(3):
            r.status()
        rss_after = rss_kib(pid)
        log(f"flow table: {s['flow_table_flows']} of {s['flow_table_size']} flows, {s['flow_table_new']} entered; "
            f"map memlock {before.get('memlock')} -> {after.get('memlock')} bytes; rpsupd RSS {rss_before} -> "
            f"{rss_after} KiB")
        check(s["flow_table_flows"] <= size, f"{s['flow_table_flows']} flows in a table of {size}")
        check(s["flow_table_flows"] >= size // 2, f"only {s['flow_table_flows']} flows in the table: were the "
              "datagrams steered?")
        check(s["flow_table_new"] >= 500000, f"only {s['flow_table_new']} of 1000000 flows reached the program")
        check(after is not None and after.get("memlock") == before.get("memlock"),
              f"the map's memlock changed: {before.get('memlock')} -> {after and after.get('memlock')}")
        if sanitized(pid):
            log("rpsupd runs under AddressSanitizer, whose quarantine keeps freed memory: its RSS is not compared")
        else:
            check(rss_after - rss_before < 2048, f"rpsupd's RSS grew by {rss_after - rss_before} KiB")
        # The service still answers a flow of its own.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(2)
            c.connect(("127.0.0.1", r.port))
            c.send(b"hello\n")
            check(pid_of(c.recv(512)) is not None, "no answer after the flood")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


def test(mode):
    {"sticky": test_sticky, "bound": test_bound, "retire": test_retire}[mode]()


if __name__ == "__main__":
    run(test, sys.argv[1])
