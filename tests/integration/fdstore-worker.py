#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A worker that keeps its client connections across its own restarts and reloads with its slot's fd store:
it stores each connection it accepts (FDSTORE=1, FDNAME=conn-PID-N), answers each line "LINE PID", and on
start takes the stored connections back from LISTEN_FDS (after its listeners, named conn-...) and goes on
answering on them. A client that closes is removed from the store (FDSTOREREMOVE=1). On SIGTERM it stops
serving at once (its stored connections are its slot's next worker's) and exits 0.

  --no-store        stores nothing
  --store-listener  also sends its listeners with FDSTORE=1 when it starts (rpsupd refuses them)
  --fill N          also stores N fds of /dev/null with 217-byte names when it starts; its STATUS= says how
                    many such fds it got from the store

  fdstore-worker.py [--no-store] [--store-listener] [--fill N]"""

import array
import os
import selectors
import signal
import socket
import sys

stop = False
FILL_NAME = "f" * 217


def on_term(*_):
    global stop
    stop = True


def main():
    args = sys.argv[1:]
    store = "--no-store" not in args
    fill = int(args[args.index("--fill") + 1]) if "--fill" in args else 0
    signal.signal(signal.SIGTERM, on_term)
    path = os.environ["NOTIFY_SOCKET"]
    if path.startswith("@"):
        path = "\0" + path[1:]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sel = selectors.DefaultSelector()
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    n = int(os.environ.get("LISTEN_FDS", "0"))
    conns = {}  # fd -> (socket, name, buffer)
    listeners = []
    taken = filled = 0
    for i in range(n):
        fd = 3 + i
        if i < len(names) and names[i] == FILL_NAME:
            filled += 1
            continue
        s = socket.socket(fileno=fd)
        s.setblocking(False)
        if i < len(names) and names[i].startswith("conn-"):
            conns[fd] = [s, names[i], b""]
            sel.register(s, selectors.EVENT_READ)
            taken += 1
        elif s.type == socket.SOCK_STREAM:
            listeners.append(s)
            sel.register(s, selectors.EVENT_READ)
    pid = os.getpid()
    if "--store-listener" in args:
        for s in listeners:
            notify.sendmsg([b"FDSTORE=1\nFDNAME=listener"],
                           [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))], 0, path)
    while fill > 0:
        batch = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(min(fill, 250))]
        notify.sendmsg([f"FDSTORE=1\nFDNAME={FILL_NAME}\nFDPOLL=0".encode()],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", batch))], 0, path)
        for fd in batch:
            os.close(fd)
        fill -= len(batch)
    status = f"took {taken} stored connections" + (f" and {filled} filled fds" if filled else "")
    notify.sendto(f"READY=1\nSTATUS={status}".encode(), path)
    accepted = 0

    def drop(fd, remove):
        s, name, _ = conns.pop(fd)
        sel.unregister(s)
        if remove and store:
            notify.sendto(f"FDSTOREREMOVE=1\nFDNAME={name}".encode(), path)
        s.close()

    while not stop:
        try:
            events = sel.select(timeout=0.5)
        except InterruptedError:
            continue
        for key, _ in events:
            if stop:
                break
            s = key.fileobj
            if s in listeners:
                try:
                    c, _ = s.accept()
                except (BlockingIOError, OSError):
                    continue
                c.setblocking(False)
                accepted += 1
                name = f"conn-{pid}-{accepted}"
                conns[c.fileno()] = [c, name, b""]
                sel.register(c, selectors.EVENT_READ)
                if store:
                    notify.sendmsg([f"FDSTORE=1\nFDNAME={name}".encode()],
                                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [c.fileno()]))], 0, path)
                continue
            entry = conns.get(s.fileno())
            if not entry:
                continue
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue  # another worker of the slot read it first
            except OSError:
                drop(s.fileno(), True)
                continue
            if not data:
                drop(s.fileno(), True)
                continue
            entry[2] += data
            while b"\n" in entry[2]:
                line, entry[2] = entry[2].split(b"\n", 1)
                try:
                    s.sendall(line + f" {pid}\n".encode())
                except BlockingIOError:
                    pass
    # Asked to stop: the connections stay open in the store, for the slot's next worker.
    sys.exit(0)


if __name__ == "__main__":
    main()
