#!/usr/bin/env python3
"""Soak test (issue 6): 10 000 concurrent WebSocket connections against samples/echo, with
churn, twice; the server's memory and sockets must come back afterwards.

    soak.py --server build/samples/echo --loadgen build/test/slow/soak_loadgen
            [--connections 10000] [--rounds 60] [--duration 120] [--churn 10] [--cycles 2]

Steps (standard library only; the load itself is test/bench/loadgen.cpp, scenario soak,
which checks every echoed byte, the type and size of every message, the Accept key, the
Pongs, and a clean close handshake on every connection):

 1. Start the echo server on 127.0.0.1, port 0 (the port is read from its banner), with
    RLIMIT_NOFILE raised to the hard limit.
 2. Warm-up: 200 connections, 2 rounds with churn, all closed; so that everything the server
    creates lazily exists. Then wait until its sockets are back to their count at start
    and its RSS is steady: that RSS is the baseline.
 3. Cycle (run --cycles times, identically): --connections concurrent connections, then
    --rounds rounds (fewer if --duration s of traffic pass first) in which every connection
    echoes one message of 1 B .. 8 KiB (text or binary, some fragmented, some with a Ping
    between fragments) and --churn % of them close cleanly and are replaced by new ones;
    then all close cleanly. RSS is sampled every 0.1 s meanwhile (peak reported). Afterwards
    the script waits (at most --settle s) until the server's sockets are back to the
    baseline count and its RSS is at most baseline + --rss-bound MiB and steady for 2 s.
    The RSS then (or at the end of the wait) is the cycle's result; both conditions must
    hold. Then a fresh client must still get its echoes.
 4. Flatness: the RSS after each later cycle must not exceed the RSS after the first cycle
    by more than --growth-bound MiB.

The bounds. Once every connection is gone, what a correct server may keep is small and
bounded: the per-thread pool of read buffers (at most 16 x 64 KiB), Asio's reactor records
(168 B per socket of the peak, about 1.7 MB for 10 000, reused, freed with the io_context),
the allocators' caches and some heap fragmentation. 8 MiB covers that, while keeping 1 KiB
per connection of the peak (about 10 MiB for 10 000) would exceed it. The growth bound of
2 MiB between two identical cycles is 200 bytes per connection of one cycle's initial
10 000 alone (each cycle opens more: churn adds --churn % per round).

Exit status: 0 pass, 1 fail, 77 (skipped) when the machine cannot hold the connections (hard
RLIMIT_NOFILE below connections + 500, or too few local ports).
"""

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import harness  # noqa: E402  (test/interop/harness.py: stop(), signal handling)

SKIP = harness.SKIP
MIB = 1024  # KiB


def log(*a):
    print("soak:", *a, flush=True)


def proc_status(pid):
    """VmRSS, RssAnon and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


def rss_kib(pid):
    return proc_status(pid)["VmRSS"]


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_count(pid):
    """The process's socket descriptors: its listener and its connections. (Not all its
    descriptors: the sample creates its signal pipe after printing its banner.)"""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return n


def mib(kib):
    return f"{kib / MIB:.1f} MiB"


def port_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return hi - lo + 1
    except (OSError, ValueError):
        return None


def sources_usable(n):
    """True if connections from 127.0.0.2 .. 127.0.0.n to 127.0.0.1 work here."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        try:
            with socket.socket() as c:
                c.bind((f"127.0.0.{n}", 0))
                c.settimeout(2)
                c.connect(srv.getsockname())
            return True
        except OSError:
            return False


class Server:
    """samples/echo on 127.0.0.1 with a free port read from its banner."""

    def __init__(self, path):
        self.err = tempfile.TemporaryFile()
        # `meson test` sets MALLOC_PERTURB_, with which glibc writes every byte it allocates
        # and frees: the RSS would then measure that (e.g. every 64 KiB read buffer fully
        # resident), not the server.
        env = dict(os.environ)
        if env.pop("MALLOC_PERTURB_", None) is not None:
            log("note: MALLOC_PERTURB_ removed from the server's environment")
        self.proc = subprocess.Popen([path, "--host", "127.0.0.1", "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.pid = self.proc.pid
        line = self._banner(15)
        m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", line)
        if not m:
            harness.stop(self.proc, 5)
            raise RuntimeError(f"server did not start: {line!r} {self.stderr()}")
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain

    def _banner(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return box[0].decode(errors="replace") if box else ""

    def alive(self):
        return self.proc.poll() is None

    def stderr(self, limit=2000):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-limit:]


class Sampler(threading.Thread):
    """Samples the server's RSS and descriptor count every `period` s; keeps the peaks."""

    def __init__(self, pid, period=0.1):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak_rss = self.peak_fds = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.peak_rss = max(self.peak_rss, rss_kib(self.pid))
                self.peak_fds = max(self.peak_fds, fd_count(self.pid))
                self.samples += 1
            except (OSError, KeyError):
                return
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join()


def run_loadgen(opts, port, args, timeout):
    """Runs the load generator; returns (exit status, its JSON result or None, stderr)."""
    cmd = [opts.loadgen, "--port", str(port), "--timeout", str(int(timeout))] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        harness.stop(p, 5)
        return 1, None, "loadgen did not finish in time (killed)"
    except BaseException:
        harness.stop(p, 5)
        raise
    res = None
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            try:
                res = json.loads(line)
            except ValueError:
                pass
            break
    return p.returncode, res, err


def settle(srv, socks0, target_kib, timeout, steady=2.0):
    """Waits up to `timeout` s until the server holds at most `socks0` sockets and its RSS
    is at most `target_kib` (None: any) and unchanged (within 64 KiB) for `steady` s.
    Returns (RSS in KiB, sockets, seconds waited, whether every condition was met)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last, since = None, None
    while True:
        now = time.monotonic()
        rss, socks = rss_kib(srv.pid), socket_count(srv.pid)
        if last is None or abs(rss - last) > 64:
            last, since = rss, now
        ok = (socks <= socks0 and (target_kib is None or rss <= target_kib)
              and now - since >= steady)
        if ok or now >= deadline:
            return rss, socks, now - t0, ok
        time.sleep(0.25)


def liveness(opts, srv):
    """A fresh client still gets its echoes (and its handshake and close) from the server."""
    rc, res, err = run_loadgen(opts, srv.port, ["--scenario", "pingpong", "--connections", "4",
                                                "--messages", "400", "--size", "100"], 60)
    if rc != 0 or not res or res.get("errors") or res.get("messages") != 400:
        return f"fresh client failed (rc {rc}): {(res or {}).get('error')} {err[-300:]}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="samples/echo")
    ap.add_argument("--loadgen", required=True, help="test/bench/loadgen.cpp built")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=60, help="rounds per cycle")
    ap.add_argument("--duration", type=int, default=120,
                    help="no new round after this many seconds of a cycle's traffic")
    ap.add_argument("--churn", type=int, default=10, help="percent replaced per round")
    ap.add_argument("--size", type=int, default=8192, help="largest message")
    ap.add_argument("--sources", type=int, default=4, help="127.0.0.x client addresses")
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--rss-bound", type=float, default=8.0,
                    help="MiB above the baseline allowed once a cycle is over")
    ap.add_argument("--growth-bound", type=float, default=2.0,
                    help="MiB a later cycle may add to the RSS left by the first one")
    ap.add_argument("--settle", type=float, default=10.0,
                    help="seconds allowed for sockets and RSS to come back")
    opts = ap.parse_args()
    for path in (opts.server, opts.loadgen):
        if not os.access(path, os.X_OK):
            log(f"{path} is not an executable (build it first)")
            return 1

    # Environment: descriptors for the connections (the loadgen and the server each hold one
    # per connection, in separate processes) and local ports for them.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = opts.connections + 500
    if hard != resource.RLIM_INFINITY and hard < need:
        log(f"SKIP: hard RLIMIT_NOFILE is {hard}, {need} needed for {opts.connections} "
            f"connections (ulimit -Hn)")
        return SKIP
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the children
    if opts.sources > 1 and not sources_usable(opts.sources):
        log(f"note: cannot connect from 127.0.0.{opts.sources}; using 127.0.0.1 only")
        opts.sources = 1
    ports = port_range()
    if ports is not None and ports < opts.connections // opts.sources + 1000:
        log(f"SKIP: {ports} local ports (net.ipv4.ip_local_port_range) for "
            f"{opts.connections} connections from {opts.sources} address(es)")
        return SKIP

    log(f"{opts.cycles} cycles of {opts.connections} connections x {opts.rounds} rounds "
        f"(at most {opts.duration} s each), churn {opts.churn} %/round, messages 1 B .. "
        f"{opts.size} B; bounds: baseline + {opts.rss_bound:g} MiB after a cycle, "
        f"+ {opts.growth_bound:g} MiB from cycle to cycle")
    harness.catch_signals()
    box, failures = [], []
    t_start = time.monotonic()
    try:
        soak(opts, box, failures)
    except harness.Terminated as e:
        failures.append(f"terminated by {e}")
    except Exception as e:  # noqa: BLE001 - report it as a failure, not a traceback
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        harness.restore_signals()
        if box:
            srv = box[0]
            was_running = srv.alive()
            code = harness.stop(srv.proc, 10, log, "server")
            if was_running and code != 0:
                failures.append(f"server exit status {code} after SIGTERM")
            text = srv.stderr()
            if text.strip():
                log(f"server stderr (last 2000 bytes):\n{text.rstrip()}")
    log(f"run time {time.monotonic() - t_start:.0f} s")
    for f in failures:
        log(f"FAIL: {f}")
    if failures:
        return 1
    log("PASS")
    return 0


def soak(opts, box, failures):
    """The test proper; appends what failed to `failures`, returns early on a failure that
    makes the rest meaningless. The server goes into `box` for the caller to stop."""
    srv = Server(opts.server)
    box.append(srv)
    socks0 = socket_count(srv.pid)
    st = proc_status(srv.pid)
    log(f"server pid {srv.pid} port {srv.port}: RSS at start {mib(st['VmRSS'])} "
        f"(anon {mib(st['RssAnon'])}), {socks0} socket(s) (the listener)")

    # Warm-up, then the baseline.
    rc, res, err = run_loadgen(opts, srv.port, [
        "--scenario", "soak", "--connections", "200", "--rounds", "2", "--churn", "10",
        "--size", str(opts.size)], 60)
    if rc != 0 or not res or res.get("errors"):
        failures.append(f"warm-up failed (rc {rc}): {(res or {}).get('error')} {err[-300:]}")
        return
    base, socks, waited, ok = settle(srv, socks0, None, opts.settle)
    if socks > socks0:
        failures.append(f"{waited:.1f} s after the warm-up the server still holds {socks} "
                        f"sockets ({socks0} at start)")
        return
    if not ok:
        log(f"note: the RSS was still changing {waited:.1f} s after the warm-up")
    st = proc_status(srv.pid)
    log(f"baseline after warm-up ({res['messages']} messages on {res['opened']} "
        f"connections): RSS {mib(base)} (anon {mib(st['RssAnon'])}), {socks} socket(s)")
    bound = base + int(opts.rss_bound * MIB)

    after = []
    for cycle in range(1, opts.cycles + 1):
        sampler = Sampler(srv.pid)
        sampler.start()
        t0 = time.monotonic()
        rc, res, err = run_loadgen(opts, srv.port, [
            "--scenario", "soak", "--connections", str(opts.connections),
            "--rounds", str(opts.rounds), "--duration", str(opts.duration),
            "--churn", str(opts.churn), "--size", str(opts.size),
            "--sources", str(opts.sources), "--max-pending", "128"],
            opts.duration + 240)
        t_load = time.monotonic() - t0
        sampler.stop()
        if err.strip():
            log(f"cycle {cycle}: loadgen stderr: {err.strip()[-500:]}")
        if not srv.alive():
            failures.append(f"cycle {cycle}: the server exited with status "
                            f"{srv.proc.returncode}")
            return
        if rc != 0 or not res or res.get("errors"):
            failures.append(f"cycle {cycle}: loadgen failed (rc {rc}): "
                            f"{(res or {}).get('error')}")
            return
        log(f"cycle {cycle}: {res['rounds']} rounds, {res['messages']} messages "
            f"({res['bytes'] / 2**20:.1f} MiB echoed, {res['fragmented']} fragmented, "
            f"{res['pings']} pings), {res['opened']} connections opened and "
            f"{res['closed']} closed cleanly; ramp-up {res['ramp_s']:.2f} s, traffic "
            f"{res['wall_s']:.2f} s ({res['rate_per_s']:.0f} msg/s), total {t_load:.1f} s; "
            f"slowest upgrade {res['max_upgrade_ms']:.1f} ms, slowest echo "
            f"{res['max_echo_ms']:.1f} ms")
        rss, socks, waited, ok = settle(srv, socks0, bound, opts.settle)
        st = proc_status(srv.pid)
        after.append(rss)
        log(f"cycle {cycle}: server RSS peak {mib(sampler.peak_rss)} "
            f"({(sampler.peak_rss - base) * 1024 / opts.connections:.0f} B/connection "
            f"above the baseline; VmHWM {mib(st['VmHWM'])}), peak descriptors "
            f"{sampler.peak_fds}; {waited:.1f} s after the load: RSS {mib(rss)} "
            f"(anon {mib(st['RssAnon'])}, baseline + {mib(rss - base)}), {socks} "
            f"socket(s)")
        if socks > socks0:
            failures.append(f"cycle {cycle}: {socks} sockets {opts.settle:g} s after the "
                            f"load, {socks0} at the start (connections not released)")
        if rss > bound:
            failures.append(f"cycle {cycle}: RSS {mib(rss)} is baseline + {mib(rss - base)} "
                            f"after {waited:.1f} s, bound baseline + {opts.rss_bound:g} MiB "
                            f"(baseline {mib(base)}, peak {mib(sampler.peak_rss)})")
        if cycle > 1 and rss > after[0] + int(opts.growth_bound * MIB):
            failures.append(f"cycle {cycle}: RSS {mib(rss)} grew by {mib(rss - after[0])} "
                            f"since cycle 1 ({mib(after[0])}), bound "
                            f"{opts.growth_bound:g} MiB")
        problem = liveness(opts, srv)
        if problem:
            failures.append(f"cycle {cycle}: {problem}")
            return
        log(f"cycle {cycle}: a fresh client still gets its echoes")


if __name__ == "__main__":
    sys.exit(main())
