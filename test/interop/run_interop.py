#!/usr/bin/env python3
"""Run a third-party WebSocket client against the wscoro echo server.

    run_interop.py --server PATH --client python|node [--tls]

Picks a free 127.0.0.1 port, starts `PATH --host 127.0.0.1 --port P`, waits
(bounded) until it accepts TCP connections, runs the client script against
ws://127.0.0.1:P, then stops the server (SIGTERM, then SIGKILL).

With --tls: makes a throw-away self-signed certificate for localhost/127.0.0.1
in a temporary directory with the `openssl` CLI, starts the server with
--tls-cert/--tls-key, and runs the client against wss://127.0.0.1:P/ with
`--ca CERT`, so the client verifies the server certificate against it.

Exit status: the client's status; 1 if the server failed to start or died
during the run (or the certificate could not be made); 77 (meson's "skipped")
if the client's runtime or library, or with --tls the openssl CLI, is
missing. Standard library only.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for harness, whatever the cwd

import harness  # noqa: E402
from harness import SKIP  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"  # python3-websockets is installed for this one only
STARTUP_TIMEOUT = 10.0   # seconds for the server to accept connections
CLIENT_TIMEOUT = 300.0   # seconds for the whole client run (its own waits are bounded too)
STOP_TIMEOUT = 5.0       # seconds between SIGTERM and SIGKILL
OPENSSL_TIMEOUT = 60.0   # seconds for making the --tls certificate


def log(msg):
    print(f"run_interop: {msg}", flush=True)


def client_command(client, url, ca=None):
    """The client's argv, or None after logging why it must be skipped."""
    extra = ["--ca", ca] if ca is not None else []
    if client == "python":
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            log(f"SKIP: {SYSTEM_PYTHON} not found")
            return None
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import websockets"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30, check=False)
        if probe.returncode != 0:
            log(f"SKIP: python module 'websockets' not importable by {SYSTEM_PYTHON}")
            return None
        return [SYSTEM_PYTHON, os.path.join(HERE, "python_client.py"), url] + extra
    node = shutil.which("node")
    if node is None:
        log("SKIP: node not found on PATH")
        return None
    if not os.path.isfile(os.path.join(HERE, "node_modules", "ws", "package.json")):
        log(f"SKIP: npm package 'ws' not installed in {HERE}/node_modules (run `npm ci` there)")
        return None
    return [node, os.path.join(HERE, "node_client.mjs"), url] + extra


def make_certificate(openssl, directory):
    """(cert, key) PEM paths of a fresh self-signed localhost certificate, or None."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    cmd = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-days", "1", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
           "-keyout", key, "-out", cert]
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=OPENSSL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        log(f"openssl req did not finish within {OPENSSL_TIMEOUT:.0f} s")
        return None
    if res.returncode != 0 or not (os.path.isfile(cert) and os.path.isfile(key)):
        log(f"openssl req failed with status {res.returncode}:\n"
            + res.stdout.decode("utf-8", "replace"))
        return None
    return cert, key


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="path of the echo server executable")
    parser.add_argument("--client", required=True, choices=("python", "node"))
    parser.add_argument("--tls", action="store_true",
                        help="serve wss:// with a throw-away self-signed certificate")
    args = parser.parse_args()

    server_path = os.path.abspath(args.server)
    if not os.access(server_path, os.X_OK):
        log(f"server {server_path} is not an executable file")
        return 1

    if not args.tls:
        return run(server_path, args.client)
    openssl = shutil.which("openssl")
    if openssl is None:
        log("SKIP: openssl not found on PATH (needed for --tls)")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="wscoro-interop-tls-") as tmp:
        made = make_certificate(openssl, tmp)
        if made is None:
            return 1
        return run(server_path, args.client, tls=made)


def run(server_path, client_name, tls=None):
    """Start the server, run the client against it; tls is (cert, key) or None."""
    port = harness.free_port()
    if tls is None:
        url = f"ws://127.0.0.1:{port}"
        cmd = client_command(client_name, url)
        server_cmd = [server_path, "--host", "127.0.0.1", "--port", str(port)]
    else:
        cert, key = tls
        url = f"wss://127.0.0.1:{port}/"
        cmd = client_command(client_name, url, ca=cert)
        server_cmd = [server_path, "--host", "127.0.0.1", "--port", str(port),
                      "--tls-cert", cert, "--tls-key", key]
    if cmd is None:
        return SKIP

    harness.catch_signals()

    server = client = None
    status = 1
    try:
        log(f"starting {server_path} on 127.0.0.1:{port}" + (" (TLS)" if tls else ""))
        # Own process group, so stopping it also reaches anything it spawned.
        server = subprocess.Popen(server_cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        if not harness.wait_for_accept(server, port, STARTUP_TIMEOUT, log):
            return 1

        log(f"running {client_name} client against {url}")
        client = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, cwd=HERE, start_new_session=True)
        status = harness.wait_client(client, CLIENT_TIMEOUT, STOP_TIMEOUT, log)
        if status == SKIP:
            log("client reported its library missing: skipped")
        elif status != 0:
            log(f"client failed with status {status}")

        if server.poll() is not None:
            log(f"server died during the run with status {server.returncode}")
            status = 1 if status in (0, SKIP) else status
        return status
    except harness.Terminated as exc:
        log(f"interrupted by {exc}")
        return 1
    finally:
        harness.finish(client, server, STOP_TIMEOUT, log)


if __name__ == "__main__":
    sys.exit(main())
