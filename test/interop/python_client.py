#!/usr/bin/env python3
"""Interop client for the wscoro echo server, using python3-websockets (asyncio API).

Usage: /usr/bin/python3 python_client.py ws://127.0.0.1:PORT
       /usr/bin/python3 python_client.py wss://127.0.0.1:PORT/ --ca CERT.pem

With wss:// every connection verifies the server certificate (chain and host
name) against CERT.pem only, and one more case checks that a client trusting
only the default store fails the TLS handshake while the server keeps serving.

Every case opens its own connection, so one failure does not cascade. Prints
`PASS name` or `FAIL name: why` per case and ends with `N passed, M failed`;
exits 0 iff nothing failed, 77 if the websockets module is missing.
"""

import asyncio
import ssl
import sys

try:
    import websockets
except ImportError as exc:  # pragma: no cover - exercised only on broken setups
    print(f"SKIP: python websockets module not importable: {exc}", flush=True)
    sys.exit(77)

T = 5.0       # bound for every ordinary await
T_BIG = 30.0  # bound for awaits in the 1 MiB cases
MIB = 1024 * 1024
MAX_SIZE = 4 * MIB


class CheckFailed(Exception):
    pass


def check(cond, why):
    if not cond:
        raise CheckFailed(why)


def describe(value):
    if isinstance(value, str):
        return f"text of {len(value.encode('utf-8'))} bytes"
    if isinstance(value, bytes):
        return f"binary of {len(value)} bytes"
    return type(value).__name__


def compare(expected, got):
    """Raise CheckFailed unless got has the same frame type and every byte of expected."""
    if type(got) is not type(expected):
        raise CheckFailed(f"expected {describe(expected)}, got {describe(got)}")
    exp_b = expected.encode("utf-8") if isinstance(expected, str) else expected
    got_b = got.encode("utf-8") if isinstance(got, str) else got
    if exp_b == got_b:
        return
    if len(exp_b) != len(got_b):
        raise CheckFailed(f"length {len(got_b)} bytes, expected {len(exp_b)}")
    first = next(i for i in range(len(exp_b)) if exp_b[i] != got_b[i])
    raise CheckFailed(f"first differing byte at offset {first}: got {got_b[first]:#04x}, "
                      f"expected {exp_b[first]:#04x}")


# With wss://: an SSLContext trusting only the --ca certificate (set in __main__).
TLS_CONTEXT = None


async def connect(url, timeout=T, ssl_context=None):
    kwargs = {}
    if url.startswith("wss:"):
        kwargs["ssl"] = ssl_context if ssl_context is not None else TLS_CONTEXT
    return await asyncio.wait_for(
        websockets.connect(url, max_size=MAX_SIZE, ping_interval=None,
                           open_timeout=timeout, close_timeout=timeout, **kwargs),
        timeout)


async def close_quietly(ws, timeout=T):
    try:
        await asyncio.wait_for(ws.close(), timeout)
    except Exception:
        pass


async def echo_one(url, message, timeout=T):
    ws = await connect(url, timeout)
    try:
        await asyncio.wait_for(ws.send(message), timeout)
        got = await asyncio.wait_for(ws.recv(), timeout)
        compare(message, got)
    finally:
        await close_quietly(ws, timeout)


def big_text(size):
    """Exactly `size` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte sequences."""
    unit = "wscoro κόσμε €uro 𝄞 "  # 1/2/3/4-byte code points
    unit_len = len(unit.encode("utf-8"))
    text = unit * (size // unit_len)
    text += "x" * (size - len(text.encode("utf-8")))
    assert len(text.encode("utf-8")) == size
    return text


def big_binary(size):
    return bytes((i * 31 + (i >> 8) * 7) & 0xFF for i in range(size))


async def case_pipelined(url):
    ws = await connect(url)
    try:
        msgs = []
        for i in range(100):
            msgs.append(f"message {i} κόσμε" if i % 2 == 0 else bytes([i]) * (i + 1))
        for m in msgs:
            await asyncio.wait_for(ws.send(m), T)
        for i, m in enumerate(msgs):
            got = await asyncio.wait_for(ws.recv(), T)
            try:
                compare(m, got)
            except CheckFailed as exc:
                raise CheckFailed(f"message {i}: {exc}") from None
    finally:
        await close_quietly(ws)


async def case_ping(url, payload):
    ws = await connect(url)
    try:
        waiter = await asyncio.wait_for(ws.ping(payload), T)
        # websockets resolves the waiter only for a pong carrying exactly this payload.
        await asyncio.wait_for(waiter, T)
        # The connection must still echo data after the ping/pong exchange.
        await asyncio.wait_for(ws.send("after ping"), T)
        compare("after ping", await asyncio.wait_for(ws.recv(), T))
    finally:
        await close_quietly(ws)


async def case_close(url, code, reason):
    ws = await connect(url)
    closed = False
    try:
        # Exchange one message first so the close happens on a used connection.
        await asyncio.wait_for(ws.send("before close"), T)
        compare("before close", await asyncio.wait_for(ws.recv(), T))
        await asyncio.wait_for(ws.close(code, reason), T)
        closed = True
        check(ws.close_code == code,
              f"server close code {ws.close_code} (reason {ws.close_reason!r}), expected {code}")
    finally:
        if not closed:
            await close_quietly(ws)


async def case_untrusted(url):
    # The default trust store does not contain the throw-away certificate.
    untrusted = ssl.create_default_context()
    try:
        ws = await connect(url, ssl_context=untrusted)
    except ssl.SSLCertVerificationError as exc:
        check(exc.verify_code in (18, 19),  # DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN
              f"handshake failed with an unexpected verification error: {exc}")
    else:
        await close_quietly(ws)
        raise CheckFailed("connected although the server certificate is not trusted")
    # The server must keep serving after the aborted handshake.
    try:
        await echo_one(url, "still serving after a rejected handshake")
    except CheckFailed as exc:
        raise CheckFailed(f"verified connection after the rejected one: {exc}") from None
    except Exception as exc:
        raise CheckFailed(f"verified connection after the rejected one: "
                          f"{type(exc).__name__}: {exc}") from None


def cases(url):
    yield "text ascii", lambda: echo_one(url, "Hello, wscoro!")
    yield "text utf-8 κόσμε", lambda: echo_one(url, "κόσμε")
    yield "binary all 256 byte values", lambda: echo_one(url, bytes(range(256)))
    yield "empty text", lambda: echo_one(url, "")
    yield "empty binary", lambda: echo_one(url, b"")
    for size in (125, 126, 65535, 65536):
        yield f"text {size} bytes", lambda size=size: echo_one(url, big_text(size))
        yield f"binary {size} bytes", lambda size=size: echo_one(url, big_binary(size))
    yield "text 1 MiB", lambda: echo_one(url, big_text(MIB), T_BIG)
    yield "binary 1 MiB", lambda: echo_one(url, big_binary(MIB), T_BIG)
    yield "100 messages pipelined", lambda: case_pipelined(url)
    yield "ping with payload -> pong", lambda: case_ping(url, b"wscoro-ping")
    yield "ping with 125-byte payload -> pong", lambda: case_ping(url, bytes(range(125)))
    yield "close 1000 with reason", lambda: case_close(url, 1000, "normal closure")
    yield "close 4000 bye", lambda: case_close(url, 4000, "bye")
    if url.startswith("wss:"):
        yield "tls: untrusted certificate rejected, server keeps serving", \
            lambda: case_untrusted(url)


async def main(url):
    passed = failed = 0
    for name, run in cases(url):
        try:
            await run()
        except asyncio.TimeoutError:
            failed += 1
            print(f"FAIL {name}: timed out", flush=True)
        except CheckFailed as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", flush=True)
        except Exception as exc:
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
        else:
            passed += 1
            print(f"PASS {name}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


def usage():
    print(f"usage: {sys.argv[0]} ws://HOST:PORT | wss://HOST:PORT/ --ca CERT.pem",
          file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if len(argv) == 1 and argv[0].startswith("ws:"):
        pass
    elif len(argv) == 3 and argv[0].startswith("wss:") and argv[1] == "--ca":
        # Verifies the chain and the host name against this certificate only.
        TLS_CONTEXT = ssl.create_default_context(cafile=argv[2])
    else:
        usage()
    sys.exit(asyncio.run(main(argv[0])))
