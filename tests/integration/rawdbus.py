# SPDX-License-Identifier: LGPL-2.1-or-later
"""D-Bus on the control socket by hand, for what client libraries do not do: the first call in the same
write as BEGIN, half messages, calls whose replies are never read, many connections from one process.
Builds little-endian messages; reads both byte orders."""

import os
import socket
import struct
import time

PATH = "/io/rpsup/Supervisor1"
INTERFACE = "io.rpsup.Supervisor1"
METHOD_CALL, METHOD_RETURN, ERROR = 1, 2, 3


def control_path(r):
    """The control socket of an Rpsup (rpsuptest)."""
    return os.path.join(r.runtime, r.name, "control")


def auth(uid=None, fds=False):
    """The SASL exchange up to BEGIN, as one string of bytes (EXTERNAL with the uid, as GDBus sends it)."""
    uid = os.getuid() if uid is None else uid
    out = b"\0AUTH EXTERNAL " + str(uid).encode().hex().encode() + b"\r\n"
    if fds:
        out += b"NEGOTIATE_UNIX_FD\r\n"
    return out + b"BEGIN\r\n"


def _pad(buf, n):
    return buf + b"\0" * (-len(buf) % n)


def method_call(serial, member, interface=INTERFACE, path=PATH, signature="", body=b""):
    """A METHOD_CALL message. `body` is already marshalled for `signature`."""
    fields = b""

    def string_field(code, sig, value):
        nonlocal fields
        fields = _pad(fields, 8) + bytes([code, 1]) + sig.encode() + b"\0"
        v = value.encode()
        if sig == "g":
            fields += bytes([len(v)]) + v + b"\0"
        else:
            fields = _pad(fields, 4) + struct.pack("<I", len(v)) + v + b"\0"

    string_field(1, "o", path)
    string_field(2, "s", interface)
    string_field(3, "s", member)
    if signature:
        string_field(8, "g", signature)
    header = struct.pack("<cBBBIII", b"l", METHOD_CALL, 0, 1, len(body), serial, len(fields))
    return _pad(header + fields, 8) + body


def header_size(header):
    """The whole size of a message from its first 16 bytes."""
    e = "<" if header[0:1] == b"l" else ">"
    body, fields = struct.unpack_from(e + "I", header, 4)[0], struct.unpack_from(e + "I", header, 12)[0]
    return 16 + ((fields + 7) & ~7) + body


def _align(pos, n):
    return pos + (-pos % n)


_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4, "o": 4, "g": 1,
          "v": 1, "a": 4, "(": 8, "{": 8, "h": 4}


def _one_type(sig):
    """The first complete type of a signature, and the rest."""
    if sig[0] == "a":
        t, rest = _one_type(sig[1:])
        return "a" + t, rest
    if sig[0] in "({":
        close = ")" if sig[0] == "(" else "}"
        depth, i = 0, 0
        while True:
            if sig[i] in "({":
                depth += 1
            elif sig[i] in ")}":
                depth -= 1
                if depth == 0:
                    return sig[:i + 1], sig[i + 1:]
            i += 1
    return sig[0], sig[1:]


def _read(t, buf, pos, e):
    c = t[0]
    pos = _align(pos, _ALIGN[c])
    fixed = {"y": "B", "n": "h", "q": "H", "i": "i", "u": "I", "h": "I", "x": "q", "t": "Q", "d": "d"}
    if c in fixed:
        size = struct.calcsize(fixed[c])
        return struct.unpack_from(e + fixed[c], buf, pos)[0], pos + size
    if c == "b":
        return struct.unpack_from(e + "I", buf, pos)[0] != 0, pos + 4
    if c in "so":
        n = struct.unpack_from(e + "I", buf, pos)[0]
        return buf[pos + 4:pos + 4 + n].decode(), pos + 4 + n + 1
    if c == "g":
        n = buf[pos]
        return buf[pos + 1:pos + 1 + n].decode(), pos + 1 + n + 1
    if c == "v":
        sig, pos = _read("g", buf, pos, e)
        return _read(sig, buf, pos, e)
    if c == "a":
        n = struct.unpack_from(e + "I", buf, pos)[0]
        elem = t[1:]
        pos = _align(pos + 4, _ALIGN[elem[0]])
        end, items = pos + n, []
        while pos < end:
            v, pos = _read(elem, buf, pos, e)
            items.append(v)
        if elem[0] == "{":
            return dict(items), pos
        return items, pos
    if c in "({":
        inner, items = t[1:-1], []
        while inner:
            one, inner = _one_type(inner)
            v, pos = _read(one, buf, pos, e)
            items.append(v)
        return tuple(items), pos
    raise ValueError(f"cannot read type {t}")


def parse(msg):
    """A whole message: a dict with type, serial, reply_serial, error_name, signature, body (a list)."""
    e = "<" if msg[0:1] == b"l" else ">"
    out = {"type": msg[1], "serial": struct.unpack_from(e + "I", msg, 8)[0]}
    fields_len = struct.unpack_from(e + "I", msg, 12)[0]
    fields, _ = _read("a(yv)", msg, 12, e)
    names = {4: "error_name", 5: "reply_serial", 8: "signature"}
    for code, value in fields:
        if code in names:
            out[names[code]] = value
    body_at = _align(16 + fields_len, 8)
    pos, body, sig = body_at, [], out.get("signature", "")
    while sig:
        one, sig = _one_type(sig)
        v, pos = _read(one, msg, pos, e)
        body.append(v)
    out["body"] = body
    return out


class Client:
    """One connection, spoken to by hand."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.serial = 0

    def send(self, data):
        self.sock.sendall(data)

    def call_bytes(self, member, **kwargs):
        self.serial += 1
        return method_call(self.serial, member, **kwargs)

    def read_auth(self, fds=False):
        """Reads the server's SASL answers to auth(): OK, and AGREE_UNIX_FD if fds were asked for."""
        for expect in (b"OK ", b"AGREE_UNIX_FD") if fds else (b"OK ",):
            while b"\r\n" not in self.buf:
                self._more()
            line, self.buf = self.buf.split(b"\r\n", 1)
            if not line.startswith(expect):
                raise ConnectionError(f"the server answered {line!r} to the authentication")

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def read_message(self, deadline=None):
        """The next whole message (parsed), reading as needed; raises socket.timeout."""
        while len(self.buf) < 16:
            self._wait(deadline)
            self._more()
        size = header_size(self.buf[:16])
        while len(self.buf) < size:
            self._wait(deadline)
            self._more()
        msg, self.buf = self.buf[:size], self.buf[size:]
        return parse(msg)

    def _wait(self, deadline):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no answer in time")
            self.sock.settimeout(left)

    def call(self, member, timeout=5.0, **kwargs):
        """A call and its answer (a parsed message: type METHOD_RETURN or ERROR)."""
        self.send(self.call_bytes(member, **kwargs))
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(deadline)
            if m.get("reply_serial") == self.serial:
                return m

    def connect_and_auth(self, fds=False):
        self.send(auth(fds=fds))
        self.read_auth(fds)
        return self

    def close(self):
        self.sock.close()


def records(reply):
    """The list of records (dicts) of an aa{sv} reply."""
    return reply["body"][0]
