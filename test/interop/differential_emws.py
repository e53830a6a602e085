#!/usr/bin/env python3
"""Differential test: wscoro's echo server against Ruby's em-websocket (the reference).

    differential_emws.py --server PATH [--ruby RUBY]

Starts `PATH --host 127.0.0.1 --port P` and `ruby emws_server.rb 127.0.0.1 Q` on free
ports, sends the SAME byte sequences to both, and compares what comes back.

Good requests (hixie-75, hixie-76 with the -76 draft's sample, hybi-01..03, hybi-05, 06, 07,
08 and 13): the parsed status line, the set of header names (case-insensitive), every header
value (Accept, Location, Origin, Upgrade, Connection, Protocol), the 16-byte challenge, and
then, on the open connection, the bytes answering a text frame, a ping (drafts >= 01) and a
Close of that version.

Bad requests (em-websocket.md §2.1 and §3) and frame-level quirks (§2.3, §2.4): each is an
explicit expectation for BOTH servers. Where wscoro deliberately differs (real HTTP answers
instead of a silent close, strict RFC 6455 checks, no crash, pipelined frames kept, version
4 accepted, em-websocket's framing bugs fixed, ...), the case says so and why; a difference
passes only if each side does exactly what is written down for it. Cases marked RECORDED
are differences found by this test that no design note covers yet: the expectation pins
today's behaviour until a decision is made.

Exit status: 0 if every check passed, 1 otherwise, 77 (meson's "skipped") if ruby or the
em-websocket gem is missing. Standard library only. Only 127.0.0.1 is used.
"""

import argparse
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for harness, whatever the cwd

import harness  # noqa: E402
from harness import SKIP, free_port  # noqa: E402

STARTUP_TIMEOUT = 15.0   # seconds for a server to accept connections
READ_TIMEOUT = 5.0       # seconds for an expected answer
QUIET_TIMEOUT = 1.5      # seconds of silence that mean "nothing more is coming"
STOP_TIMEOUT = 5.0

passed = 0
failed = 0


def log(msg):
    print(f"differential_emws: {msg}", flush=True)


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def show(b, limit=96):
    """Bytes for a log line: printable ASCII as is, the rest as \\xNN."""
    if b is None:
        return "None"
    s = repr(bytes(b[:limit]))[2:-1]
    return s + (f"...(+{len(b) - limit})" if len(b) > limit else "")


# ---------------------------------------------------------------------------------------
# processes

def wait_for_accept(proc, port, name):
    return harness.wait_for_accept(proc, port, STARTUP_TIMEOUT, log, name)


def stop(proc):
    return harness.stop(proc, STOP_TIMEOUT)


def start(cmd, port, name, stderr=None):
    log(f"starting {name}: {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr, start_new_session=True)
    if not wait_for_accept(proc, port, name):
        stop(proc)
        return None
    return proc


# ---------------------------------------------------------------------------------------
# wire helpers

class Conn:
    """One TCP connection; every read is bounded."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        self.buf = b""
        self.eof = False       # the peer closed (FIN)
        self.reset = False     # the peer reset the connection

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.reset = True
            return False

    def _recv(self, timeout):
        if self.eof or self.reset:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_head(self, timeout=READ_TIMEOUT):
        """The response head (through the blank line), or None."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._recv(left):
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def read_exact(self, n, timeout=READ_TIMEOUT):
        """n bytes, or whatever arrived before the timeout / EOF (shorter)."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._recv(left):
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_close(self, timeout=READ_TIMEOUT):
        """Everything until EOF/reset; `closed` False if the peer was still open at timeout."""
        deadline = time.monotonic() + timeout
        while not (self.eof or self.reset):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._recv(left)
        out, self.buf = self.buf, b""
        return out, (self.eof or self.reset)

    def read_quiet(self, quiet=QUIET_TIMEOUT):
        """Whatever arrives until `quiet` seconds pass without a byte."""
        while self._recv(quiet):
            pass
        out, self.buf = self.buf, b""
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_head(head):
    """(http_version, status, reason, [(name, value)]) or None."""
    try:
        text = head.decode("latin-1")
    except Exception:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    fields = []
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        fields.append((name, value.strip(" \t")))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", fields


def field(fields, name):
    vals = [v for n, v in fields if n.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (None if not vals else vals)


def mask_rfc(opcode, payload, key=b"\x11\x22\x33\x44"):
    """RFC 6455 / hybi-07+ client frame (FIN, masked, length < 126)."""
    assert len(payload) < 126
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + masked


def frame_rfc(opcode, payload):
    return bytes([0x80 | opcode, len(payload)]) + payload


def frame03(opcode, payload):
    """hybi-01..03: MORE bit clear, no mask."""
    assert len(payload) < 126
    return bytes([opcode, len(payload)]) + payload


def frame05_plain(opcode, payload):
    return bytes([0x80 | opcode, len(payload)]) + payload


def mask05(opcode, payload, key=b"\x01\x02\x03\x04"):
    """hybi-05/06: a 4-byte key that XOR-masks the whole frame, header included."""
    plain = frame05_plain(opcode, payload)
    return key + bytes(b ^ key[i % 4] for i, b in enumerate(plain))


# Opcodes: drafts 01..06 and RFC 6455.
D_CLOSE, D_PING, D_PONG, D_TEXT = 1, 2, 3, 4
R_TEXT, R_CLOSE, R_PING, R_PONG = 1, 8, 9, 10


def framing_for(version):
    """(text frame to send, its echo, ping, its pong, close to send, close reply or None)."""
    hello = b"Hello, em!"
    if version in (75, 76):
        return (b"\x00" + hello + b"\xff", b"\x00" + hello + b"\xff", None, None,
                b"\xff\x00", b"\xff\x00")
    if version in (1, 2, 3):
        return (frame03(D_TEXT, hello), frame03(D_TEXT, hello), frame03(D_PING, b"p3"),
                frame03(D_PONG, b"p3"), frame03(D_CLOSE, b""), None)
    if version in (5, 6):
        close_body = struct.pack("!H", 1000) + b"bye" if version == 6 else b""
        return (mask05(D_TEXT, hello), frame05_plain(D_TEXT, hello), mask05(D_PING, b"p5"),
                frame05_plain(D_PONG, b"p5"), mask05(D_CLOSE, close_body), None)
    return (mask_rfc(R_TEXT, hello), frame_rfc(R_TEXT, hello), mask_rfc(R_PING, b"pr"),
            frame_rfc(R_PONG, b"pr"), mask_rfc(R_CLOSE, struct.pack("!H", 1000) + b"bye"),
            None)


# ---------------------------------------------------------------------------------------
# requests (byte for byte the same to both servers)

def req(lines, body=b""):
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# draft-hixie-thewebsocketprotocol-76 §1.3: the sample handshake and its answer.
HIXIE76_SAMPLE = req([
    "GET /demo HTTP/1.1",
    "Host: example.com",
    "Connection: Upgrade",
    "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
    "Sec-WebSocket-Protocol: sample",
    "Upgrade: WebSocket",
    "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
    "Origin: http://example.com",
], b"^n:ds[4U")
HIXIE76_SAMPLE_ANSWER = b"8jKS'y:G*Co,Wxa-"

# em-websocket.md §2.2: 3703701 / 3 = 1234567, 38271605 / 5 = 7654321, key3 ABCDEFGH.
HYBI03_ANSWER = bytes.fromhex("b34cf1a7b055c78375cfb374499ae7f6")


def hybi0x(draft):
    return req([
        "GET /demo?d=%d HTTP/1.1" % draft,
        "Host: 127.0.0.1:9001",
        "Upgrade: WebSocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key1: x3 7 0 3701Q",
        "Sec-WebSocket-Key2: x3 8 2 7 1 605Q",
        "Sec-WebSocket-Draft: %d" % draft,
        "Origin: http://example.test",
    ], b"ABCDEFGH")


RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="          # RFC 6455 §1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def accept_of(key):
    """base64(SHA-1(key + GUID)), RFC 6455 §4.2.2."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()



def hybi(version, extra=(), key=RFC_KEY, origin_field=None, host="server.example.com",
         first="GET /chat HTTP/1.1", connection="Upgrade"):
    origin_field = origin_field or ("Origin" if version == 13 else "Sec-WebSocket-Origin")
    lines = [first]
    if host is not None:
        lines.append("Host: " + host)
    lines += ["Upgrade: websocket", "Connection: " + connection]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    lines.append(origin_field + ": http://example.com")
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    lines += list(extra)
    return req(lines)


HIXIE75 = req([
    "GET /demo?a=1 HTTP/1.1",
    "Upgrade: WebSocket",
    "Connection: Upgrade",
    "Host: 127.0.0.1:9001",
    "Origin: http://example.test",
])

GOOD = [
    # (name, version, request, expected field values both must send, expected challenge)
    ("hixie-75", 75, HIXIE75,
     {"Upgrade": "WebSocket", "Connection": "Upgrade", "WebSocket-Origin": "http://example.test",
      "WebSocket-Location": "ws://127.0.0.1:9001/demo?a=1"}, None),
    ("hixie-76 (-76 sample)", 76, HIXIE76_SAMPLE,
     {"Upgrade": "WebSocket", "Connection": "Upgrade",
      "Sec-WebSocket-Location": "ws://example.com/demo",
      "Sec-WebSocket-Origin": "http://example.com", "Sec-WebSocket-Protocol": "sample"},
     HIXIE76_SAMPLE_ANSWER),
] + [
    ("hybi-%02d (Sec-WebSocket-Draft: %d)" % (d, d), d, hybi0x(d),
     {"Upgrade": "WebSocket", "Connection": "Upgrade",
      "Sec-WebSocket-Location": "ws://127.0.0.1:9001/demo?d=%d" % d,
      "Sec-WebSocket-Origin": "http://example.test"}, HYBI03_ANSWER)
    for d in (1, 2, 3)
] + [
    ("hybi-%02d" % v, v, hybi(v),
     {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": RFC_ACCEPT}, None)
    for v in (5, 6, 7, 8)
] + [
    ("RFC 6455 (13)", 13, hybi(13),
     {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    # Variants both servers must answer identically.
    ("hixie-75 without Origin", 75,
     req(["GET /demo HTTP/1.1", "Upgrade: WebSocket", "Connection: Upgrade", "Host: h.test"]),
     {"WebSocket-Origin": "", "WebSocket-Location": "ws://h.test/demo"}, None),
    ("hixie-76 without Origin", 76,
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade",
          "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00", "Upgrade: WebSocket",
          "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5"], b"^n:ds[4U"),
     {"Sec-WebSocket-Origin": "", "Sec-WebSocket-Location": "ws://example.com/demo"},
     HIXIE76_SAMPLE_ANSWER),
    ("hybi-05 naming its origin Origin", 5, hybi(5, origin_field="Origin"),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    ("Sec-WebSocket-Draft: 13 instead of Sec-WebSocket-Version", 13,
     req(["GET /chat HTTP/1.1", "Host: h.test", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: " + RFC_KEY, "Sec-WebSocket-Draft: 13"]),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    ("RFC 6455 (13), lower-case field names and values", 13,
     req(["GET /chat HTTP/1.1", "host: h.test", "upgrade: WebSocket", "connection: upgrade",
          "sec-websocket-key: " + RFC_KEY, "sec-websocket-version: 13"]),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    ("RFC 6455 (13), bare LF line ends, padded version", 13,
     ("GET /chat HTTP/1.1\nHost: h.test\nUpgrade: websocket\nConnection: Upgrade\n"
      "Sec-WebSocket-Key: " + RFC_KEY + "\nSec-WebSocket-Version:   13  \n\n").encode(),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    ("RFC 6455 (13), absolute-form request-target", 13,
     hybi(13, first="GET ws://server.example.com/chat HTTP/1.1"),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    ("RFC 6455 (13), empty Sec-WebSocket-Protocol (ignored by both)", 13,
     hybi(13, extra=["Sec-WebSocket-Protocol: "]),
     {"Sec-WebSocket-Accept": RFC_ACCEPT}, None),
    # Firefox's Connection value; a subprotocol offer that neither server selects
    # (em-websocket 0.5.1 ignores it; the echo sample has no handshake hook).
    ("RFC 6455 (13), keep-alive + subprotocol offer", 13,
     hybi(13, extra=["Sec-WebSocket-Protocol: chat, superchat"],
          connection="keep-alive, Upgrade"),
     {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": RFC_ACCEPT}, None),
]


def run_good(port, version, request, has_challenge):
    """The transcript of one good exchange on one server."""
    t = {}
    c = Conn(port)
    try:
        c.send(request)
        head = c.read_head()
        t["head"] = head
        if head is None:
            t["error"] = "no response head (got %s, closed=%s)" % (show(c.buf), c.eof or c.reset)
            return t
        t["parsed"] = parse_head(head)
        if has_challenge:
            t["challenge"] = c.read_exact(16)
        text, echo, ping, pong, close, _ = framing_for(version)
        c.send(text)
        t["echo"] = c.read_exact(len(echo))
        if ping is not None:
            c.send(ping)
            t["pong"] = c.read_exact(len(pong))
        c.send(close)
        t["close_reply"], t["closed"] = c.read_until_close()
    finally:
        c.close()
    return t


def compare_good(name, version, request, want, challenge, ours_port, em_port):
    ours = run_good(ours_port, version, request, challenge is not None)
    em = run_good(em_port, version, request, challenge is not None)
    tag = f"{name}:"
    for side, t in (("wscoro", ours), ("em-websocket", em)):
        if not check("error" not in t, f"{tag} {side} answered the handshake", t.get("error", "")):
            return
    po, pe = ours["parsed"], em["parsed"]
    if not (check(po is not None, f"{tag} wscoro response parses", show(ours["head"])) and
            check(pe is not None, f"{tag} em-websocket response parses", show(em["head"]))):
        return
    check(po[:3] == pe[:3], f"{tag} same status line {pe[0]} {pe[1]} {pe[2]!r}",
          f"wscoro {po[:3]!r} vs em-websocket {pe[:3]!r}")
    check(po[1] == 101, f"{tag} status 101")
    names_o = sorted({n.lower() for n, _ in po[3]})
    names_e = sorted({n.lower() for n, _ in pe[3]})
    check(names_o == names_e, f"{tag} same header names {names_e}",
          f"wscoro {names_o} vs em-websocket {names_e}")
    for n in sorted({n for n, _ in po[3]} | {n for n, _ in pe[3]}, key=str.lower):
        vo, ve = field(po[3], n), field(pe[3], n)
        check(vo == ve, f"{tag} same {n} value {ve!r}", f"wscoro {vo!r} vs em-websocket {ve!r}")
    for n, v in want.items():
        check(field(po[3], n) == v and field(pe[3], n) == v, f"{tag} both send {n}: {v}",
              f"wscoro {field(po[3], n)!r}, em-websocket {field(pe[3], n)!r}")
    if ours["head"] == em["head"]:
        print(f"INFO {tag} response heads are byte-identical", flush=True)
    else:
        print(f"INFO {tag} heads differ only in field order/bytes: wscoro {show(ours['head'], 400)}"
              f" | em-websocket {show(em['head'], 400)}", flush=True)
    if challenge is not None:
        check(ours["challenge"] == em["challenge"] == challenge,
              f"{tag} same 16-byte challenge {challenge.hex()}",
              f"wscoro {ours['challenge'].hex()} vs em-websocket {em['challenge'].hex()}")
    _, echo, _, pong, _, close_reply = framing_for(version)
    check(ours["echo"] == em["echo"] == echo, f"{tag} text frame echoed identically {show(echo)}",
          f"wscoro {show(ours['echo'])} vs em-websocket {show(em['echo'])}")
    if pong is not None:
        check(ours["pong"] == em["pong"] == pong, f"{tag} ping answered identically {show(pong)}",
              f"wscoro {show(ours['pong'])} vs em-websocket {show(em['pong'])}")
    check(ours["closed"] and em["closed"], f"{tag} both close TCP after the Close exchange",
          f"wscoro closed={ours['closed']}, em-websocket closed={em['closed']}")
    check(ours["close_reply"] == em["close_reply"],
          f"{tag} same Close reply {show(em['close_reply'])}",
          f"wscoro {show(ours['close_reply'])} vs em-websocket {show(em['close_reply'])}")
    if close_reply is not None:
        check(em["close_reply"] == close_reply, f"{tag} Close reply is {show(close_reply)}",
              f"em-websocket {show(em['close_reply'])}")


# ---------------------------------------------------------------------------------------
# bad / quirky inputs: an explicit expectation for each side

def observe(port, request):
    """Send `request`; return what came back until the peer closed, a complete 101 answer
    (head, plus the 16-byte answer for a -76-style request) was followed by 0.3 s of
    silence, or QUIET_TIMEOUT + 1 s passed."""
    c = Conn(port)
    want_challenge = b"sec-websocket-key1:" in request.lower()
    try:
        c.send(request)
        deadline = time.monotonic() + QUIET_TIMEOUT + 1.0
        while not (c.eof or c.reset):
            head, sep, rest = c.buf.partition(b"\r\n\r\n")
            if sep and head.startswith(b"HTTP/1.1 101 ") and \
                    (not want_challenge or len(rest) >= 16):
                while c._recv(0.3):   # anything sent right after it (there should be none)
                    pass
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            c._recv(left)
        closed = c.eof or c.reset
        data, c.buf = c.buf, b""
        return {"data": data, "closed": closed}
    finally:
        c.close()


def silent_close(r):
    """em-websocket's answer to a failed handshake: no byte, TCP closed."""
    return r["data"] == b"" and r["closed"], f"got {show(r['data'])} closed={r['closed']}"


def no_answer_open(r):
    return r["data"] == b"" and not r["closed"], f"got {show(r['data'])} closed={r['closed']}"


def http_error(status, **fields):
    """wscoro's answer to a failed handshake: `status`, a text body, Connection: close,
    then TCP closed."""
    def pred(r):
        head, sep, body = r["data"].partition(b"\r\n\r\n")
        p = parse_head(head + sep) if sep else None
        if p is None:
            return False, f"no HTTP response: {show(r['data'])} closed={r['closed']}"
        ok = p[1] == status and r["closed"]
        ok = ok and field(p[3], "Connection") == "close"
        ok = ok and field(p[3], "Content-Length") == str(len(body))
        for n, v in fields.items():
            ok = ok and field(p[3], n.replace("_", "-")) == v
        return ok, f"got {show(r['data'], 300)} closed={r['closed']}"
    return pred


def switching(accept=None, extra_check=None):
    def pred(r):
        head, sep, rest = r["data"].partition(b"\r\n\r\n")
        p = parse_head(head + sep) if sep else None
        if p is None or p[1] != 101:
            return False, f"got {show(r['data'], 300)} closed={r['closed']}"
        ok = accept is None or field(p[3], "Sec-WebSocket-Accept") == accept
        if ok and extra_check:
            ok = extra_check(p, rest)
        return ok, f"got {show(r['data'], 300)} closed={r['closed']}"
    return pred


V426 = dict(Upgrade="websocket", Sec_WebSocket_Version="13, 8, 7")

BAD = [
    # --- the deliberate differences of the brief (em-websocket.md §3) ---
    ("plain GET (no Upgrade)", req(["GET / HTTP/1.1", "Host: example.com"]),
     silent_close, http_error(426, **V426),
     "em-websocket closes without a byte; wscoro answers 426 Upgrade Required (RFC 9110 §15.5.22)"),
    ("POST upgrade", hybi(13, first="POST /chat HTTP/1.1"),
     silent_close, http_error(405, Allow="GET"),
     "RFC 6455 §4.2.1 item 1 requires GET; wscoro answers 405 with Allow: GET"),
    ("missing Sec-WebSocket-Key (13)", hybi(13, key=None),
     silent_close, http_error(400),
     "RFC 6455 §4.2.1 item 5; wscoro answers 400"),
    ("Sec-WebSocket-Version: 4", hybi(4),
     silent_close,
     switching(RFC_ACCEPT, lambda p, rest: field(p[3], "Sec-WebSocket-Nonce") is not None),
     "em-websocket has a Framing04 but rejects 4; wscoro speaks hybi-04 (101 + Sec-WebSocket-Nonce)"),
    ("Sec-WebSocket-Version: 9", hybi(9),
     silent_close, http_error(426, **V426),
     "RFC 6455 §4.4: 426 naming the versions spoken"),
    ("Sec-WebSocket-Version: 14", hybi(14),
     silent_close, http_error(426, **V426),
     "RFC 6455 §4.4: 426 naming the versions spoken"),
    ("duplicated Sec-WebSocket-Version", hybi(13, extra=["Sec-WebSocket-Version: 13"]),
     silent_close, http_error(400),
     "RFC 6455 §11.3.5; em-websocket raises NoMethodError (with onerror: connection dropped; "
     "without: the process dies, checked separately); wscoro answers 400"),
    ("invalid Sec-WebSocket-Key 'not-base64!!'", hybi(13, key="not-base64!!"),
     switching(accept_of("not-base64!!")), http_error(400),
     "RFC 6455 §4.2.1 item 5 (base64 of 16 bytes); em-websocket hashes any string"),
    ("no Host", hybi(13, host=None),
     switching(RFC_ACCEPT), http_error(400),
     "RFC 6455 §4.2.1 item 2 / RFC 9112 §3.2"),
    ("HTTP/1.0", hybi(13, first="GET /chat HTTP/1.0"),
     switching(RFC_ACCEPT), http_error(505),
     "RFC 6455 §4.2.1 item 1 requires HTTP/1.1+; wscoro answers 505"),
    # --- further em-websocket quirks (em-websocket.md §2.1 / §3) ---
    ("Upgrade: websocket, foo (token list)",
     req(["GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket, foo",
          "Connection: Upgrade", "Sec-WebSocket-Key: " + RFC_KEY, "Sec-WebSocket-Version: 13"]),
     silent_close, switching(RFC_ACCEPT),
     "Upgrade is a token list (RFC 9110 §7.8, RFC 6455 §4.2.1 item 3 'includes'); "
     "em-websocket wants exactly 'websocket'"),
    ("no Connection header",
     req(["GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket",
          "Sec-WebSocket-Key: " + RFC_KEY, "Sec-WebSocket-Version: 13"]),
     silent_close, http_error(426, **V426),
     "RFC 6455 §4.2.1 item 4; wscoro answers 426"),
    ("Sec-WebSocket-Version: 0", hybi(0),
     silent_close, http_error(426, **V426), "unknown version -> 426"),
    ("Sec-WebSocket-Version: 12", hybi(12),
     silent_close, http_error(426, **V426), "unknown version -> 426"),
    ("Sec-WebSocket-Version: abc", hybi("abc"),
     silent_close, http_error(426, **V426), "unknown version -> 426"),
    ("Sec-WebSocket-Version: 13abc", hybi("13abc"),
     switching(RFC_ACCEPT), http_error(426, **V426),
     "Ruby's to_i reads 13abc as 13; RFC 6455 §4.1's version grammar does not, so 426"),
    ("Sec-WebSocket-Key without any version",
     req(["GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket",
          "Connection: Upgrade", "Sec-WebSocket-Key: " + RFC_KEY]),
     lambda r: (r["data"].startswith(b"HTTP/1.1 101 Web Socket Protocol Handshake\r\n"),
                f"got {show(r['data'], 300)}"),
     http_error(426, **V426),
     "em-websocket answers a hybi-04+ request that lost its version as hixie-75, which no such "
     "client can read; wscoro answers 426 listing 13, 8, 7"),
    ("Sec-WebSocket-Version: 76 on an RFC-style request", hybi(76),
     no_answer_open, http_error(400),
     "em-websocket selects hixie-76 and waits forever for key3; wscoro answers 400 (no Key1/Key2)"),
    ("hixie-76 without Key1 (Key2 only)",
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: WebSocket",
          "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00", "Origin: http://example.com"], b"^n:ds[4U"),
     silent_close, http_error(400),
     "em-websocket takes it for hixie-75 and fails on the 8 'extra' bytes; wscoro: 400 missing key"),
    ("hixie-76 key without spaces",
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: WebSocket",
          "Sec-WebSocket-Key1: 12345", "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
          "Origin: http://example.com"], b"^n:ds[4U"),
     silent_close, http_error(400), "-76 §5.2 step 6: a key without spaces is invalid"),
    ("garbage instead of HTTP", b"hello there\r\n\r\n",
     silent_close, http_error(400), "not HTTP: 400"),
    ("GET /healthcheck (0.5.1 has no health check; the echo sample sets none)",
     req(["GET /healthcheck HTTP/1.1", "Host: example.com"]),
     silent_close, http_error(426, **V426), "a plain GET: 426 (as 'plain GET')"),
    ("HTTP/1.0 hixie-76", req(["GET /demo HTTP/1.0", "Host: example.com", "Connection: Upgrade",
                               "Upgrade: WebSocket", "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
                               "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00"], b"^n:ds[4U"),
     switching(), http_error(505), "as 'HTTP/1.0', on the hixie-76 path"),
    ("no Host, hixie-75", req(["GET /demo HTTP/1.1", "Upgrade: WebSocket", "Connection: Upgrade"]),
     lambda r: (b"WebSocket-Location: ws:///demo\r\n" in r["data"], f"got {show(r['data'], 300)}"),
     http_error(400), "as 'no Host'; em-websocket sends Location ws:///demo"),
    ("duplicated Host", hybi(13, extra=["Host: other.test"]),
     switching(RFC_ACCEPT), http_error(400), "RFC 9112 §3.2: exactly one Host"),
    ("duplicated Sec-WebSocket-Key", hybi(13, extra=["Sec-WebSocket-Key: " + RFC_KEY]),
     switching(accept_of('["%s", "%s"]' % (RFC_KEY, RFC_KEY))), http_error(400),
     "RFC 6455 §11.3.1: one key; em-websocket hashes Ruby's Array#to_s, '[\"K\", \"K\"]'"),
    ("duplicated Upgrade: websocket", hybi(13, extra=["Upgrade: websocket"]),
     silent_close, switching(RFC_ACCEPT),
     "two Upgrade lines are one token list (RFC 9110 §5.3) that includes websocket; "
     "em-websocket rejects the Array value"),
    ("Sec-WebSocket-Key with trailing white space",
     req(["GET /chat HTTP/1.1", "Host: h.test", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: " + RFC_KEY + "   ", "Sec-WebSocket-Version: 13"]),
     switching(accept_of(RFC_KEY + "   ")), switching(RFC_ACCEPT),
     "RFC 9110 §5.5: trailing OWS is not part of the field value; em-websocket hashes it "
     "(a wrong Accept a client rejects)"),
    ("Sec-WebSocket-Version: 013", hybi("013"),
     switching(RFC_ACCEPT), http_error(426, **V426), "as '13abc': a leading zero is not the grammar"),
    ("Sec-WebSocket-Version: (empty)", hybi(""),
     silent_close, http_error(426, **V426), "unknown version -> 426"),
    ("request-target '/%' (bad percent-encoding)",
     hybi(13, first="GET /% HTTP/1.1"),
     silent_close, http_error(400),
     "RFC 3986 §2.1: '%' must start a pct-encoded triplet; em-websocket's URI.parse rejects "
     "it too, but silently"),
    ("hixie-75 request-target '/%'",
     req(["GET /% HTTP/1.1", "Upgrade: WebSocket", "Connection: Upgrade", "Host: h.test"]),
     silent_close, http_error(400), "as above, on the hixie-75 path"),
    ("hixie-76 absolute-form request-target",
     req(["GET http://example.com/demo HTTP/1.1", "Host: example.com", "Connection: Upgrade",
          "Upgrade: WebSocket", "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
          "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00"], b"^n:ds[4U"),
     lambda r: (b"Sec-WebSocket-Location: ws://example.comhttp://example.com/demo\r\n" in r["data"],
                f"got {show(r['data'], 300)}"),
     http_error(400),
     "the -76 Location needs an origin-form path; em-websocket glues Host and the absolute URI"),
    ("hixie-76 key not a multiple of its spaces",
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: WebSocket",
          "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5", "Sec-WebSocket-Key2: 12998 5 Y3 1  .P01"],
         b"^n:ds[4U"),
     silent_close, http_error(400), "-76 §5.2 step 7"),
    ("hixie-76 key quotient above 2^32-1",
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: WebSocket",
          "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5", "Sec-WebSocket-Key2: 99999999999 1"],
         b"^n:ds[4U"),
     silent_close, http_error(400), "-76 §5.2: the quotient is a 32-bit number"),
    ("hixie-76 empty Sec-WebSocket-Protocol",
     req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: WebSocket",
          "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5", "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
          "Sec-WebSocket-Protocol: "], b"^n:ds[4U"),
     silent_close,
     switching(extra_check=lambda p, rest: field(p[3], "Sec-WebSocket-Protocol") is None and
               rest == HIXIE76_SAMPLE_ANSWER),
     "em-websocket fails the handshake; wscoro treats an empty offer as none (101, no "
     "Sec-WebSocket-Protocol)"),
    ("hixie-75 WebSocket-Protocol offer",
     req(["GET /demo HTTP/1.1", "Upgrade: WebSocket", "Connection: Upgrade", "Host: h.test",
          "WebSocket-Protocol: sample"]),
     switching(extra_check=lambda p, rest: field(p[3], "WebSocket-Protocol") is None),
     switching(extra_check=lambda p, rest: field(p[3], "WebSocket-Protocol") == "sample"),
     "-75 §4.1 requires the server to echo WebSocket-Protocol; em-websocket 0.5.1 never does"),
    ("hybi-02 without Key1/Key2 (no key3 either)",
     req(["GET /demo HTTP/1.1", "Host: h.test", "Upgrade: WebSocket", "Connection: Upgrade",
          "Sec-WebSocket-Draft: 2"]),
     no_answer_open, http_error(400),
     "em-websocket waits for a key3 that never comes (no handshake timeout); wscoro checks the "
     "keys first and answers 400"),
]


def run_bad(name, request, em_expect, ours_expect, why, ours_port, em_port, em_proc):
    ours = observe(ours_port, request)
    em = observe(em_port, request)
    ok_e, det_e = em_expect(em)
    ok_o, det_o = ours_expect(ours)
    check(ok_e, f"bad input '{name}': em-websocket as documented", det_e)
    check(ok_o, f"bad input '{name}': wscoro as documented ({why})", det_o)
    check(em_proc.poll() is None, f"bad input '{name}': em-websocket still running",
          f"exit status {em_proc.returncode}")


def frame_pipelined(ours_port, em_port):
    """A text frame sent in the same write as the upgrade request."""
    text, echo, *_ = framing_for(13)
    request = hybi(13) + text
    got = {}
    for side, port in (("wscoro", ours_port), ("em-websocket", em_port)):
        c = Conn(port)
        try:
            c.send(request)
            head = c.read_head()
            p = parse_head(head) if head else None
            got[side] = (p[1] if p else None, c.read_exact(len(echo), timeout=QUIET_TIMEOUT))
        finally:
            c.close()
    check(got["em-websocket"] == (101, b""),
          "bad input 'frame pipelined after the upgrade': em-websocket answers 101 and drops "
          "the frame", f"got {got['em-websocket']!r}")
    check(got["wscoro"] == (101, echo),
          "bad input 'frame pipelined after the upgrade': wscoro answers 101 and echoes the frame "
          "(RFC 6455 §4.1: the client may send frames right after its request)",
          f"got {got['wscoro']!r}")


def hixie_trailing(ours_port, em_port):
    """Bytes after the head: hixie-75 (em-websocket: error) and hixie-76 with 8 + frame."""
    text, echo, *_ = framing_for(75)
    cases = [
        ("hixie-75 request + pipelined frame", HIXIE75 + text,
         "em-websocket: 'extra bytes after header' -> silent close; wscoro: 101 and the frame "
         "is echoed"),
        ("hixie-76 request + key3 + pipelined frame", HIXIE76_SAMPLE + text,
         "em-websocket: more than 8 body bytes -> silent close; wscoro: 101 + answer, frame "
         "echoed"),
    ]
    for name, request, why in cases:
        em = observe(em_port, request)
        c = Conn(ours_port)
        try:
            c.send(request)
            head = c.read_head()
            p = parse_head(head) if head else None
            extra = 16 if b"Key1" in request else 0
            answer = c.read_exact(extra) if extra else b""
            frame = c.read_exact(len(echo), timeout=QUIET_TIMEOUT)
        finally:
            c.close()
        check(em["data"] == b"" and em["closed"], f"bad input '{name}': em-websocket closes "
              "silently", f"got {show(em['data'])} closed={em['closed']}")
        ok = p is not None and p[1] == 101 and frame == echo
        if extra:
            ok = ok and answer == HIXIE76_SAMPLE_ANSWER
        check(ok, f"bad input '{name}': wscoro as documented ({why})",
              f"head {show(head)} answer {show(answer)} frame {show(frame)}")


def frag05(opcode, payload, fin, key=b"\x01\x02\x03\x04"):
    plain = bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload
    return key + bytes(b ^ key[i % 4] for i, b in enumerate(plain))


def exact(data, closed):
    def pred(r):
        return (r["data"], r["closed"]) == (data, closed), \
            f"got {show(r['data'])} closed={r['closed']}, want {show(data)} closed={closed}"
    return pred


def fails_with(version, code):
    """wscoro failing the connection: a Close carrying `code` (any reason), then TCP closed."""
    first = 0x88 if version >= 7 else 0x81
    def pred(r):
        d = r["data"]
        ok = len(d) >= 4 and d[0] == first and d[1] == len(d) - 2 and \
            struct.unpack("!H", d[2:4])[0] == code and r["closed"]
        return ok, f"got {show(d)} closed={r['closed']}, want Close {code}"
    return pred


HI = b"\x00hi\xff"
FRAMES = [
    # (name, version, request, frames, em-websocket expectation, wscoro expectation, why)
    ("hixie-76 zero-length 0x80 frame, then text", 76, HIXIE76_SAMPLE, b"\x80\x00" + HI,
     exact(b"\xff\x00", True), exact(HI, False),
     "-76 §5.3: only 0xFF 0x00 closes; em-websocket closes on any zero-length typed frame"),
    ("hixie-76 length-prefixed 0x80 frame, then text", 76, HIXIE76_SAMPLE, b"\x80\x03abc" + HI,
     exact(b"", False), exact(HI, False),
     "-76 §5.3: the frame is discarded; em-websocket stalls the rest of the read (§2.3)"),
    ("hixie-76 frame type 0x05 (no high bit), then text", 76, HIXIE76_SAMPLE,
     b"\x05abc\xff" + HI, exact(b"", True), exact(HI, False),
     "-76 §5.3: read to 0xFF and discard; em-websocket fails the connection"),
    ("hixie-75 text then 0xFF 0x00", 75, HIXIE75, HI + b"\xff\x00",
     exact(HI + b"\xff\x00", True), exact(HI + b"\xff\x00", True), "identical"),
    ("hybi-03 message in two fragments", 3, hybi0x(3), b"\x84\x01H\x00\x01i",
     exact(b"\x04\x02Hi", False), exact(b"\x04\x02Hi", False), "identical"),
    ("hybi-03 message in three fragments", 3, hybi0x(3), b"\x84\x01H\x80\x01i\x00\x01!",
     exact(b"\x04\x03Hi!", False), exact(b"\x04\x03Hi!", False), "identical"),
    ("hybi-03 unknown opcode 9", 3, hybi0x(3), b"\x09\x00",
     exact(b"\x01\x00", True), exact(b"\x01\x00", True), "identical"),
    ("hybi-05 message in two fragments", 5, hybi(5),
     frag05(D_TEXT, b"H", False) + frag05(0, b"i", True),
     exact(b"\x84\x02Hi", False), exact(b"\x84\x02Hi", False), "identical"),
    ("hybi-05 message in three fragments", 5, hybi(5),
     frag05(D_TEXT, b"H", False) + frag05(0, b"i", False) + frag05(0, b"!", True),
     exact(b"", False), exact(b"\x84\x03Hi!", False),
     "em-websocket drops 3+-fragment messages on 05/06 (§2.3 bug); wscoro delivers them"),
    ("hybi-03 Close with a body", 3, hybi0x(3), frame03(D_CLOSE, b"\x03\xe8bye"),
     exact(b"\x01\x05\x03\xe8bye", True), exact(b"\x01\x00", True),
     "RECORDED, not on the deliberate list: em-websocket echoes the Close body; wscoro answers "
     "with an empty Close (hybi-03 gives the body no meaning)"),
    ("hybi-05 Close with a body", 5, hybi(5), mask05(D_CLOSE, b"\x03\xe8bye"),
     exact(b"\x81\x05\x03\xe8bye", True), exact(b"\x81\x00", True),
     "RECORDED, not on the deliberate list: as hybi-03"),
    ("hybi-06 Close without a code", 6, hybi(6), mask05(D_CLOSE, b""),
     exact(b"\x81\x02\x03\xe8", True), exact(b"\x81\x00", True),
     "RECORDED, not on the deliberate list: em-websocket answers code 1000; wscoro an empty "
     "Close (nothing to echo)"),
    ("RFC 6455 Close without a code", 13, hybi(13), mask_rfc(R_CLOSE, b""),
     exact(b"\x88\x02\x03\xe8", True), exact(b"\x88\x00", True),
     "RECORDED, not on the deliberate list: em-websocket answers 1000; wscoro an empty Close "
     "(RFC 6455 §5.5.1: no code received, none echoed)"),
    ("RFC 6455 unmasked client frame", 13, hybi(13), b"\x81\x02hi",
     exact(b"\x81\x02hi", False), fails_with(13, 1002),
     "RFC 6455 §5.1: the server MUST fail the connection (em-websocket's check is commented out)"),
    ("RFC 6455 Close code 999", 13, hybi(13), mask_rfc(R_CLOSE, b"\x03\xe7"),
     exact(b"\x88\x02\x03\xe7", True), fails_with(13, 1002),
     "RFC 6455 §7.4: 999 is not a valid code; em-websocket echoes it"),
    ("RFC 6455 invalid UTF-8 text", 13, hybi(13), mask_rfc(R_TEXT, b"\xc3\x28"),
     exact(b"\x88\x13\x03\xefInvalid UTF8 data", True), fails_with(13, 1007),
     "both fail with 1007 (reason texts differ)"),
    ("hybi-06 invalid UTF-8 text", 6, hybi(6), mask05(D_TEXT, b"\xc3\x28"),
     exact(b"\x81\x13\x03\xefInvalid UTF8 data", True), fails_with(6, 1007),
     "both fail with 1007 (reason texts differ)"),
]


def run_frames(port, request, has_challenge, frames):
    c = Conn(port)
    try:
        c.send(request)
        head = c.read_head()
        if head is None:
            return {"data": b"<no handshake>", "closed": c.eof or c.reset}
        if has_challenge:
            c.read_exact(16)
        c.send(frames)
        data, closed = c.read_until_close(timeout=QUIET_TIMEOUT)
        return {"data": data, "closed": closed}
    finally:
        c.close()


def frame_cases(ours_port, em_port):
    for name, version, request, frames, em_expect, ours_expect, why in FRAMES:
        chal = version in (1, 2, 3, 76)
        ok_e, det_e = em_expect(run_frames(em_port, request, chal, frames))
        ok_o, det_o = ours_expect(run_frames(ours_port, request, chal, frames))
        check(ok_e, f"frames '{name}': em-websocket as documented", det_e)
        check(ok_o, f"frames '{name}': wscoro as documented ({why})", det_o)


def flash_policy(ours_port, em_port):
    request = b"<policy-file-request/>\x00"
    xml = (b'<?xml version="1.0"?><cross-domain-policy>'
           b'<allow-access-from domain="*" to-ports="*"/></cross-domain-policy>')
    em = observe(em_port, request)
    ours = observe(ours_port, request)
    check(em["data"] == xml and em["closed"],
          "flash policy request: em-websocket sends the XML without a NUL, then closes",
          show(em["data"], 200))
    check(ours["data"] == xml + b"\x00" and ours["closed"],
          "flash policy request: wscoro sends the same XML plus the NUL Adobe's protocol "
          "requires, then closes", show(ours["data"], 200))


def duplicate_version_crash(server_path, ruby, script):
    """em-websocket without onerror dies on a repeated Sec-WebSocket-Version; wscoro answers
    400 and keeps serving (checked in BAD above and here after the request)."""
    port = free_port()
    proc = start([ruby, script, "127.0.0.1", str(port), "--no-onerror"], port,
                 "em-websocket (no onerror)", stderr=subprocess.DEVNULL)
    if proc is None:
        check(False, "em-websocket without onerror started")
        return
    try:
        observe(port, hybi(13, extra=["Sec-WebSocket-Version: 13"]))
        try:
            proc.wait(timeout=READ_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        check(proc.poll() is not None,
              "duplicated Sec-WebSocket-Version kills an em-websocket server without onerror "
              "(em-websocket.md §1.7; wscoro never lets a request end the process)",
              "the process is still running")
    finally:
        stop(proc)


# ---------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="path of the wscoro echo executable")
    parser.add_argument("--ruby", default=None, help="ruby interpreter (default: from PATH)")
    args = parser.parse_args()

    server_path = os.path.abspath(args.server)
    if not os.access(server_path, os.X_OK):
        log(f"server {server_path} is not an executable file")
        return 1
    ruby = args.ruby or shutil.which("ruby")
    if ruby is None:
        log("SKIP: ruby not found on PATH")
        return SKIP
    probe = subprocess.run([ruby, "-e", "require 'em-websocket'"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60, check=False)
    if probe.returncode != 0:
        log("SKIP: the em-websocket gem is not installed (Debian: ruby-em-websocket)")
        return SKIP
    script = os.path.join(HERE, "emws_server.rb")

    harness.catch_signals()
    ours = em = None
    try:
        ours_port, em_port = free_port(), free_port()
        while em_port == ours_port:
            em_port = free_port()
        ours = start([server_path, "--host", "127.0.0.1", "--port", str(ours_port)], ours_port,
                     "wscoro echo")
        em = start([ruby, script, "127.0.0.1", str(em_port)], em_port, "em-websocket echo",
                   stderr=subprocess.DEVNULL)
        if ours is None or em is None:
            return 1

        for name, version, request, want, challenge in GOOD:
            compare_good(name, version, request, want, challenge, ours_port, em_port)
        for name, request, em_expect, ours_expect, why in BAD:
            run_bad(name, request, em_expect, ours_expect, why, ours_port, em_port, em)
        frame_pipelined(ours_port, em_port)
        hixie_trailing(ours_port, em_port)
        frame_cases(ours_port, em_port)
        flash_policy(ours_port, em_port)
        duplicate_version_crash(server_path, ruby, script)

        check(ours.poll() is None, "wscoro echo still running after every case",
              f"exit status {ours.returncode}")
        check(em.poll() is None, "em-websocket (with onerror) still running after every case",
              f"exit status {em.returncode}")
    except harness.Terminated as exc:
        log(f"interrupted by {exc}")
        return 1
    finally:
        harness.restore_signals()
        stop(ours)
        stop(em)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
