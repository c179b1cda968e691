#!/usr/bin/env bash
# Installs what building and testing mediagate needs on a Debian/Ubuntu machine that has only the
# Rust toolchain: cmake (pingora's build needs it) and, with "test", prometheus (promtool checks
# the exposition format and the alert rules; a real Prometheus server evaluates the dashboard's
# queries), redis-server (the session store tests start real ones on loopback ports) and
# chromium (the admin page and a player page are loaded in headless Chromium), nginx and HAProxy
# (the balancer examples run), systemd-analyze, and the deployment checks' tools. Uses sudo when
# not root. Safe to run again. The packaged services are never started by the tests: each test
# starts its own processes on loopback ports.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
if [ "${1:-}" = "test" ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
# The deployment checks' tools (tests/deploy.rs), under target/tools: checkov and
# kubernetes-validate from PyPI in a venv, the prometheus-operator models from npm.
tools() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/target/tools"
  mkdir -p "$dir"
  if [ ! -x "$dir/venv/bin/checkov" ] || [ ! -x "$dir/venv/bin/kubernetes-validate" ]; then
    echo "setup: installing checkov and kubernetes-validate into $dir/venv" >&2
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q --disable-pip-version-check 'checkov>=3.2,<4' 'kubernetes-validate>=1.30' >/dev/null
  fi
  if [ ! -d "$dir/npm/node_modules/@kubernetes-models/prometheus-operator" ]; then
    echo "setup: installing the prometheus-operator models into $dir/npm" >&2
    mkdir -p "$dir/npm"
    (cd "$dir/npm" && npm install -s --no-audit --no-fund --no-package-lock \
      '@kubernetes-models/prometheus-operator@6' 'yaml@2' >/dev/null)
  fi
}

if [ "${1:-}" = "test" ]; then
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  # The balancer examples of deploy/scaling run in tests/scaling.rs.
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
fi

if [ ${#need[@]} -eq 0 ]; then
  [ "${1:-}" = "test" ] && tools
  exit 0
fi

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
[ "${1:-}" = "test" ] && tools
exit 0
