#!/usr/bin/env bash
# An alternating A/B (or A/B/C/...) of mediagate builds or configs, in one run: each round runs
# every variant in turn on the same body at 50 connections (wrk -t1, 1 s warm-up, then SECS
# measured), a fresh process per measurement, in front of the bench upstream (started here).
# Prints one line per measurement, then each variant's medians: CPU-µs per request (utime +
# stime of the process over the measured run, from /proc), requests/s, p99, and context switches
# per request (all threads). A variant is BINARY:CONFIG; its config must listen on 18084 and
# point at the upstream on 127.0.0.1:18081, as bench/mediagate.toml does.
#
#   bench/ab.sh ping 5 3 /tmp/before:bench/mediagate.toml target/release/mediagate:bench/mediagate.toml
#
# Needs wrk and nginx (bench/run.sh installs them). Machines are shared and noisy: use several
# rounds and compare medians of the same run. Every load stops by itself; loopback only.
set -euo pipefail

[ $# -ge 4 ] || {
  echo "usage: $0 sessionStart|ping SECS ROUNDS BINARY:CONFIG..." >&2
  exit 2
}
BODY=$1 SECS=$2 ROUNDS=$3
shift 3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
case $BODY in
ping) PATH_=/api/v1/sessions/$SID/events FILE=$ROOT/tests/fixtures/ping.json ;;
sessionStart) PATH_=/api/v1/sessions FILE=$ROOT/tests/fixtures/session-start.json ;;
*) echo "body: sessionStart or ping" >&2 && exit 2 ;;
esac
for p in 18081 18084; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is in use (a bench running?)" >&2
    exit 1
  fi
done

SCRATCH=$(mktemp -d /tmp/mediagate-ab.XXXXXX)
chmod 755 "$SCRATCH"
UPSTREAM="" GATEWAY=""
cleanup() {
  if [ -n "$GATEWAY" ]; then kill -INT "$GATEWAY" 2>/dev/null || true; fi
  if [ -n "$UPSTREAM" ]; then kill -TERM "$UPSTREAM" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir -p "$SCRATCH/up"
cp "$ROOT/bench/upstream.conf" "$SCRATCH/up/nginx.conf"
nginx -p "$SCRATCH/up/" -c nginx.conf -e "$SCRATCH/up/error.log" -g 'daemon off;' </dev/null >/dev/null 2>&1 &
UPSTREAM=$!

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
wait_port 18081
TCK=$(getconf CLK_TCK)
cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
switches() { cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n}'; }
field() { sed -n 's/^BENCH //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
load() { BENCH_BODY=$FILE wrk -t1 -c50 -d"$1" --timeout 10s -s "$ROOT/bench/wrk-post.lua" "http://127.0.0.1:18084$PATH_"; }

: >"$SCRATCH/lines"
for round in $(seq 1 "$ROUNDS"); do
  for v in "$@"; do
    bin=${v%%:*} conf=${v#*:}
    "$bin" run -c "$conf" >/dev/null 2>"$SCRATCH/gateway.err" &
    GATEWAY=$!
    wait_port 18084
    load 1s >/dev/null 2>&1
    c0=$(cpu "$GATEWAY") s0=$(switches "$GATEWAY")
    load "${SECS}s" >"$SCRATCH/wrk.out" 2>&1
    c1=$(cpu "$GATEWAY") s1=$(switches "$GATEWAY")
    kill -INT "$GATEWAY" && wait "$GATEWAY" 2>/dev/null || true
    GATEWAY=""
    n=$(field "$SCRATCH/wrk.out" requests)
    [ "${n:-0}" -gt 0 ] || {
      echo "$v: no request completed: $(head -3 "$SCRATCH/wrk.out")" >&2
      exit 1
    }
    awk -v v="$v" -v r="$round" -v c=$((c1 - c0)) -v t="$TCK" -v n="$n" -v s="$SECS" \
      -v p="$(field "$SCRATCH/wrk.out" p99_us)" -v cs=$((s1 - s0)) \
      'BEGIN { printf "%s\t%d\t%.2f\t%.0f\t%.2f\t%.3f\n", v, r, c * 1e6 / t / n, n / s, p / 1000, cs / n }' |
      tee -a "$SCRATCH/lines"
  done
done
echo
printf '%s: medians of %s rounds (CPU-µs/req, req/s, p99 ms, context switches/req)\n' "$BODY" "$ROUNDS"
python3 - "$SCRATCH/lines" "$@" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
for v in sys.argv[2:]:
    mine = [r for r in rows if r[0] == v]
    med = [statistics.median(float(r[i]) for r in mine) for i in (2, 3, 4, 5)]
    cpus = sorted(float(r[2]) for r in mine)
    print(f"{v}\tcpu {med[0]:.1f} ({cpus[0]:.1f}-{cpus[-1]:.1f})\treq/s {med[1]:,.0f}\tp99 {med[2]:.2f}\tcs {med[3]:.3f}")
EOF
