#!/usr/bin/env python3
"""Echo benchmark runner: server CPU time per unit of work, wscoro vs raw TCP vs Boost.Beast.

Builds nothing. For every scenario, R repetitions, the servers interleaved inside each
repetition (wscoro, raw, beast, wscoro, raw, beast, ...). Each run starts a fresh server
pinned with `taskset -c 0`, runs `loadgen` pinned to core 1 for a fixed amount of work, and
reads the server's CPU time before and after from /proc/PID/task/*/schedstat (nanoseconds
on CPU, user + kernel, including softirq work the kernel charged to it; /proc/PID/stat
utime+stime ticks are the fallback and give the user/kernel split). The idle scenario reads
VmRSS from /proc/PID/status after two steps of connections (e.g. 1000 then 10000) and
reports the slope, so one-time allocations do not count.

Output: a table (absolute medians and min..max, then the ratios wscoro/raw and wscoro/beast
computed per repetition and their median, next to the targets of the "Performance" issue),
and a JSON file with every run. Exit status 1 if any run failed (a server crashed, or the
load generator saw a wrong byte, opcode, size, handshake or close).

    run_bench.py --wscoro build/samples/echo --raw build/test/bench/raw_echo \
                 --beast build/test/bench/beast_echo --loadgen build/test/bench/loadgen \
                 [--reps 3] [--quick] [--scenarios pingpong,large] [--json out.json]
                 [--coroutine-too]

samples/echo serves with event callbacks by default; --coroutine-too adds a column "coro"
for the same binary run with --coroutine (its handler coroutine).
"""

import argparse
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

# name -> loadgen arguments, unit, work (full, quick), and the issue's figures:
# (raw TCP echo, uWebSockets, Boost.Beast 1.74, websocketpp, target for wscoro), or None for
# a scenario the issue does not list
SCENARIOS = {
    "pingpong": dict(
        title="64 conns, 1 x 32 B text in flight each",
        args=["--scenario", "pingpong", "--connections", "64", "--inflight", "1",
              "--size", "32", "--text"],
        work=("--messages", 200000, 20000), unit="us/msg",
        issue=(3.1, 3.2, 4.1, 4.5, 3.2)),
    "pipeline64": dict(
        title="8 conns x 64 in flight, 64 B text",
        args=["--scenario", "pipeline", "--connections", "8", "--inflight", "64",
              "--size", "64", "--text"],
        work=("--messages", 1000000, 100000), unit="us/msg",
        issue=(0.06, 0.09, 3.9, 1.2, 0.09)),
    "pipeline4k": dict(
        title="8 conns x 64 in flight, 4 KiB text",
        args=["--scenario", "pipeline", "--connections", "8", "--inflight", "64",
              "--size", "4096", "--text"],
        work=("--messages", 300000, 30000), unit="us/msg",
        issue=(0.72, 1.5, 9.5, 24, 1.5)),
    # Not in the issue: the same with text that is mostly 2-, 3- and 4-byte characters, where
    # UTF-8 validation cannot take the ASCII shortcut.
    "utf8-4k": dict(
        title="8 conns x 64 in flight, 4 KiB non-ASCII text",
        args=["--scenario", "pipeline", "--connections", "8", "--inflight", "64",
              "--size", "4096", "--unicode"],
        work=("--messages", 300000, 30000), unit="us/msg",
        issue=None),
    "large": dict(
        title="1 conn, one 1 MiB binary in flight",
        args=["--scenario", "large", "--connections", "1", "--inflight", "1",
              "--size", str(1 << 20), "--binary"],
        work=("--messages", 1000, 100), unit="us/msg",
        issue=(218, 512, 764, 1944, 450)),
    "connect": dict(
        title="connect + upgrade + close (16 concurrent loops)",
        args=["--scenario", "connect", "--connections", "16", "--sources", "4"],
        work=("--count", 20000, 2000), unit="us/conn",
        issue=(15, 18.6, 24, 46, 18)),
    "idle": dict(
        title="idle upgraded connections (RSS slope between two steps)",
        args=["--scenario", "idle", "--sources", "4", "--max-pending", "128"],
        work=("--steps", "1000,10000", "200,2000"), unit="KiB/conn",
        issue=(0, 0.25, 5.9, 11, 0.5)),
}
SERVERS = ["wscoro", "raw", "beast", "coro"]
# Extra server arguments: "coro" is samples/echo served by its handler coroutine instead of
# event callbacks (--coroutine), run when asked for with --coroutine-too.
SERVER_ARGS = {"coro": ["--coroutine"]}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_sample(pid):
    """(ns on CPU from schedstat or None, utime ticks, stime ticks) of a whole process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    ns = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ns = None
    return ns, utime, stime


def cpu_delta(a, b):
    """Seconds on CPU between two samples, and the kernel share of the tick counts."""
    ticks = (b[1] - a[1]) + (b[2] - a[2])
    sys_share = (b[2] - a[2]) / ticks if ticks > 0 else None
    if a[0] is not None and b[0] is not None and (b[0] > a[0] or ticks == 0):
        return (b[0] - a[0]) / 1e9, sys_share, "schedstat"
    return ticks / CLK_TCK, sys_share, "ticks"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pinned(cpu, cmd, pin):
    return (["taskset", "-c", str(cpu)] + cmd) if pin else cmd


class Server:
    def __init__(self, name, path, port, cpu, pin):
        self.name = name
        self.err = tempfile.TemporaryFile()
        cmd = pinned(cpu, [path, "--host", "127.0.0.1", "--port", str(port)] +
                     SERVER_ARGS.get(name, []), pin)
        # taskset execs the server: the PID is the server's.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"{name} did not start: {line!r} {self.stderr()}")
        # drain anything else it prints
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line from loadgen: {text[-500:]!r}")


def readline_timeout(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise RuntimeError("loadgen did not report in time")
    line = stream.readline()
    if not line:
        raise RuntimeError("loadgen exited early")
    return line


def loadgen_cmd(opts, sc, port, quick, raw):
    spec = SCENARIOS[sc]
    flag, full, small = spec["work"]
    cmd = [opts.loadgen, "--port", str(port)] + spec["args"]
    cmd += [flag, str(small if quick else full), "--timeout", str(opts.timeout)]
    if raw:
        cmd.append("--raw")
    return pinned(opts.client_cpu, cmd, not opts.no_pin)


def run_traffic(opts, sc, srv, port):
    cmd = loadgen_cmd(opts, sc, port, opts.quick, srv.name == "raw")
    before = cpu_sample(srv.pid)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=opts.timeout + 30)
    time.sleep(0.05)  # let the server finish the last closes
    after = cpu_sample(srv.pid)
    res = last_json(p.stdout)
    if p.returncode != 0 or res.get("errors"):
        raise RuntimeError(f"loadgen failed (rc {p.returncode}): {res.get('error')} {p.stderr[-500:]}")
    seconds, sys_share, source = cpu_delta(before, after)
    units = res["connects"] if sc == "connect" else res["messages"]
    return dict(value=seconds * 1e6 / units, cpu_s=seconds, sys_share=sys_share,
                cpu_source=source, units=units, rate=res["rate_per_s"], loadgen=res)


def run_idle(opts, sc, srv, port):
    cmd = loadgen_cmd(opts, sc, port, opts.quick, srv.name == "raw")
    settle, hold = (0.3, 0.5) if opts.quick else (1.0, 2.0)
    rss0 = rss_kib(srv.pid)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        steps = []
        while True:
            line = readline_timeout(p.stdout, opts.timeout)
            msg = json.loads(line)
            if msg.get("event") != "ready":  # a final line early: failure
                raise RuntimeError(f"loadgen failed: {msg.get('error')}")
            time.sleep(settle)
            steps.append((msg["connections"], rss_kib(srv.pid), cpu_sample(srv.pid)))
            if len(steps) == 2:
                break
            p.stdin.write("\n")
            p.stdin.flush()
        time.sleep(hold)
        idle_end = cpu_sample(srv.pid)
        out, err = p.communicate(timeout=opts.timeout)  # closes stdin: "go on" to the end
    except BaseException:
        p.kill()
        p.wait()
        raise
    res = last_json(out)
    if p.returncode != 0 or res.get("errors"):
        raise RuntimeError(f"loadgen failed (rc {p.returncode}): {res.get('error')} {err[-500:]}")
    (n1, r1, _), (n2, r2, c2) = steps
    idle_cpu, _, source = cpu_delta(c2, idle_end)
    return dict(value=(r2 - r1) / (n2 - n1), rss_total_per_conn=(r2 - rss0) / n2,
                rss_kib=[rss0, r1, r2], conns=[n1, n2], idle_cpu_us_per_s=idle_cpu * 1e6 / hold,
                cpu_source=source, units=n2, rate=None, loadgen=res)


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "KiB/conn":
        return f"{v:.3f}"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def ratio(a, b):
    return a / b if b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wscoro", required=True, help="wscoro's samples/echo")
    ap.add_argument("--raw", help="raw_echo")
    ap.add_argument("--beast", help="beast_echo")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--coroutine-too", action="store_true",
                    help="also run samples/echo with --coroutine (column 'coro')")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repetition, small counts (< 60 s)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", default="bench_results.json")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--timeout", type=int, default=300, help="per loadgen run, seconds")
    opts = ap.parse_args()
    if opts.quick:
        opts.reps = 1
    if not opts.no_pin and shutil.which("taskset") is None:
        log("taskset not found: running unpinned")
        opts.no_pin = True
    opts.client_cpu = opts.client_cpu if not opts.no_pin else None
    paths = {"wscoro": opts.wscoro, "raw": opts.raw, "beast": opts.beast,
             "coro": opts.wscoro if opts.coroutine_too else None}
    servers = [s for s in SERVERS if paths[s]]
    for s in servers + ["loadgen"]:
        p = opts.loadgen if s == "loadgen" else paths[s]
        if not os.access(p, os.X_OK):
            ap.error(f"{s}: {p} is not an executable")
    scenarios = [s for s in opts.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}; known: {', '.join(SCENARIOS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 10240 and "idle" in scenarios:
        log("warning: RLIMIT_NOFILE < 10240; the idle scenario will fail")

    started = time.time()
    runs, failures = [], []
    for sc in scenarios:
        for rep in range(opts.reps):
            for name in servers:
                port = free_port()
                t = time.time()
                rec = dict(scenario=sc, server=name, rep=rep)
                srv = None
                try:
                    srv = Server(name, paths[name], port, opts.server_cpu, not opts.no_pin)
                    fn = run_idle if sc == "idle" else run_traffic
                    rec.update(fn(opts, sc, srv, port))
                    if not srv.alive():
                        raise RuntimeError(f"{name} exited: {srv.stderr()}")
                    rec["ok"] = True
                except Exception as e:  # noqa: BLE001 - report and go on
                    rec.update(ok=False, error=str(e))
                    failures.append(rec)
                finally:
                    if srv is not None:
                        srv.stop()
                runs.append(rec)
                unit = SCENARIOS[sc]["unit"]
                log(f"{sc:11} rep {rep} {name:6} " +
                    (f"{fmt(rec['value'], unit)} {unit}" if rec["ok"] else f"FAILED: {rec['error']}") +
                    f"  ({time.time() - t:.1f} s)")

    # summary
    summary = {}
    lines = []
    w = lines.append
    w(f"server CPU per unit of work; {opts.reps} repetition(s), medians [min..max]; "
      f"server on cpu {opts.server_cpu}, loadgen on cpu {opts.client_cpu}"
      + (" (quick mode: small counts)" if opts.quick else ""))
    w(f"{'scenario':11} {'unit':8} " + " ".join(f"{s:>22}" for s in servers) +
      f" {'wscoro/raw':>11} {'wscoro/beast':>12}")
    for sc in scenarios:
        spec = SCENARIOS[sc]
        unit = spec["unit"]
        by = {s: {r["rep"]: r for r in runs if r["scenario"] == sc and r["server"] == s and r["ok"]}
              for s in servers}
        entry = {"title": spec["title"], "unit": unit}
        cells = []
        for s in servers:
            vals = [r["value"] for r in by[s].values()]
            med = statistics.median(vals) if vals else None
            entry[s] = dict(median=med, min=min(vals, default=None), max=max(vals, default=None),
                            values=vals)
            if sc == "idle" and vals:
                entry[s]["idle_cpu_us_per_s"] = statistics.median(
                    r["idle_cpu_us_per_s"] for r in by[s].values())
            elif vals:
                entry[s]["rate_per_s"] = statistics.median(r["rate"] for r in by[s].values())
                shares = [r["sys_share"] for r in by[s].values() if r["sys_share"] is not None]
                entry[s]["kernel_share"] = statistics.median(shares) if shares else None
            cells.append(f"{fmt(med, unit):>8} [{fmt(entry[s]['min'], unit)}..{fmt(entry[s]['max'], unit)}]"
                         if vals else "failed")
        for other in ("raw", "beast"):
            pairs = [ratio(by["wscoro"][k]["value"], by[other][k]["value"])
                     for k in by.get("wscoro", {}) if other in by and k in by[other]]
            pairs = [p for p in pairs if p is not None]
            entry[f"wscoro/{other}"] = statistics.median(pairs) if pairs else None
        if "coro" in by:
            pairs = [ratio(by["coro"][k]["value"], by["raw"][k]["value"])
                     for k in by["coro"] if "raw" in by and k in by["raw"]]
            pairs = [p for p in pairs if p is not None]
            entry["coro/raw"] = statistics.median(pairs) if pairs else None
        rr, rb = entry["wscoro/raw"], entry["wscoro/beast"]
        w(f"{sc:11} {unit:8} " + " ".join(f"{c:>22}" for c in cells) +
          f" {('%.2f' % rr) if rr is not None else '-':>11} {('%.2f' % rb) if rb is not None else '-':>12}")
        summary[sc] = entry

    w("")
    w("targets (issue figures from another machine; 'rel' = target / issue's raw or Beast figure)")
    w(f"{'scenario':11} {'wscoro':>9} {'target':>7} {'abs':>6} {'wscoro/raw':>10} {'rel':>6} {'':>6}"
      f" {'wscoro/beast':>12} {'rel':>6} {'':>6}")
    for sc in scenarios:
        e = summary[sc]
        if SCENARIOS[sc]["issue"] is None:
            continue
        raw_i, _uws, beast_i, _wspp, target = SCENARIOS[sc]["issue"]
        med = e.get("wscoro", {}).get("median")
        ok_abs = None if med is None else med <= target
        rel_raw = target / raw_i if raw_i else None
        rel_beast = target / beast_i if beast_i else None
        rr, rb = e.get("wscoro/raw"), e.get("wscoro/beast")
        ok_rr = None if rr is None or rel_raw is None else rr <= rel_raw
        ok_rb = None if rb is None or rel_beast is None else rb <= rel_beast
        verdict = lambda ok: "-" if ok is None else ("meets" if ok else "MISSES")  # noqa: E731
        e["target"] = dict(abs=target, rel_raw=rel_raw, rel_beast=rel_beast, meets_abs=ok_abs,
                           meets_rel_raw=ok_rr, meets_rel_beast=ok_rb)
        w(f"{sc:11} {fmt(med, e['unit']):>9} {target:>7} {verdict(ok_abs):>6}"
          f" {('%.2f' % rr) if rr is not None else '-':>10} {('%.2f' % rel_raw) if rel_raw else '-':>6} {verdict(ok_rr):>6}"
          f" {('%.2f' % rb) if rb is not None else '-':>12} {('%.3f' % rel_beast) if rel_beast else '-':>6} {verdict(ok_rb):>6}")
    if "idle" in summary:
        e = summary["idle"]
        w("idle: server CPU while holding the connections (us per second): " +
          ", ".join(f"{s} {e[s].get('idle_cpu_us_per_s', float('nan')):.0f}" for s in servers if s in e))
    rates = [f"{sc}: " + ", ".join(f"{s} {summary[sc][s]['rate_per_s']:.0f}/s" for s in servers
                                   if summary[sc].get(s, {}).get("rate_per_s"))
             for sc in scenarios if sc != "idle"]
    w("loadgen rates (median): " + "; ".join(rates))
    if "coro" in servers:
        w("coro (samples/echo --coroutine) / raw: " + ", ".join(
            f"{sc} {summary[sc]['coro/raw']:.2f}" for sc in scenarios
            if summary[sc].get("coro/raw") is not None))
    w(f"{len(runs)} runs, {len(failures)} failed, {time.time() - started:.0f} s")
    for f in failures:
        w(f"FAILED {f['scenario']} {f['server']} rep {f['rep']}: {f['error']}")
    print("\n".join(lines), flush=True)

    doc = dict(quick=opts.quick, reps=opts.reps, server_cpu=opts.server_cpu,
               client_cpu=opts.client_cpu, pinned=not opts.no_pin,
               servers={s: paths[s] for s in servers}, loadgen=opts.loadgen,
               scenarios={k: {kk: vv for kk, vv in v.items()} for k, v in SCENARIOS.items()
                          if k in scenarios},
               summary=summary, runs=runs, host=dict(cpus=os.cpu_count(), uname=" ".join(os.uname())))
    with open(opts.json, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"results written to {os.path.abspath(opts.json)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
