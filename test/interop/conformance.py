#!/usr/bin/env python3
"""Black-box RFC 6455 conformance suite for a WebSocket echo *server*.

    conformance.py --server PATH [--server-arg ARG ...] [-k SUBSTR] [-v]
    conformance.py --connect HOST:PORT [-k SUBSTR] [-v]

Mirrors the case groups of the Autobahn TestSuite's fuzzing client (sections 1-7, 9
scaled down, 10), written from the RFC 6455 text, plus opening-handshake cases (H.x).
The server under test must be an exact echo server: text back as text, binary as binary.

Verdicts are strict:
  * a case that expects the server to fail the connection passes only if the server sends
    a Close frame with exactly the expected code (1002, 1007 or 1009) and then closes TCP;
    a bare TCP drop is a failure;
  * echo cases compare opcode and every payload byte, then do a closing handshake;
  * closing-handshake cases need the server to answer Close and then close TCP first
    (RFC 6455 §7.1.1).

With --server, the server is started as `PATH --host 127.0.0.1 --port P [ARG ...]` on a
free port, and the run fails if it exits before we stop it (SIGTERM, SIGKILL after 3 s).

Output: `PASS <id> <description>` or `FAIL <id> <description>: <why>` per case, then
`N passed, M failed`. Exit status 0 iff no case failed. Standard library only.
"""

import argparse
import base64
import hashlib
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import namedtuple

DEFAULT_TIMEOUT = 5.0      # seconds, every socket operation
DEFAULT_BUDGET = 50.0      # seconds, the whole run (cases left over then fail)
STARTUP_TIMEOUT = 10.0     # seconds for --server to accept connections
STOP_GRACE = 3.0           # seconds between SIGTERM and SIGKILL
QUIET_WAIT = 0.2           # seconds of silence that count as "the server did nothing"
FAIL_FAST_WAIT = 0.5       # seconds the server gets to fail on invalid UTF-8 (6.4.x)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (RFC 6455 §5.2)
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPNAMES = {CONT: "CONT", TEXT: "TEXT", BINARY: "BINARY", CLOSE: "CLOSE", PING: "PING",
           PONG: "PONG"}



# Close codes a server may send (RFC 6455 §7.4.1, §7.4.2; IANA registry adds 1012-1014).
def valid_close_code(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# ---------------------------------------------------------------------------------------
# Framework: failures, case registry
# ---------------------------------------------------------------------------------------

class Failure(Exception):
    """The server did something a conformant server must not do (the case fails)."""


class TimedOut(Failure):
    """Nothing (or not enough) arrived from the server in time."""


class TCPClosed(Failure):
    """The server closed (or reset) the TCP connection."""


Case = namedtuple("Case", "id desc fn")
CASES = []


def case(cid, desc):
    """Decorator registering `fn(ctx)` as case `cid`."""
    def deco(fn):
        add_case(cid, desc, fn)
        return fn
    return deco


def add_case(cid, desc, fn):
    assert all(c.id != cid for c in CASES), f"duplicate case id {cid}"
    CASES.append(Case(cid, desc, fn))


class Ctx:
    """Per-case context: where the server is, timeouts, and a trace for -v."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.trace = []

    def log(self, msg):
        self.trace.append(msg)

    def client(self, **kw):
        """A Client whose opening handshake is done."""
        c = Client(self)
        try:
            c.connect(**kw)
        except BaseException:
            c.close()
            raise
        return c


# ---------------------------------------------------------------------------------------
# Frame encoding (client side: masked unless told otherwise)
# ---------------------------------------------------------------------------------------

def xor_mask(data, key):
    """RFC 6455 §5.3 masking (also unmasking), fast for multi-MiB payloads."""
    n = len(data)
    if n == 0:
        return b""
    k = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", *, fin=True, rsv=0, mask=True, key=None, length=None, enc=None):
    """One frame as bytes (RFC 6455 §5.2).

    rsv: the 3-bit RSV field (4 = RSV1, 2 = RSV2, 1 = RSV3). key: 4-byte masking key
    (random if None). length: announced payload length (default: the real one).
    enc: force the length field to 7, 16 or 64 bits (default: minimal encoding).
    """
    if isinstance(payload, str):
        payload = payload.encode()
    payload = bytes(payload)
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if enc is None:
        enc = 7 if n < 126 else 16 if n <= 0xFFFF else 64
    if enc == 7:
        head = bytes([b0, mbit | n])
    elif enc == 16:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4) if key is None else bytes(key)
    return head + key + xor_mask(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


def close_frame(code=None, reason=b"", **kw):
    return frame(CLOSE, close_payload(code, reason), **kw)


def fragments(opcode, payload, size):
    """A message split into frames of `size` payload bytes (at least one frame)."""
    payload = payload.encode() if isinstance(payload, str) else bytes(payload)
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    return b"".join(frame(opcode if i == 0 else CONT, p, fin=(i == len(parts) - 1))
                    for i, p in enumerate(parts))


def split_frames(opcode, parts):
    """A message sent as the given list of fragment payloads."""
    return b"".join(frame(opcode if i == 0 else CONT, p, fin=(i == len(parts) - 1))
                    for i, p in enumerate(parts))


PRINTABLE = bytes(range(0x20, 0x7F))


def text_payload(n):
    """n bytes of ASCII (95-byte cycle, so offset mistakes show)."""
    return (PRINTABLE * (n // len(PRINTABLE) + 1))[:n]


def binary_payload(n):
    """n pseudo-random bytes, deterministic per length."""
    return random.Random(n).randbytes(n)


def size_name(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return str(n)


# ---------------------------------------------------------------------------------------
# Client: raw socket, our own handshake, frame reader
# ---------------------------------------------------------------------------------------

Frame = namedtuple("Frame", "fin rsv opcode payload")
Event = namedtuple("Event", "kind data code reason")   # kind: text binary ping pong close


def describe(ev):
    if ev.kind == "close":
        if ev.code is None:
            return "Close (no status code)"
        return f"Close {ev.code}" + (f" {ev.reason!r}" if ev.reason else "")
    return f"{ev.kind} ({len(ev.data)} bytes{', ' + repr(ev.data[:24]) if ev.data else ''})"


def first_difference(a, b):
    n = min(len(a), len(b))
    for i in range(0, n, 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, n)):
                if a[j] != b[j]:
                    return j
    return n


class Client:
    """One TCP connection to the server; all waits are bounded by ctx.timeout."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.timeout = ctx.timeout
        self.sock = None
        self.buf = bytearray()
        self.eof = False          # the server closed or reset TCP
        self.reset = False
        self.send_error = None    # first error while sending (peer gone)
        self.frag_kind = None     # fragmented server message being reassembled
        self.frag_parts = []
        self.got_close = False
        self.out_head = b""       # trace of our own frames: partial header being sent
        self.out_skip = 0         # trace: payload bytes of the current outgoing frame left
        self.in_handshake = True

    # -- context manager --
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def log(self, msg):
        self.ctx.log(msg)

    # -- raw I/O --
    def open_tcp(self):
        s = socket.create_connection((self.ctx.host, self.ctx.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.sock = s

    def _recv_some(self):
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, ConnectionAbortedError):
            self.eof = self.reset = True
            return
        if not data:
            self.eof = True
        else:
            self.buf += data

    def send(self, data, chunk=None, delay=0.0):
        """Sends `data` (optionally in `chunk`-byte writes, `delay` s apart), reading what
        the server sends meanwhile so neither side can block the other. A send error (the
        server already closed) is recorded, not raised: the reads tell what happened."""
        data = bytes(data)
        if not self.in_handshake:
            self._trace_outgoing(data)
        if chunk:
            pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
            self.log(f"> {len(data)} bytes in {len(pieces)} writes of {chunk}"
                     + (f", {delay * 1000:g} ms apart" if delay else ""))
        else:
            pieces = [data]
        for i, piece in enumerate(pieces):
            if self.send_error:
                return
            if i and delay:
                time.sleep(delay)
            self._send_all(piece)

    def _trace_outgoing(self, data):
        """Logs the headers of the frames in `data` (frames may span send() calls)."""
        i = 0
        while i < len(data):
            if self.out_skip:
                step = min(self.out_skip, len(data) - i)
                self.out_skip -= step
                i += step
                continue
            self.out_head += data[i:i + 1]
            i += 1
            h = self.out_head
            if len(h) < 2:
                continue
            need = 2 + {126: 2, 127: 8}.get(h[1] & 0x7F, 0) + (4 if h[1] & 0x80 else 0)
            if len(h) < need:
                continue
            n = h[1] & 0x7F
            if n == 126:
                n = struct.unpack_from("!H", h, 2)[0]
            elif n == 127:
                n = struct.unpack_from("!Q", h, 2)[0]
            op = h[0] & 0xF
            self.log(f"> {OPNAMES.get(op, hex(op))} fin={h[0] >> 7} len={n}"
                     + (f" rsv={(h[0] >> 4) & 7:03b}" if h[0] & 0x70 else "")
                     + ("" if h[1] & 0x80 else " UNMASKED"))
            self.out_head, self.out_skip = b"", n

    def _send_all(self, data):
        view = memoryview(data)
        deadline = time.monotonic() + self.timeout + len(data) / 50e6
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimedOut(f"the server did not read our data within {self.timeout:g} s")
            r, w, _ = select.select([] if self.eof else [self.sock], [self.sock], [], left)
            if r:
                self._recv_some()
            if w:
                try:
                    n = self.sock.send(view[:1 << 18])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    self.send_error = e
                    self.log(f"  (send failed: {e.strerror or e})")
                    return
                view = view[n:]

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if self.eof:
                what = "reset" if self.reset else "closed"
                raise TCPClosed(f"the server {what} the TCP connection"
                                + (" mid-frame" if self.buf else ""))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimedOut("nothing from the server" if not self.buf
                               else "an incomplete frame from the server")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._recv_some()

    # -- opening handshake (RFC 6455 §4.1) --
    def read_http_head(self):
        """Reads a response head; returns (status, reason, {lowercase name: [values]})."""
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise Failure("HTTP response head above 64 KiB")
            try:
                self._need(len(self.buf) + 1, deadline)
            except TCPClosed:
                if not self.buf:
                    raise TCPClosed("the server closed the connection without an HTTP response")
                raise TCPClosed("the server closed the connection inside the HTTP response head")
            except TimedOut:
                raise TimedOut(f"no complete HTTP response within {self.timeout:g} s")
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Failure(f"bad HTTP status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if ":" not in line:
                raise Failure(f"bad HTTP header line {line!r}")
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.log(f"< {lines[0]}")
        return int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers

    def connect(self, request=None, key=None, pipelined=b"", chunk=None, delay=0.0):
        """TCP connect + opening handshake; checks the 101 response (RFC 6455 §4.1)."""
        self.open_tcp()
        if request is None:
            key = base64.b64encode(os.urandom(16)).decode()
            request = upgrade_request(self.ctx, key)
        self.log(f"> handshake request ({len(request)} bytes)")
        self.send(request, chunk=chunk, delay=delay)
        if pipelined:
            self.in_handshake = False
            self.send(pipelined)
        status, reason, headers = self.read_http_head()
        self.in_handshake = False
        if status != 101:
            raise Failure(f"handshake answered with HTTP {status} {reason}, not 101")
        hdr = lambda name: ", ".join(headers.get(name, []))
        tokens = lambda name: [t.strip().lower() for t in hdr(name).split(",")]
        if "websocket" not in tokens("upgrade"):
            raise Failure(f"101 response: Upgrade is {hdr('upgrade')!r}, not websocket")
        if "upgrade" not in tokens("connection"):
            raise Failure(f"101 response: Connection is {hdr('connection')!r}, lacks upgrade")
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        accept = headers.get("sec-websocket-accept", [])
        if accept != [expected]:
            raise Failure(f"101 response: Sec-WebSocket-Accept {accept!r}, expected {expected!r}")
        for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
            if name in headers:   # we offered none (RFC 6455 §4.1, client steps 5 and 6)
                raise Failure(f"101 response selects {name} {hdr(name)!r} we did not offer")

    # -- frames from the server (RFC 6455 §5.1, §5.2) --
    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, op = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        n, hl = b1 & 0x7F, 2
        if b1 & 0x80:
            raise Failure("the server sent a masked frame (RFC 6455 §5.1)")
        if rsv:
            raise Failure(f"the server sent a frame with RSV bits {rsv:03b} (no extension)")
        if n == 126:
            self._need(4, deadline)
            n, hl = struct.unpack_from("!H", self.buf, 2)[0], 4
            if n < 126:
                raise Failure(f"server frame: length {n} not minimally encoded (§5.2)")
        elif n == 127:
            self._need(10, deadline)
            n, hl = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if n >> 63:
                raise Failure("server frame: 64-bit length with the top bit set (§5.2)")
            if n <= 0xFFFF:
                raise Failure(f"server frame: length {n} not minimally encoded (§5.2)")
        self._need(hl + n, deadline)
        payload = bytes(self.buf[hl:hl + n])
        del self.buf[:hl + n]
        self.log(f"< {OPNAMES.get(op, hex(op))} fin={int(fin)} len={n}")
        return Frame(fin, rsv, op, payload)

    def next_event(self, timeout=None):
        """The next message (reassembled) or control frame from the server."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if self.got_close:
                raise Failure("the server sent a frame after its Close frame (§5.5.1)")
            if f.opcode >= 8:
                if not f.fin or len(f.payload) > 125:
                    raise Failure("the server sent a fragmented or oversized control frame")
                if f.opcode == CLOSE:
                    self.got_close = True
                    return self._close_event(f.payload)
                if f.opcode in (PING, PONG):
                    return Event("ping" if f.opcode == PING else "pong", f.payload, None, None)
                raise Failure(f"the server sent reserved opcode {f.opcode:#x}")
            if f.opcode == CONT:
                if self.frag_kind is None:
                    raise Failure("the server sent a continuation frame with no message open")
                self.frag_parts.append(f.payload)
                if f.fin:
                    kind, data = self.frag_kind, b"".join(self.frag_parts)
                    self.frag_kind, self.frag_parts = None, []
                    return Event(kind, data, None, None)
            elif f.opcode in (TEXT, BINARY):
                if self.frag_kind is not None:
                    raise Failure("the server started a message inside a fragmented one")
                kind = "text" if f.opcode == TEXT else "binary"
                if f.fin:
                    return Event(kind, f.payload, None, None)
                self.frag_kind, self.frag_parts = kind, [f.payload]
            else:
                raise Failure(f"the server sent reserved opcode {f.opcode:#x}")

    def _close_event(self, payload):
        if len(payload) == 1:
            raise Failure("the server sent a Close frame with a 1-byte payload")
        if not payload:
            self.log("  Close without status code")
            return Event("close", b"", None, "")
        code = struct.unpack("!H", payload[:2])[0]
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise Failure(f"the server's Close {code} has a reason that is not UTF-8")
        self.log(f"  Close {code} {reason!r}")
        if not valid_close_code(code):
            raise Failure(f"the server sent Close with code {code}, not allowed on the wire")
        return Event("close", b"", code, reason)

    def poll_event(self, wait):
        """The next event if one arrives within `wait` seconds, else None."""
        try:
            return self.next_event(timeout=wait)
        except TimedOut:
            return None

    # -- expectations --
    def expect_message(self, kind, payload, timeout=None):
        payload = payload.encode() if isinstance(payload, str) else bytes(payload)
        want = f"{kind} echo of {len(payload)} bytes"
        ev = self._expect_event(want, timeout)
        if ev.kind != kind:
            raise Failure(f"expected {want}, got {describe(ev)}")
        if ev.data != payload:
            i = first_difference(ev.data, payload)
            raise Failure(f"{kind} echo differs: got {len(ev.data)} bytes, expected "
                          f"{len(payload)}, first difference at offset {i}")

    def expect_pong(self, payload, timeout=None):
        self.expect_message("pong", payload, timeout)

    def _expect_event(self, want, timeout=None):
        try:
            return self.next_event(timeout)
        except TCPClosed as e:
            raise TCPClosed(f"expected {want}, but {e} (no Close frame)")
        except TimedOut as e:
            raise TimedOut(f"expected {want}, but {e} within "
                           f"{self.timeout if timeout is None else timeout:g} s")

    def expect_fail(self, code):
        """The server must fail the connection: Close `code`, then close TCP (§7.1.7)."""
        ev = self._expect_event(f"Close {code}")
        if ev.kind != "close":
            raise Failure(f"expected Close {code}, got {describe(ev)}")
        if ev.code != code:
            raise Failure(f"expected Close {code}, got {describe(ev)}")
        # Answer like a client completing the closing handshake; the server may already
        # have closed TCP (then this write fails harmlessly) or may be waiting for it.
        self.send(close_frame(code))
        self.expect_tcp_close()

    def expect_close_reply(self, accept):
        """After our Close: the server answers Close (code in `accept`; None = no code) and
        then closes the TCP connection itself (§5.5.1, §7.1.1)."""
        ev = self._expect_event("the server's Close reply")
        if ev.kind != "close":
            raise Failure(f"expected a Close reply, got {describe(ev)}")
        if ev.code not in accept:
            want = " or ".join("no code" if a is None else str(a) for a in accept)
            raise Failure(f"Close reply has {describe(ev)}, expected {want}")
        self.expect_tcp_close()

    def expect_tcp_close(self):
        """After the server's Close: nothing more, then the server closes TCP (§7.1.1)."""
        deadline = time.monotonic() + self.timeout
        extra = len(self.buf)
        self.buf.clear()
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimedOut(f"the server did not close the TCP connection within "
                               f"{self.timeout:g} s after the Close frames")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._recv_some()
                extra += len(self.buf)
                self.buf.clear()
        if extra:
            raise Failure(f"the server sent {extra} bytes after its Close frame")
        self.log("< TCP closed" + (" (reset)" if self.reset else ""))

    def finish(self):
        """Normal end of an echo case: closing handshake with 1000."""
        self.send(close_frame(1000))
        try:
            self.expect_close_reply({1000})
        except Failure as e:
            raise type(e)(f"closing handshake: {e}")


def upgrade_request(ctx, key, *, method="GET", version="13", omit=(), extra=(),
                    upgrade="websocket", connection="Upgrade"):
    """An RFC 6455 §4.1 upgrade request; `omit` lists header names to leave out."""
    fields = [("Host", f"{ctx.host}:{ctx.port}"), ("Upgrade", upgrade),
              ("Connection", connection), ("Sec-WebSocket-Key", key),
              ("Sec-WebSocket-Version", version)]
    lines = [f"{method} / HTTP/1.1"]
    lines += [f"{n}: {v}" for n, v in fields if n not in omit]
    lines += [f"{n}: {v}" for n, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------------------------------
# Case helpers
# ---------------------------------------------------------------------------------------

def script(ctx, data, expect, *, chunk=None, delay=0.0):
    """Sends `data`, then checks `expect`, a list of
         ("text"|"binary"|"pong", payload)  an echo / pong, in this order,
         ("fail", code)                      the server fails with Close `code`,
         ("close", {codes})                  the server answers our Close with one of codes.
    Without a final "fail"/"close" item the case ends with a closing handshake."""
    with ctx.client() as c:
        c.send(data, chunk=chunk, delay=delay)
        for kind, arg in expect:
            if kind == "fail":
                c.expect_fail(arg)
                return
            if kind == "close":
                c.expect_close_reply(arg)
                return
            c.expect_message(kind, arg)
        c.finish()


def register_script(cid, desc, data, expect, **kw):
    add_case(cid, desc, lambda ctx: script(ctx, data, expect, **kw))


def echo_of(opcode, payload):
    return ("text" if opcode == TEXT else "binary", payload)


# =======================================================================================
# H. Opening handshake (RFC 6455 §4.1, §4.2, §4.4)
# =======================================================================================

def check_still_serving(ctx):
    """After a rejected handshake the server must still accept a good connection."""
    try:
        script(ctx, frame(TEXT, "still alive"), [("text", b"still alive")])
    except Failure as e:
        raise type(e)(f"a new connection after the rejected one failed: {e}")


def rejected(ctx, request, status, header_check=None):
    """Sends a bad request; the server must answer HTTP `status` (never 101)."""
    c = Client(ctx)
    try:
        c.open_tcp()
        c.log(f"> bad request ({len(request)} bytes)")
        c.send(request)
        got, reason, headers = c.read_http_head()
        if got != status:
            raise Failure(f"expected HTTP {status}, got {got} {reason}")
        if header_check:
            header_check(headers)
    finally:
        c.close()
    check_still_serving(ctx)


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


@case("H.1", "Request followed by a text frame in the same write -> 101, then echo")
def _(ctx):
    with ctx.client(pipelined=frame(TEXT, "pipelined")) as c:
        c.expect_message("text", b"pipelined")
        c.finish()


@case("H.2", "Upgrade request sent byte by byte -> 101")
def _(ctx):
    with ctx.client(chunk=1, delay=0.001) as c:
        c.send(frame(TEXT, "slow"))
        c.expect_message("text", b"slow")
        c.finish()


@case("H.3", "Header names/values in odd case, Connection: keep-alive, Upgrade -> 101")
def _(ctx):
    key = new_key()
    req = (f"GET / HTTP/1.1\r\nhost: {ctx.host}:{ctx.port}\r\nUPGRADE: WebSocket\r\n"
           f"connection: keep-alive, upgrade\r\nsec-websocket-key: {key}\r\n"
           f"SEC-WEBSOCKET-VERSION: 13\r\nUser-Agent: conformance.py\r\n\r\n").encode()
    with ctx.client(request=req, key=key) as c:
        c.send(frame(TEXT, "case"))
        c.expect_message("text", b"case")
        c.finish()


@case("H.4", "Missing Sec-WebSocket-Key -> HTTP 400")
def _(ctx):
    rejected(ctx, upgrade_request(ctx, new_key(), omit=("Sec-WebSocket-Key",)), 400)


@case("H.5", "Sec-WebSocket-Key of 8 bytes (not 16) -> HTTP 400")
def _(ctx):
    key = base64.b64encode(os.urandom(8)).decode()
    rejected(ctx, upgrade_request(ctx, key), 400)


@case("H.6", "Sec-WebSocket-Version: 12 (never sent by any draft) -> HTTP 426 listing 13")
def _(ctx):
    def check(headers):
        versions = [v.strip() for h in headers.get("sec-websocket-version", [])
                    for v in h.split(",")]
        if "13" not in versions:   # RFC 6455 §4.4
            raise Failure(f"426 response lists Sec-WebSocket-Version {versions!r}, not 13")
    rejected(ctx, upgrade_request(ctx, new_key(), version="12"), 426, check)


@case("H.7", "POST upgrade request -> HTTP 405")
def _(ctx):
    rejected(ctx, upgrade_request(ctx, new_key(), method="POST"), 405)


@case("H.8", "Plain GET without Upgrade/Connection -> HTTP 426")
def _(ctx):
    req = f"GET / HTTP/1.1\r\nHost: {ctx.host}:{ctx.port}\r\n\r\n".encode()
    rejected(ctx, req, 426)


@case("H.9", "Missing Host header -> HTTP 400")
def _(ctx):
    rejected(ctx, upgrade_request(ctx, new_key(), omit=("Host",)), 400)


@case("H.10", "Header block of 100 KiB -> HTTP 431")
def _(ctx):
    pad = [(f"X-Pad-{i}", "p" * 1000) for i in range(100)]
    rejected(ctx, upgrade_request(ctx, new_key(), extra=pad), 431)


@case("H.11", "Garbage bytes instead of a request -> HTTP 400")
def _(ctx):
    rejected(ctx, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\x00\xff\r\n\r\n", 400)


# =======================================================================================
# 1. Framing: data frames of every length encoding (RFC 6455 §5.2, §5.6)
# =======================================================================================

LENGTHS_1 = [0, 125, 126, 127, 128, 65535, 65536, 1 << 20]


def _section1():
    for chunked in (False, True):
        for sub, opcode, payload_fn in ((1, TEXT, text_payload), (2, BINARY, binary_payload)):
            name = "text" if opcode == TEXT else "binary"
            for i, n in enumerate(LENGTHS_1, 1):
                chunk, delay = (None, 0.0)
                if chunked:
                    chunk, delay = (1, 0.0005) if n <= 128 else (997, 0.0)

                def run(ctx, n=n, opcode=opcode, payload_fn=payload_fn, chunk=chunk,
                        delay=delay):
                    p = payload_fn(n)
                    script(ctx, frame(opcode, p), [echo_of(opcode, p)], chunk=chunk,
                           delay=delay)
                how = f" in {chunk}-byte writes" if chunked else ""
                size = "1 MiB" if n == 1 << 20 else f"{n} bytes"
                add_case(f"1.{sub + 2 * chunked}.{i}",
                         f"{name.capitalize()} message of {size}{how} -> echo", run)


_section1()


# =======================================================================================
# 2. Ping / Pong (RFC 6455 §5.5.2, §5.5.3)
# =======================================================================================

register_script("2.1", "Ping without payload -> Pong without payload",
                frame(PING), [("pong", b"")])
register_script("2.2", "Ping with small text payload -> same Pong",
                frame(PING, "Hello, world!"), [("pong", b"Hello, world!")])
register_script("2.3", "Ping with small binary payload -> same Pong",
                frame(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
                [("pong", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")])
register_script("2.4", "Ping with 125-byte binary payload -> same Pong",
                frame(PING, b"\xfe" * 125), [("pong", b"\xfe" * 125)])
register_script("2.5", "Ping with 126-byte payload (control frame too big) -> Close 1002",
                frame(PING, b"\xfe" * 126), [("fail", 1002)])
register_script("2.6", "Ping with 125-byte payload sent byte by byte -> same Pong",
                frame(PING, b"\xfe" * 125), [("pong", b"\xfe" * 125)], chunk=1, delay=0.001)
register_script("2.7", "Unsolicited Pong without payload is ignored (then text echo)",
                frame(PONG) + frame(TEXT, "after pong"), [("text", b"after pong")])
register_script("2.8", "Unsolicited Pong with payload is ignored (then text echo)",
                frame(PONG, "unsolicited") + frame(TEXT, "after pong"),
                [("text", b"after pong")])
register_script("2.9", "Unsolicited Pong, then Ping -> one Pong with the Ping's payload",
                frame(PONG, "unsolicited") + frame(PING, "solicited"),
                [("pong", b"solicited")])
_pings = [f"payload-{i}".encode() for i in range(10)]
register_script("2.10", "10 Pings in one write -> 10 Pongs in order",
                b"".join(frame(PING, p) for p in _pings), [("pong", p) for p in _pings])
register_script("2.11", "10 Pings sent byte by byte -> 10 Pongs in order",
                b"".join(frame(PING, p) for p in _pings), [("pong", p) for p in _pings],
                chunk=1, delay=0.0005)


# =======================================================================================
# 3. Reserved bits: no extension negotiated, so any RSV bit fails (RFC 6455 §5.2)
# =======================================================================================

def rsv_name(rsv):
    return "+".join(f"RSV{i}" for i, bit in ((1, 4), (2, 2), (3, 1)) if rsv & bit)


register_script("3.1", "Text frame with RSV3 set -> Close 1002",
                frame(TEXT, "Hello", rsv=1), [("fail", 1002)])
register_script("3.2", "Text echo, then text frame with RSV2 -> echo, Close 1002",
                frame(TEXT, "Hello") + frame(TEXT, "Hello", rsv=2),
                [("text", b"Hello"), ("fail", 1002)])
register_script("3.3", "Text echo, text with RSV2+RSV3, Ping -> echo, Close 1002 (no Pong)",
                frame(TEXT, "Hello") + frame(TEXT, "Hello", rsv=3) + frame(PING),
                [("text", b"Hello"), ("fail", 1002)])
register_script("3.4", "As 3.3 with RSV1, sent byte by byte -> echo, Close 1002",
                frame(TEXT, "Hello") + frame(TEXT, "Hello", rsv=4) + frame(PING),
                [("text", b"Hello"), ("fail", 1002)], chunk=1, delay=0.0005)
register_script("3.5", "Binary frame with RSV1+RSV3 -> Close 1002",
                frame(BINARY, b"\x00\xff\xfe", rsv=5), [("fail", 1002)])
register_script("3.6", "Ping with RSV1+RSV2 -> Close 1002 (no Pong)",
                frame(PING, "ping", rsv=6), [("fail", 1002)])
register_script("3.7", "Close frame with RSV1+RSV2+RSV3 -> Close 1002",
                close_frame(1000, rsv=7), [("fail", 1002)])


def _section3_matrix():
    """Every RSV combination on every frame type, right after a valid text frame."""
    ops = [("text", lambda r: frame(TEXT, "bad", rsv=r)),
           ("binary", lambda r: frame(BINARY, b"\x01\x02", rsv=r)),
           ("ping", lambda r: frame(PING, "ping", rsv=r)),
           ("pong", lambda r: frame(PONG, "pong", rsv=r)),
           ("close", lambda r: close_frame(1000, rsv=r)),
           ("continuation", lambda r: frame(TEXT, "start", fin=False)
            + frame(CONT, "end", rsv=r))]
    n = 0
    for opname, make in ops:
        for rsv in range(1, 8):
            n += 1
            register_script(f"3.8.{n}", f"Text echo, then {opname} frame with "
                            f"{rsv_name(rsv)} -> echo, Close 1002",
                            frame(TEXT, "valid") + make(rsv),
                            [("text", b"valid"), ("fail", 1002)])


_section3_matrix()


# =======================================================================================
# 4. Reserved opcodes 0x3-0x7 (data) and 0xB-0xF (control) fail (RFC 6455 §5.2)
# =======================================================================================

def _section4():
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (0xB, 0xC, 0xD, 0xE, 0xF))):
        kind = "non-control" if sub == 1 else "control"
        a, b, c, d, e = ops
        register_script(f"4.{sub}.1", f"Reserved {kind} opcode {a:#x} -> Close 1002",
                        frame(a), [("fail", 1002)])
        register_script(f"4.{sub}.2", f"Reserved {kind} opcode {b:#x} with payload "
                        "-> Close 1002", frame(b, "reserved opcode payload"), [("fail", 1002)])
        register_script(f"4.{sub}.3", f"Text, reserved {kind} opcode {c:#x}, Ping "
                        "-> echo, Close 1002", frame(TEXT, "Hello") + frame(c) + frame(PING),
                        [("text", b"Hello"), ("fail", 1002)])
        register_script(f"4.{sub}.4", f"Text, opcode {d:#x} with payload, Ping "
                        "-> echo, Close 1002",
                        frame(TEXT, "Hello") + frame(d, "payload") + frame(PING),
                        [("text", b"Hello"), ("fail", 1002)])
        register_script(f"4.{sub}.5", f"As 4.{sub}.4 with opcode {e:#x}, byte by byte "
                        "-> echo, Close 1002",
                        frame(TEXT, "Hello") + frame(e, "payload") + frame(PING),
                        [("text", b"Hello"), ("fail", 1002)], chunk=1, delay=0.0005)
    n = 0
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        for payload in (b"", b"reserved"):
            n += 1
            register_script(f"4.3.{n}", f"Text echo, then opcode {op:#x} "
                            f"{'with' if payload else 'without'} payload -> echo, Close 1002",
                            frame(TEXT, "valid") + frame(op, payload),
                            [("text", b"valid"), ("fail", 1002)])


_section4()


# =======================================================================================
# 5. Fragmentation (RFC 6455 §5.4; control frames are never fragmented, §5.5)
# =======================================================================================

F1, F2 = b"fragment1", b"fragment2"
register_script("5.1", "Ping in 2 fragments -> Close 1002",
                frame(PING, "ping1", fin=False) + frame(CONT, "ping2"), [("fail", 1002)])
register_script("5.2", "Pong in 2 fragments -> Close 1002",
                frame(PONG, "pong1", fin=False) + frame(CONT, "pong2"), [("fail", 1002)])
_two = frame(TEXT, F1, fin=False) + frame(CONT, F2)
register_script("5.3", "Text in 2 fragments -> echo", _two, [("text", F1 + F2)])
register_script("5.4", "Text in 2 fragments, one write per frame 50 ms apart -> echo",
                _two, [("text", F1 + F2)], chunk=len(frame(TEXT, F1)), delay=0.05)
register_script("5.5", "Text in 2 fragments, byte by byte -> echo",
                _two, [("text", F1 + F2)], chunk=1, delay=0.0005)
_two_ping = frame(TEXT, F1, fin=False) + frame(PING, "pongme!") + frame(CONT, F2)
register_script("5.6", "Text in 2 fragments with a Ping between -> Pong, then echo",
                _two_ping, [("pong", b"pongme!"), ("text", F1 + F2)])
register_script("5.7", "As 5.6, one write per frame 50 ms apart -> Pong, then echo",
                _two_ping, [("pong", b"pongme!"), ("text", F1 + F2)],
                chunk=len(frame(TEXT, F1)), delay=0.05)
register_script("5.8", "As 5.6, byte by byte -> Pong, then echo",
                _two_ping, [("pong", b"pongme!"), ("text", F1 + F2)], chunk=1, delay=0.0005)
_stray_fin = frame(CONT, "non-continuation payload") + frame(TEXT, "Hello, world!")
register_script("5.9", "Continuation (FIN) with nothing to continue, then text -> Close 1002",
                _stray_fin, [("fail", 1002)])
register_script("5.10", "As 5.9, one write per frame 50 ms apart -> Close 1002",
                _stray_fin, [("fail", 1002)], chunk=30, delay=0.05)
register_script("5.11", "As 5.9, byte by byte -> Close 1002",
                _stray_fin, [("fail", 1002)], chunk=1, delay=0.0005)
_stray = frame(CONT, "non-continuation payload", fin=False) + frame(TEXT, "Hello, world!")
register_script("5.12", "Continuation (no FIN) with nothing to continue, then text "
                "-> Close 1002", _stray, [("fail", 1002)])
register_script("5.13", "As 5.12, one write per frame 50 ms apart -> Close 1002",
                _stray, [("fail", 1002)], chunk=30, delay=0.05)
register_script("5.14", "As 5.12, byte by byte -> Close 1002",
                _stray, [("fail", 1002)], chunk=1, delay=0.0005)
register_script("5.15", "Text in 2 fragments, then stray continuation, then text "
                "-> echo, Close 1002",
                _two + frame(CONT, "fragment3", fin=False) + frame(TEXT, "fragment4"),
                [("text", F1 + F2), ("fail", 1002)])
register_script("5.16", "[continuation, text (no FIN), continuation (FIN)] x2 -> Close 1002",
                (frame(CONT, F1, fin=False) + frame(TEXT, F2, fin=False)
                 + frame(CONT, "fragment3")) * 2, [("fail", 1002)])
register_script("5.17", "[continuation (FIN), text (no FIN), continuation (FIN)] x2 "
                "-> Close 1002",
                (frame(CONT, F1) + frame(TEXT, F2, fin=False) + frame(CONT, "fragment3")) * 2,
                [("fail", 1002)])
register_script("5.18", "Text (no FIN), then a second text start -> Close 1002",
                frame(TEXT, F1, fin=False) + frame(TEXT, F2), [("fail", 1002)])


def _five_fragments_with_pings(ctx, chunk):
    """Text in 5 fragments; a Ping after fragment 2 and after fragment 4. Each Pong must
    arrive while the message is still open (§5.5.2: 'as soon as is practical')."""
    parts = [f"fragment{i}".encode() for i in range(1, 6)]
    with ctx.client() as c:
        send = lambda data: c.send(data, chunk=chunk, delay=0.0005 if chunk else 0.0)
        send(frame(TEXT, parts[0], fin=False) + frame(CONT, parts[1], fin=False)
             + frame(PING, "ping-1"))
        c.expect_pong(b"ping-1")
        time.sleep(0.05)
        send(frame(CONT, parts[2], fin=False) + frame(CONT, parts[3], fin=False)
             + frame(PING, "ping-2"))
        c.expect_pong(b"ping-2")
        time.sleep(0.05)
        send(frame(CONT, parts[4]))
        c.expect_message("text", b"".join(parts))
        c.finish()


add_case("5.19", "Text in 5 fragments with 2 Pings, paced -> Pongs while open, then echo",
         lambda ctx: _five_fragments_with_pings(ctx, None))
add_case("5.20", "As 5.19, byte by byte -> Pongs while open, then echo",
         lambda ctx: _five_fragments_with_pings(ctx, 1))
register_script("5.21", "Binary in 2 fragments -> binary echo",
                frame(BINARY, b"\x00\x01\x02", fin=False) + frame(CONT, b"\xfd\xfe\xff"),
                [("binary", b"\x00\x01\x02\xfd\xfe\xff")])
_twenty = text_payload(20)
register_script("5.22", "Text in 20 one-byte fragments -> echo",
                fragments(TEXT, _twenty, 1), [("text", _twenty)])
_twenty_bin = binary_payload(20)
register_script("5.23", "Binary in 20 one-byte fragments -> binary echo",
                fragments(BINARY, _twenty_bin, 1), [("binary", _twenty_bin)])
register_script("5.24", "Text: empty first fragment, data, empty last fragment -> echo",
                split_frames(TEXT, [b"", b"middle", b""]), [("text", b"middle")])
register_script("5.25", "Binary: empty first fragment, data, empty last fragment -> echo",
                split_frames(BINARY, [b"", b"\x00mid\xff", b""]), [("binary", b"\x00mid\xff")])
register_script("5.26", "Complete text, then continuation (FIN) -> echo, Close 1002",
                frame(TEXT, "complete") + frame(CONT, "stray"),
                [("text", b"complete"), ("fail", 1002)])
register_script("5.27", "Binary (no FIN), then a text start inside it -> Close 1002",
                frame(BINARY, b"\x01", fin=False) + frame(TEXT, "inside"), [("fail", 1002)])
register_script("5.28", "Close frame without FIN -> Close 1002",
                close_frame(1000, fin=False), [("fail", 1002)])
register_script("5.29", "Text in 2 fragments with an unsolicited Pong between -> echo",
                frame(TEXT, F1, fin=False) + frame(PONG, "unsolicited") + frame(CONT, F2),
                [("text", F1 + F2)])
register_script("5.30", "Text (no FIN), then a fragmented Ping -> Close 1002",
                frame(TEXT, F1, fin=False) + frame(PING, "p", fin=False) + frame(CONT, "q"),
                [("fail", 1002)])


# =======================================================================================
# 6. UTF-8 handling of text messages (RFC 6455 §5.6, §8.1; RFC 3629)
# =======================================================================================

def utf8_case(cid, desc, data, valid, *, fragment=None):
    """Text message `data`: echoed if `valid`, else Close 1007. fragment: None (one frame),
    1 (one-byte fragments) or a list of fragment payloads."""
    if fragment is None:
        frames = frame(TEXT, data)
    elif fragment == 1:
        frames = fragments(TEXT, data, 1)
    else:
        frames = split_frames(TEXT, fragment)
    register_script(cid, f"{desc} -> {'echo' if valid else 'Close 1007'}", frames,
                    [("text", data)] if valid else [("fail", 1007)])


# "κόσμε" as Autobahn spells it: ό is U+1F79 (E1 BD B9), so the bytes are 2+3+2+2+2.
KOSME = bytes.fromhex("cebae1bdb9cf83cebcceb5")
register_script("6.1.1", "Empty text message -> empty echo", frame(TEXT), [("text", b"")])
register_script("6.1.2", "Text message of 3 empty fragments -> empty echo",
                split_frames(TEXT, [b"", b"", b""]), [("text", b"")])
register_script("6.1.3", "Text: empty, 'middle frame payload', empty fragments -> echo",
                split_frames(TEXT, [b"", b"middle frame payload", b""]),
                [("text", b"middle frame payload")])
_hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
utf8_case("6.2.1", "Valid UTF-8 'Hello-µ@ßöäüàá-UTF-8!!' in one frame", _hello, True)
utf8_case("6.2.2", "The same in 2 fragments split at a code point boundary", _hello, True,
          fragment=[_hello[:12], _hello[12:]])
utf8_case("6.2.3", "The same in one-byte fragments", _hello, True, fragment=1)
utf8_case("6.2.4", "'κόσμε' in one-byte fragments", KOSME, True, fragment=1)
_bad = KOSME + b"\xed\xa0\x80" + b"edited"
utf8_case("6.3.1", "Invalid UTF-8 (surrogate ED A0 80) in one frame", _bad, False)
utf8_case("6.3.2", "The same in one-byte fragments", _bad, False, fragment=1)


def fail_fast(ctx, parts, as_frames):
    """RFC 6455 §8.1 fail-fast: valid part, invalid part, then the server must have sent
    Close 1007 before we send the rest (Autobahn 6.4.x)."""
    with ctx.client() as c:
        if as_frames:
            pieces = [frame(TEXT, parts[0], fin=False), frame(CONT, parts[1], fin=False),
                      frame(CONT, parts[2])]
        else:   # one frame, its payload written in three pieces
            whole = frame(TEXT, b"".join(parts))
            h = len(whole) - sum(map(len, parts))
            a, b = h + len(parts[0]), h + len(parts[0]) + len(parts[1])
            pieces = [whole[:a], whole[a:b], whole[b:]]
        c.send(pieces[0])
        c.log(f"  sent the valid part ({len(pieces[0])} bytes); {QUIET_WAIT:g} s of silence")
        ev = c.poll_event(QUIET_WAIT)
        if ev is not None:
            raise Failure(f"the server sent {describe(ev)} after the valid first part")
        c.send(pieces[1])
        c.log(f"  sent the invalid part ({len(pieces[1])} bytes); waiting for Close 1007")
        ev = c.poll_event(FAIL_FAST_WAIT)
        if ev is None:
            raise Failure(f"no Close 1007 within {FAIL_FAST_WAIT:g} s of the invalid bytes "
                          "(not fail-fast, RFC 6455 §8.1)")
        if ev.kind != "close" or ev.code != 1007:
            raise Failure(f"expected Close 1007 after the invalid bytes, got {describe(ev)}")
        c.log(f"  sending the rest ({len(pieces[2])} bytes) only now")
        c.send(pieces[2])
        c.send(close_frame(1007))
        c.expect_tcp_close()


_ff1 = [KOSME, b"\xf4\x90\x80\x80", b"edited"]
_ff2 = [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"]
add_case("6.4.1", "Fail-fast: 3 fragments, the 2nd holds U+110000 -> Close 1007 before 3rd",
         lambda ctx: fail_fast(ctx, _ff1, True))
add_case("6.4.2", "Fail-fast: 3 fragments, F4 | 90 | 80 80 -> Close 1007 before 3rd",
         lambda ctx: fail_fast(ctx, _ff2, True))
add_case("6.4.3", "Fail-fast: one frame in 3 writes, U+110000 -> Close 1007 before 3rd",
         lambda ctx: fail_fast(ctx, _ff1, False))
add_case("6.4.4", "Fail-fast: one frame in 3 writes, F4 | 90 | 80 80 -> Close 1007 before 3rd",
         lambda ctx: fail_fast(ctx, _ff2, False))

H = bytes.fromhex
U = lambda cp: chr(cp).encode("utf-8", "surrogatepass")

# (group, [(description, bytes, valid)]); each vector is tested in one frame (6.G.N) and
# in one-byte fragments (6.G.Nf), which splits it at every byte boundary.
UTF8_VECTORS = [
    (5, [("'κόσμε'", KOSME, True),
         ("U+0000 alone", b"\x00", True),
         ("ASCII with embedded U+0000", b"Hello\x00World", True),
         ("U+1F600 (4 bytes)", U(0x1F600), True),
         ("Mixed 1-4 byte sequences 'a€𝄞ä'", "a€𝄞ä".encode(), True)]),
    # 6.6: every prefix of 'κόσμε'; a prefix ending inside a code point is invalid
    (6, [(f"First {i} bytes of 'κόσμε'", KOSME[:i], i in (2, 5, 7, 9, 11))
         for i in range(1, 12)]),
    (7, [("First 1-byte sequence U+0000", U(0), True),
         ("First 2-byte sequence U+0080", U(0x80), True),
         ("First 3-byte sequence U+0800", U(0x800), True),
         ("First 4-byte sequence U+10000", U(0x10000), True)]),
    (8, [("5-byte sequence F8 88 80 80 80", H("f888808080"), False),
         ("6-byte sequence FC 84 80 80 80 80", H("fc8480808080"), False)]),
    (9, [("Last 1-byte sequence U+007F", U(0x7F), True),
         ("Last 2-byte sequence U+07FF", U(0x7FF), True),
         ("Last 3-byte sequence U+FFFF", U(0xFFFF), True),
         ("Last 4-byte pattern F7 BF BF BF (U+1FFFFF)", H("f7bfbfbf"), False)]),
    (10, [("Last 5-byte pattern FB BF BF BF BF", H("fbbfbfbfbf"), False),
          ("Last 6-byte pattern FD BF BF BF BF BF", H("fdbfbfbfbfbf"), False)]),
    (11, [("U+D7FF (last before surrogates)", U(0xD7FF), True),
          ("U+E000 (first after surrogates)", U(0xE000), True),
          ("U+FFFD", U(0xFFFD), True),
          ("U+10FFFF (last code point)", U(0x10FFFF), True),
          ("U+110000 (F4 90 80 80, beyond Unicode)", H("f4908080"), False)]),
    (12, [("Lone continuation 80", H("80"), False),
          ("Lone continuation BF", H("bf"), False),
          ("Continuations 80 BF", H("80bf"), False),
          ("Continuations 80 BF 80", H("80bf80"), False),
          ("Continuations 80 BF 80 BF", H("80bf80bf"), False),
          ("Continuations 80 BF 80 BF 80", H("80bf80bf80"), False),
          ("Continuations 80 BF 80 BF 80 BF", H("80bf80bf80bf"), False),
          ("All 64 continuation bytes 80..BF", bytes(range(0x80, 0xC0)), False)]),
    (13, [("Lone 2-byte starts C0..DF, each followed by a space",
           b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0)), False),
          ("Lone 3-byte starts E0..EF + space",
           b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0)), False),
          ("Lone 4-byte starts F0..F7 + space",
           b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8)), False),
          ("Lone 5-byte starts F8..FB + space",
           b"".join(bytes([b, 0x20]) for b in range(0xF8, 0xFC)), False),
          ("Lone 6-byte starts FC..FD + space", H("fc20fd20"), False)]),
    (14, [(f"Truncated sequence {h.upper()}", H(h), False) for h in
          ("c0", "e080", "f08080", "f8808080", "fc80808080",
           "df", "efbf", "f7bfbf", "fbbfbfbf", "fdbfbfbfbf")]),
    (15, [("Concatenation of the 10 truncated sequences",
           H("c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf"), False)]),
    (16, [("Impossible byte FE", H("fe"), False),
          ("Impossible byte FF", H("ff"), False),
          ("Impossible bytes FE FE FF FF", H("fefeffff"), False)]),
    (17, [(f"Overlong '/' {h.upper()}", H(h), False) for h in
          ("c0af", "e080af", "f08080af", "f8808080af", "fc80808080af")]),
    (18, [(f"Maximum overlong {h.upper()}", H(h), False) for h in
          ("c1bf", "e09fbf", "f08fbfbf", "f887bfbfbf", "fc83bfbfbfbf")]),
    (19, [(f"Overlong NUL {h.upper()}", H(h), False) for h in
          ("c080", "e08080", "f0808080", "f880808080", "fc8080808080")]),
    (20, [(f"Single surrogate {h.upper()}", H(h), False) for h in
          ("eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf")]),
    (21, [(f"Surrogate pair {h.upper()}", H(h), False) for h in
          ("eda080edb080", "eda080edbfbf", "edadbfedb080", "edadbfedbfbf",
           "edae80edb080", "edae80edbfbf", "edafbfedb080", "edafbfedbfbf")]),
    # Noncharacters are valid UTF-8 (Unicode Corrigendum #9).
    (22, [(f"Noncharacter U+{cp:04X}", U(cp), True)
          for plane in range(17) for cp in (plane << 16 | 0xFFFE, plane << 16 | 0xFFFF)]),
    (23, [("U+FFFD replacement character", U(0xFFFD), True),
          ("U+FEFF byte order mark", U(0xFEFF), True),
          ("U+FFFC object replacement", U(0xFFFC), True),
          ("Noncharacter U+FDD0", U(0xFDD0), True),
          ("Noncharacter U+FDEF", U(0xFDEF), True),
          ("U+FFFD x3 then ASCII", U(0xFFFD) * 3 + b"abc", True)]),
]


def _section6_vectors():
    for group, vectors in UTF8_VECTORS:
        for i, (desc, data, valid) in enumerate(vectors, 1):
            utf8_case(f"6.{group}.{i}", desc, data, valid)
            if len(data) > 1:
                utf8_case(f"6.{group}.{i}f", f"{desc}, one-byte fragments", data, valid,
                          fragment=1)


_section6_vectors()


def _section6_splits():
    """6.24: key sequences in 2 fragments, split at each byte boundary in turn."""
    vectors = [("'κόσμε'", KOSME, True), ("U+0080", U(0x80), True),
               ("U+D7FF", U(0xD7FF), True), ("U+E000", U(0xE000), True),
               ("U+FFFF", U(0xFFFF), True), ("U+10FFFF", U(0x10FFFF), True),
               ("'a' U+10FFFF 'b'", b"a" + U(0x10FFFF) + b"b", True),
               ("Surrogate ED A0 80", H("eda080"), False),
               ("U+110000 F4 90 80 80", H("f4908080"), False),
               ("Overlong C0 AF", H("c0af"), False),
               ("Overlong E0 80 AF", H("e080af"), False),
               ("Truncated E1 BD at the end of 'κόσμε'", KOSME + H("e1bd"), False)]
    n = 0
    for desc, data, valid in vectors:
        for k in range(1, len(data)):
            n += 1
            utf8_case(f"6.24.{n}", f"{desc} in 2 fragments split after byte {k}", data, valid,
                      fragment=[data[:k], data[k:]])


_section6_splits()


# =======================================================================================
# 7. Closing handshake (RFC 6455 §5.5.1, §7.1.1-7.1.7, §7.4)
# =======================================================================================

register_script("7.1.1", "Text, then Close 1000 -> echo, Close 1000, TCP closed by server",
                frame(TEXT, "Hello World!") + close_frame(1000),
                [("text", b"Hello World!"), ("close", {1000})])
register_script("7.1.2", "Close twice -> one Close reply, then TCP closed",
                close_frame(1000) + close_frame(1000), [("close", {1000})])
register_script("7.1.3", "Close, then Ping -> Close reply, no Pong",
                close_frame(1000) + frame(PING, "after close"), [("close", {1000})])
register_script("7.1.4", "Close, then text -> Close reply, no echo",
                close_frame(1000) + frame(TEXT, "after close"), [("close", {1000})])
register_script("7.1.5", "Text fragment, Close, last fragment -> Close reply, no echo",
                frame(TEXT, F1, fin=False) + close_frame(1000) + frame(CONT, F2),
                [("close", {1000})])
_256K = text_payload(256 * 1024)


@case("7.1.6", "256 KiB text, Close, Ping -> (echo,) Close reply, no Pong")
def _(ctx):
    # Like Autobahn: whether the echo goes out before the Close reply is up to the server
    # (RFC 6455 §5.5.1 lets it answer Close first), but an echo must be complete and exact.
    with ctx.client() as c:
        c.send(frame(TEXT, _256K) + close_frame(1000) + frame(PING))
        ev = c._expect_event("an echo or the Close reply")
        if ev.kind == "text" and ev.data == _256K:
            ev = c._expect_event("the Close reply")
        if ev.kind != "close" or ev.code != 1000:
            raise Failure(f"expected the complete echo and/or Close 1000, got {describe(ev)}")
        c.expect_tcp_close()


register_script("7.3.1", "Close without payload -> Close (empty or 1000), TCP closed",
                close_frame(), [("close", {None, 1000})])
register_script("7.3.2", "Close with a 1-byte payload -> Close 1002",
                frame(CLOSE, b"\x03"), [("fail", 1002)])
register_script("7.3.3", "Close 1000 without reason -> Close 1000",
                close_frame(1000), [("close", {1000})])
register_script("7.3.4", "Close 1000 with reason 'Hello World!' -> Close 1000",
                close_frame(1000, "Hello World!"), [("close", {1000})])
register_script("7.3.5", "Close 1000 with a 123-byte reason -> Close 1000",
                close_frame(1000, "*" * 123), [("close", {1000})])
register_script("7.3.6", "Close 1000 with a 124-byte reason (payload 126) -> Close 1002",
                close_frame(1000, "*" * 124), [("fail", 1002)])
register_script("7.5.1", "Close 1000 with a reason that is not UTF-8 -> Close 1007",
                close_frame(1000, KOSME + b"\xed\xa0\x80edited"), [("fail", 1007)])
register_script("7.5.2", "Close 1000 with a multi-byte UTF-8 reason -> Close 1000",
                close_frame(1000, KOSME), [("close", {1000})])

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999]

for _i, _code in enumerate(VALID_CODES, 1):
    register_script(f"7.7.{_i}", f"Close with valid code {_code} -> Close {_code} (or 1000)",
                    close_frame(_code), [("close", {_code, 1000})])
for _i, _code in enumerate(INVALID_CODES, 1):
    register_script(f"7.9.{_i}", f"Close with invalid code {_code} -> Close 1002",
                    close_frame(_code), [("fail", 1002)])
register_script("7.13.1", "Close with out-of-range code 5000 -> Close 1002",
                close_frame(5000), [("fail", 1002)])
register_script("7.13.2", "Close with out-of-range code 65535 -> Close 1002",
                close_frame(65535), [("fail", 1002)])


# =======================================================================================
# 9. Limits and big messages, scaled down (RFC 6455 §5.2, §7.4.1 code 1009)
# =======================================================================================

SIZES_9 = [64 << 10, 256 << 10, 1 << 20, 4 << 20]


def _section9():
    for sub, opcode, fragmented in ((1, TEXT, False), (2, BINARY, False),
                                    (3, TEXT, True), (4, BINARY, True)):
        name = "text" if opcode == TEXT else "binary"
        for i, n in enumerate(SIZES_9, 1):
            def run(ctx, n=n, opcode=opcode, fragmented=fragmented):
                p = (text_payload if opcode == TEXT else binary_payload)(n)
                frag = min(64 << 10, n // 4)
                data = fragments(opcode, p, frag) if fragmented else frame(opcode, p)
                script(ctx, data, [echo_of(opcode, p)])
            how = (f"in {size_name(min(64 << 10, n // 4))} fragments" if fragmented
                   else "in one frame")
            add_case(f"9.{sub}.{i}", f"{name.capitalize()} message of {size_name(n)} {how} "
                     "-> echo", run)


_section9()
register_script("9.8.1", "Binary frame header announcing 2^63-1 bytes, no payload "
                "-> Close 1009", frame(BINARY, b"", length=(1 << 63) - 1, enc=64),
                [("fail", 1009)])
register_script("9.8.2", "64-bit length with the most significant bit set -> Close 1002",
                frame(BINARY, b"", length=(1 << 63) | 5, enc=64), [("fail", 1002)])


# =======================================================================================
# 10. Miscellaneous: masking and length encoding (RFC 6455 §5.1, §5.2, §5.3)
# =======================================================================================

_64k = text_payload(65536)
register_script("10.1.1", "64 KiB text in 1300-byte fragments -> echo",
                fragments(TEXT, _64k, 1300), [("text", _64k)])
register_script("10.2.1", "Unmasked text frame -> Close 1002",
                frame(TEXT, "unmasked", mask=False), [("fail", 1002)])
register_script("10.2.2", "Unmasked Ping -> Close 1002 (no Pong)",
                frame(PING, "unmasked", mask=False), [("fail", 1002)])
register_script("10.2.3", "Unmasked Close -> Close 1002",
                close_frame(1000, mask=False), [("fail", 1002)])
register_script("10.2.4", "Text echo, then an unmasked continuation -> echo, Close 1002",
                frame(TEXT, "valid") + frame(TEXT, "a", fin=False)
                + frame(CONT, "b", mask=False), [("text", b"valid"), ("fail", 1002)])
register_script("10.3.1", "5-byte text with a 16-bit length -> Close 1002",
                frame(TEXT, "Hello", enc=16), [("fail", 1002)])
register_script("10.3.2", "200-byte text with a 64-bit length -> Close 1002",
                frame(TEXT, text_payload(200), enc=64), [("fail", 1002)])
register_script("10.3.3", "5-byte text with a 64-bit length -> Close 1002",
                frame(TEXT, "Hello", enc=64), [("fail", 1002)])
register_script("10.3.4", "65535-byte binary with a 64-bit length -> Close 1002",
                frame(BINARY, binary_payload(65535), enc=64), [("fail", 1002)])
register_script("10.3.5", "Ping of 5 bytes with a 16-bit length -> Close 1002",
                frame(PING, "Hello", enc=16), [("fail", 1002)])
register_script("10.4.1", "Text masked with key 00 00 00 00 -> echo",
                frame(TEXT, "zero key", key=b"\0\0\0\0"), [("text", b"zero key")])
register_script("10.4.2", "Text masked with key FF FF FF FF -> echo",
                frame(TEXT, "ones key", key=b"\xff\xff\xff\xff"), [("text", b"ones key")])


# =======================================================================================
# Runner
# =======================================================================================

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exit_description(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with status {rc}"


class ServerProcess:
    def __init__(self, path, args):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        argv = [path, "--host", "127.0.0.1", "--port", str(self.port)] + list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"server {exit_description(self.proc.returncode)} before accepting"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return None
            except OSError:
                time.sleep(0.05)
        return f"server did not accept connections within {STARTUP_TIMEOUT:g} s"

    def died(self):
        rc = self.proc.poll()
        return None if rc is None else exit_description(rc)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE. Returns a problem seen while stopping
        (a crash on shutdown), or None."""
        if self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            print(f"note: the server ignored SIGTERM for {STOP_GRACE:g} s; killed it")
            return None
        if rc < 0 and -rc != signal.SIGTERM:   # e.g. SIGSEGV/SIGABRT while shutting down
            return f"server process {exit_description(rc)} on SIGTERM"
        return None

    def output_tail(self, lines=20):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").splitlines()[-lines:]


def run_case(c, host, port, timeout):
    ctx = Ctx(host, port, timeout)
    start = time.monotonic()
    try:
        c.fn(ctx)
        why = None
    except Failure as e:
        why = str(e)
    except OSError as e:
        why = f"socket error: {e}"
    ms = (time.monotonic() - start) * 1000
    return why, ctx.trace, ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", metavar="PATH", help="echo server executable to start")
    where.add_argument("--connect", metavar="HOST:PORT", help="an already running server")
    ap.add_argument("--server-arg", metavar="ARG", action="append", default=[],
                    help="extra argument for --server (repeatable)")
    ap.add_argument("-k", metavar="SUBSTR", help="only cases whose id or name contains SUBSTR")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each case's trace")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help=f"seconds per socket operation (default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                    help=f"seconds for the whole run (default {DEFAULT_BUDGET:g})")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)

    cases = [c for c in CASES if not args.k or args.k in c.id or args.k in c.desc]
    if args.list:
        for c in cases:
            print(c.id, c.desc)
        return 0

    server = None
    if args.server:
        server = ServerProcess(args.server, args.server_arg)
        host, port = "127.0.0.1", server.port
        problem = server.wait_ready()
        if problem:
            server.stop()
            print(f"FAIL startup {args.server}: {problem}")
            for line in server.output_tail():
                print(f"    | {line}")
            print("0 passed, 1 failed")
            return 1
    else:
        host, _, port = args.connect.rpartition(":")
        host, port = host.strip("[]") or "127.0.0.1", int(port)

    passed = failed = 0
    run_deadline = time.monotonic() + args.budget
    gone = None     # why the server can no longer be tested
    try:
        for c in cases:
            if gone is None and time.monotonic() > run_deadline:
                gone = f"not run: the {args.budget:g} s time budget is used up"
            if gone is not None:
                why, trace, ms = gone, [], 0.0
            else:
                why, trace, ms = run_case(c, host, port, args.timeout)
                dead = server.died() if server else None
                if dead:
                    why = f"server process {dead} during this case" + (f" ({why})" if why else "")
                    gone = f"not run: server process {dead}"
            if why is None:
                passed += 1
                print(f"PASS {c.id} {c.desc}", flush=True)
            else:
                failed += 1
                print(f"FAIL {c.id} {c.desc}: {why}", flush=True)
            if args.verbose and trace:
                print(f"    ({ms:.0f} ms)")
                for line in trace:
                    print(f"    {line}")
    finally:
        if server:
            problem = gone is None and server.died()
            problem = (f"server process {problem} after the last case" if problem
                       else server.stop())
            if problem:
                failed += 1
                gone = problem
                print(f"FAIL server {args.server}: {problem}", flush=True)
            if args.verbose or gone:
                for line in server.output_tail():
                    print(f"    server| {line}")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:   # stdout piped into e.g. `head`
        os._exit(1)
