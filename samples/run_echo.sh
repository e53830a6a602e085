#!/usr/bin/env bash
# Installs what is missing, builds, and starts the echo server on ws://127.0.0.1:8080.
# Extra arguments go to the server, e.g. samples/run_echo.sh --port 9000 --debug
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/install_deps.sh
[[ -f build-release/build.ninja ]] || meson setup build-release --buildtype=release -Dtests=false >/dev/null
meson compile -C build-release samples/echo >/dev/null
exec build-release/samples/echo "$@"
