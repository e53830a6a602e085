#!/usr/bin/env python3
"""Run the WebSocket++ interop client against the wscoro echo server.

    run_websocketpp.py --server PATH --client PATH

Picks a free 127.0.0.1 port, starts `SERVER --host 127.0.0.1 --port P`, waits (bounded)
until it accepts TCP connections, runs `CLIENT P` (websocketpp_client.cpp: hybi-13, 08, 07
through WebSocket++'s client, hybi-00 through its hybi00 processor), then stops the server
(SIGTERM, then SIGKILL). Same approach as run_interop.py.

Exit status: the client's; 1 if the server failed to start or died during the run; 77
(meson's "skipped") if the client executable is missing (it is built only when the
libwebsocketpp-dev headers are installed). Standard library only.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

SKIP = 77
STARTUP_TIMEOUT = 10.0   # seconds for the server to accept connections
CLIENT_TIMEOUT = 240.0   # seconds for the whole client run (its own waits are bounded too)
STOP_TIMEOUT = 5.0       # seconds between SIGTERM and SIGKILL


def log(msg):
    print(f"run_websocketpp: {msg}", flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_accept(server, port):
    """True once 127.0.0.1:port accepts; False if the server exited or time ran out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log(f"server exited during startup with status {server.returncode}")
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    log(f"server did not accept on 127.0.0.1:{port} within {STARTUP_TIMEOUT:.0f} s")
    return False


def stop(proc, name):
    """SIGTERM the process group we started, then SIGKILL; returns its exit status."""
    if proc.poll() is not None:
        return proc.returncode
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if sig == signal.SIGTERM:
                log(f"{name} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; sending SIGKILL")
    return proc.returncode


class Terminated(Exception):
    pass


def on_signal(signum, _frame):
    raise Terminated(signal.Signals(signum).name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="path of the echo server executable")
    parser.add_argument("--client", required=True, help="path of the websocketpp_client executable")
    args = parser.parse_args()

    server_path = os.path.abspath(args.server)
    client_path = os.path.abspath(args.client)
    if not os.access(client_path, os.X_OK):
        log(f"SKIP: {client_path} not built (needs libwebsocketpp-dev)")
        return SKIP
    if not os.access(server_path, os.X_OK):
        log(f"server {server_path} is not an executable file")
        return 1

    port = free_port()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = client = None
    status = 1
    try:
        log(f"starting {server_path} on 127.0.0.1:{port}")
        server = subprocess.Popen([server_path, "--host", "127.0.0.1", "--port", str(port)],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_for_accept(server, port):
            return 1
        log(f"running {client_path} against ws://127.0.0.1:{port}/")
        client = subprocess.Popen([client_path, str(port)], stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            status = client.wait(timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"client still running after {CLIENT_TIMEOUT:.0f} s; killing it")
            stop(client, "client")
            status = 1
        if status != 0:
            log(f"client failed with status {status}")
        if server.poll() is not None:
            log(f"server died during the run with status {server.returncode}")
            status = status or 1
        return status
    except Terminated as exc:
        log(f"interrupted by {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if client is not None:
            stop(client, "client")
        if server is not None:
            was_running = server.poll() is None
            code = stop(server, "server")
            if was_running:
                log(f"server stopped, exit status {code}")


if __name__ == "__main__":
    sys.exit(main())
