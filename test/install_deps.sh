#!/usr/bin/env bash
# Installs what wscoro needs on Debian 12 (run as root, or with sudo available), skipping
# what is already there. Usage: test/install_deps.sh [--tests]
#   without --tests: the build toolchain and libraries (enough for the samples)
#   with --tests:    also clang (sanitizer build), python3-websockets and node/npm (interop)
set -euo pipefail

want=(meson ninja-build g++ pkg-config cmake libasio-dev libssl-dev libfmt-dev doctest-dev)
if [[ "${1:-}" == "--tests" ]]; then
  want+=(clang python3 python3-websockets chromium openssl libwebsocketpp-dev ruby-em-websocket)
  # Node: keep an existing installation (e.g. from nodesource); otherwise Debian's.
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
