#!/usr/bin/env bash
# Installs what building and testing mediagate needs on a Debian/Ubuntu machine that has only the
# Rust toolchain: cmake (pingora's build needs it) and, with "test", prometheus (promtool checks
# the exposition format and the alert rules; a real Prometheus server evaluates the dashboard's
# queries), redis-server (the session store tests start real ones on loopback ports) and
# chromium (the admin page is loaded in headless Chromium). Uses sudo when not root. Safe to run
# again.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
if [ "${1:-}" = "test" ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: please install ${need[*]} with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq
# --no-install-recommends keeps the prometheus package from pulling in a web UI and exporters
# (promtool and the server binary are what the tests use, the server started by the tests on a
# loopback port, never the packaged service). The tests start their own redis-server processes on ports of their
# own, so a packaged server that may be started on 6379 is never used.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
