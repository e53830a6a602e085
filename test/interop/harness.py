"""Process handling shared by the interop drivers in this directory.

Picks a free 127.0.0.1 port, waits (bounded) until a started server accepts TCP
connections, stops a process group (SIGTERM, then SIGKILL) and turns SIGTERM/SIGINT into
an exception so that the drivers' `finally` blocks stop what they started. Each driver
passes its own `log` so that its output keeps its own prefix. Standard library only.
"""

import os
import signal
import socket
import subprocess
import time

SKIP = 77  # meson's "skipped" exit status


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_accept(proc, port, timeout, log=None, name="server", connect_timeout=1.0):
    """True once 127.0.0.1:port accepts; False if `proc` exited or time ran out.

    With `log`, says why it returns False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if log is not None:
                log(f"{name} exited during startup with status {proc.returncode}")
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=connect_timeout):
                return True
        except OSError:
            time.sleep(0.05)
    if log is not None:
        log(f"{name} did not accept on 127.0.0.1:{port} within {timeout:.0f} s")
    return False


def stop(proc, timeout, log=None, name=None, sweep_group=False):
    """SIGTERM the process group we started, then SIGKILL, waiting `timeout` s after each;
    returns its exit status (None for no process).

    With `log`, says when SIGTERM was ignored. With `sweep_group`, the group is signalled even
    if its leader has already exited, and SIGKILLed once the leader is gone, so that no child
    survives it."""
    if proc is None:
        return None
    if not sweep_group and proc.poll() is not None:
        return proc.returncode
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if log is not None and sig == signal.SIGTERM:
                log(f"{name} ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
            continue
        if sweep_group:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return code
    return proc.returncode


def wait_client(client, timeout, stop_timeout, log):
    """The client's exit status; 1 (after stopping it) if it ran longer than `timeout` s."""
    try:
        return client.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"client still running after {timeout:.0f} s; killing it")
        stop(client, stop_timeout, log, "client")
        return 1


def finish(client, server, stop_timeout, log):
    """A driver's cleanup: default signal handling back, then the client (if started) and the
    server (if started) stopped, saying how a still running server ended."""
    restore_signals()
    if client is not None:
        stop(client, stop_timeout, log, "client")
    if server is not None:
        was_running = server.poll() is None
        code = stop(server, stop_timeout, log, "server")
        if was_running:
            log(f"server stopped, exit status {code}")


class Terminated(Exception):
    pass


def on_signal(signum, _frame):
    raise Terminated(signal.Signals(signum).name)


def catch_signals():
    """Turn SIGTERM and SIGINT into Terminated."""
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def restore_signals():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
