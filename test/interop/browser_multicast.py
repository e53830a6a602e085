#!/usr/bin/env python3
"""A real browser in the multicast chat room: headless Chromium against samples/multicast.

    browser_multicast.py --server PATH [--chromium /usr/bin/chromium] [--keep]

Picks a free 127.0.0.1 port and starts `PATH --host 127.0.0.1 --port P`. A python websockets
client A joins the room; then Debian's Chromium (headless) opens
samples/multicast/index.html?server=ws://127.0.0.1:P/&say=hello-from-chromium with the
DevTools protocol enabled. The page's DOM is read through Runtime.evaluate and polled until
the expected lines appear (or a timeout), so nothing depends on virtual time or sleeps.

Checks: A sees the browser join and its "?say=" message; the page shows its welcome line and
its own broadcast; A's "hi browser" reaches the page; the page's close (code 1000) reaches the
server, which tells A the browser left.

Output: `PASS name` / `FAIL name: why` lines, then `N passed, M failed`. Exit 0 iff nothing
failed; 77 (meson's "skipped") if chromium or the websockets module is missing. Every wait
is bounded; the whole run stays under 60 s. Standard library + python3-websockets only.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for harness, whatever the cwd

import harness  # noqa: E402
from harness import SKIP  # noqa: E402

PAGE = os.path.normpath(os.path.join(HERE, "..", "..", "samples", "multicast", "index.html"))
SAY = "hello-from-chromium"
REPLY = "hi browser"

TOTAL_BUDGET = 55.0      # seconds for everything, hard cap
STARTUP_TIMEOUT = 10.0   # server accepting TCP
BROWSER_TIMEOUT = 25.0   # chromium up and its DevTools endpoint answering
MSG_TIMEOUT = 10.0       # one expected message or DOM state
STOP_TIMEOUT = 3.0       # SIGTERM -> SIGKILL

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]

results = []  # (name, error-or-None)


def log(msg):
    print(f"browser_multicast: {msg}", file=sys.stderr, flush=True)


def check(name, ok, why=""):
    results.append((name, None if ok else (why or "failed")))
    print(f"PASS {name}" if ok else f"FAIL {name}: {why or 'failed'}", flush=True)
    return ok


def stop_group(proc):
    """SIGTERM the process group, then SIGKILL; bounded; no child survives the leader."""
    harness.stop(proc, STOP_TIMEOUT, sweep_group=True)


class Inbox:
    """Messages received by python client A, awaited by predicate with a timeout."""

    def __init__(self, ws):
        self.ws = ws
        self.seen = []

    async def expect(self, pattern, timeout=MSG_TIMEOUT):
        """The first message (already seen or arriving) matching regex `pattern`, or None."""
        rx = re.compile(pattern)
        for m in self.seen:
            if rx.fullmatch(m):
                return rx.fullmatch(m)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                m = await asyncio.wait_for(self.ws.recv(), left)
            except (asyncio.TimeoutError, Exception):  # timeout or connection closed
                return None
            if isinstance(m, bytes):
                m = m.decode("utf-8", "replace")
            self.seen.append(m)
            if rx.fullmatch(m):
                return rx.fullmatch(m)


class DevTools:
    """A minimal Chrome DevTools Protocol session on one page target."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, params=None, timeout=MSG_TIMEOUT):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{method}: no answer in {timeout}s")
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if reply.get("id") == my_id:  # events (no id) are ignored
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression):
        r = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    async def page_state(self):
        """{'status': text of #status, 'lines': texts of #log div.line}."""
        return await self.evaluate(
            "({status: (document.getElementById('status') || {}).textContent || '',"
            " lines: Array.from(document.querySelectorAll('#log div.line'), d => d.textContent)})")

    async def wait_state(self, predicate, timeout=MSG_TIMEOUT):
        """Poll the DOM until predicate(state) holds; returns (ok, last state)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state = {"status": "", "lines": []}
        while True:
            try:
                state = await self.page_state()
            except Exception as e:  # page still loading: retry until the deadline
                state = {"status": f"<{e}>", "lines": []}
            if predicate(state):
                return True, state
            if loop.time() >= deadline:
                return False, state
            await asyncio.sleep(0.1)


async def devtools_page(profile, browser, timeout):
    """Connect to the page target of the browser started with `profile`; None on timeout."""
    import websockets
    deadline = time.monotonic() + timeout
    port_file = os.path.join(profile, "DevToolsActivePort")
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise RuntimeError(f"chromium exited with status {browser.returncode}")
        try:
            with open(port_file) as f:
                port = int(f.readline().strip())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.load(r)
            pages = [t for t in targets
                     if t.get("type") == "page" and t.get("url", "").startswith("file://")]
            if pages:
                ws = await asyncio.wait_for(
                    websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=None,
                                       open_timeout=5, ping_interval=None),
                    5)
                return DevTools(ws)
        except (OSError, ValueError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no DevTools page target within {timeout}s")


async def scenario(port, chromium, profile, procs):
    import websockets
    server_url = f"ws://127.0.0.1:{port}/"

    # --- client A joins first
    try:
        a_ws = await asyncio.wait_for(
            websockets.connect(server_url, open_timeout=5, ping_interval=None), 5)
    except Exception as e:
        check("client_a_connects", False, repr(e))
        return
    a = Inbox(a_ws)
    m = await a.expect(r"welcome, (guest\d+)! \d+ in the room")
    if not check("client_a_welcome", m is not None, f"got {a.seen!r}"):
        await a_ws.close()
        return
    me = m.group(1)

    # --- the browser joins and says hello
    query = urllib.parse.urlencode({"server": server_url, "say": SAY})
    page_url = "file://" + urllib.parse.quote(PAGE) + "?" + query
    chromium_log = open(os.path.join(profile, "..", "chromium.log"), "wb")
    procs["browser"] = subprocess.Popen(
        [chromium] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}", page_url],
        stdin=subprocess.DEVNULL, stdout=chromium_log, stderr=subprocess.STDOUT,
        start_new_session=True)
    chromium_log.close()  # the browser has its own descriptor
    procs["browser_log"] = chromium_log.name

    m = await a.expect(rf"\* (?!{me} )(guest\d+) joined", timeout=BROWSER_TIMEOUT)
    if not check("browser_joined", m is not None, f"client A got {a.seen!r}"):
        await a_ws.close()
        return
    guest = m.group(1)
    m = await a.expect(rf"{guest}: {re.escape(SAY)}")
    check("browser_say_reaches_client", m is not None, f"client A got {a.seen!r}")

    # --- the page's DOM, through DevTools
    try:
        dt = await devtools_page(profile, procs["browser"], BROWSER_TIMEOUT)
    except Exception as e:
        check("devtools_attach", False, str(e))
        await a_ws.close()
        return

    try:
        welcome = re.compile(rf"welcome, {guest}! \d+ in the room")
        ok, st = await dt.wait_state(lambda s: any(welcome.fullmatch(l) for l in s["lines"]))
        check("page_welcome", ok, f"lines {st['lines']!r}, status {st['status']!r}")
        own = f"{guest}: {SAY}"
        ok, st = await dt.wait_state(lambda s: own in s["lines"])
        check("page_own_broadcast", ok, f"no {own!r} in {st['lines']!r}")
        check("page_status_connected", st["status"] == f"connected to {server_url}",
              f"status {st['status']!r}")

        await a_ws.send(REPLY)
        theirs = f"{me}: {REPLY}"
        ok, st = await dt.wait_state(lambda s: theirs in s["lines"])
        check("page_shows_client_message", ok, f"no {theirs!r} in {st['lines']!r}")
        m = await a.expect(rf"{me}: {re.escape(REPLY)}")
        check("client_a_own_broadcast", m is not None, f"client A got {a.seen!r}")

        # --- the page leaves cleanly: `ws` is the page's top-level socket
        await dt.evaluate("ws.close(1000, 'bye'), true")
        ok, st = await dt.wait_state(lambda s: s["status"].startswith("closed:"))
        check("page_close_clean", ok and "code 1000" in st["status"] and "clean=true" in st["status"],
              f"status {st['status']!r}")
        m = await a.expect(rf"\* {guest} left")
        check("browser_left", m is not None, f"client A got {a.seen!r}")
    except Exception as e:
        check("devtools_session", False, repr(e))
    finally:
        try:
            await asyncio.wait_for(dt.ws.close(), 3)
        except Exception:
            pass
        try:
            await asyncio.wait_for(a_ws.close(), 3)
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="path to the multicast sample binary")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (chromium.log)")
    args = ap.parse_args()

    if not os.access(args.chromium, os.X_OK):
        log(f"SKIP: {args.chromium} not installed (apt-get install chromium)")
        return SKIP
    try:
        import websockets  # noqa: F401
    except ImportError:
        log(f"SKIP: python module 'websockets' not importable by {sys.executable}")
        return SKIP
    if not os.access(args.server, os.X_OK):
        check("server_binary", False, f"{args.server} is not an executable")
        print("0 passed, 1 failed", flush=True)
        return 1

    tmp = tempfile.mkdtemp(prefix="wscoro-browser-")
    profile = os.path.join(tmp, "profile")
    os.mkdir(profile)
    port = harness.free_port()
    procs = {"server": None, "browser": None}
    try:
        procs["server"] = subprocess.Popen(
            [args.server, "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        if check("server_starts", harness.wait_for_accept(procs["server"], port, STARTUP_TIMEOUT, connect_timeout=0.5),
                 f"not accepting on 127.0.0.1:{port} within {STARTUP_TIMEOUT}s"):
            try:
                asyncio.run(asyncio.wait_for(
                    scenario(port, args.chromium, profile, procs), TOTAL_BUDGET - STARTUP_TIMEOUT))
            except asyncio.TimeoutError:
                check("total_budget", False, f"scenario exceeded {TOTAL_BUDGET - STARTUP_TIMEOUT}s")
            check("server_alive", procs["server"].poll() is None,
                  f"server exited with status {procs['server'].returncode}")
    finally:
        stop_group(procs["browser"])
        stop_group(procs["server"])
        failed = any(err for _, err in results)
        if failed and procs.get("browser_log"):
            try:
                with open(procs["browser_log"], "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-15:]
                log("chromium log tail:\n  " + "\n  ".join(tail))
            except OSError:
                pass
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    passed = sum(1 for _, err in results if err is None)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
