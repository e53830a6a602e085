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
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for harness, whatever the cwd

import harness  # noqa: E402
from harness import SKIP  # noqa: E402

STARTUP_TIMEOUT = 10.0   # seconds for the server to accept connections
CLIENT_TIMEOUT = 240.0   # seconds for the whole client run (its own waits are bounded too)
STOP_TIMEOUT = 5.0       # seconds between SIGTERM and SIGKILL


def log(msg):
    print(f"run_websocketpp: {msg}", flush=True)


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

    port = harness.free_port()
    harness.catch_signals()
    server = client = None
    status = 1
    try:
        log(f"starting {server_path} on 127.0.0.1:{port}")
        server = subprocess.Popen([server_path, "--host", "127.0.0.1", "--port", str(port)],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        if not harness.wait_for_accept(server, port, STARTUP_TIMEOUT, log):
            return 1
        log(f"running {client_path} against ws://127.0.0.1:{port}/")
        client = subprocess.Popen([client_path, str(port)], stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        status = harness.wait_client(client, CLIENT_TIMEOUT, STOP_TIMEOUT, log)
        if status != 0:
            log(f"client failed with status {status}")
        if server.poll() is not None:
            log(f"server died during the run with status {server.returncode}")
            status = status or 1
        return status
    except harness.Terminated as exc:
        log(f"interrupted by {exc}")
        return 1
    finally:
        harness.finish(client, server, STOP_TIMEOUT, log)


if __name__ == "__main__":
    sys.exit(main())
