#!/usr/bin/env bash
# The load benchmark of issue 5 (`make bench`): one run, one machine, the same upstream and the
# same request mix through
#   upstream   straight to the bench upstream (the limit)
#   nginx      nginx as a plain reverse proxy with proxy_redirect (no validation)
#   nginx-lua  nginx validating bodies in access_by_lua with lua-cjson (the peer)
#   haproxy    HAProxy as a plain reverse proxy, one thread, http-reuse safe (no validation)
#   mediagate-floor  mediagate with [bench] pass_through: no validation, enrichment, metrics,
#              log or session tracking (the framework's own cost)
#   mediagate  mediagate: validation enforce, enrichment, Location rewriting, metrics, access
#              log, the session tracker (memory store)
# For each: req/s, p50/p99 latency, CPU-µs per request of the proxy process (from /proc),
# peak RSS, for sessionStart bodies and pings, at 50 and 1000 connections; then the memory
# held by 10 000 idle keep-alive client connections; then syscalls per request (perf stat); then
# the latency the Redis session store adds per call: pings spread over 2 000 tracked sessions
# at 50 connections, through mediagate with the memory store and with a real redis-server.
# Prints a table of ratios against nginx and writes it to bench/results/latest.md (and a
# timestamped copy). See bench/README.md for what is measured and how to rerun one cell.
#
# Environment (defaults in brackets):
#   BENCH_WARMUP [2] / BENCH_DURATION [8]   seconds of warm-up / measured load per cell
#   BENCH_TARGETS ["upstream nginx haproxy nginx-lua mediagate-floor mediagate"]
#   BENCH_BODIES ["sessionStart ping"]      BENCH_CONNS ["50 1000"]
#   BENCH_REPEAT [1]                        rounds of all cells; the report keeps each cell's median
#   BENCH_IDLE_CONNS [10000]                0 skips the idle-connection test
#   BENCH_IDLE_TARGETS ["nginx haproxy nginx-lua mediagate"]
#   BENCH_SYSCALLS [1]                      0 skips the perf stat syscall counts
#   BENCH_SESSION_STORE [1]                 0 skips the session store cells (memory vs redis)
#   BENCH_STORE_SESSIONS [2000]             sessions the store cells' pings are spread over
#   BENCH_SYSCALL_DURATION [5]              seconds of load under perf stat / perf record
#   BENCH_PROFILE [1]                       0 skips the CPU profiles (perf record)
#   BENCH_PROFILE_TARGETS ["nginx haproxy mediagate-floor mediagate"]
#   BENCH_OUT [bench/results]               where the report goes
#   BENCH_KEEP [0]                          1 keeps the scratch directory (logs, raw outputs)
#   BENCH_QUIET_WAIT [60]                   seconds to wait before a cell for a quiet machine
#   BENCH_OTHER_MAX [10] / BENCH_RETRIES [2] a cell during which other processes used more than
#                                           this % of a core is measured again, at most this often
#   MEDIAGATE_BIN [target/release/mediagate] (built with cargo build --release when missing)
#   BENCH_MEDIAGATE_CONFIG [bench/mediagate.toml] another config, same ports, for experiments
#   MEDIAGATE_B_BIN [MEDIAGATE_BIN] / BENCH_MEDIAGATE_B_CONFIG [BENCH_MEDIAGATE_CONFIG]
#                                           the target mediagate-b, for an A/B of two builds or
#                                           two configs in one run (with BENCH_REPEAT, the
#                                           targets of a round are measured in turn)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
FIXTURES=$ROOT/tests/fixtures

WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-8}
TARGETS=${BENCH_TARGETS-"upstream nginx haproxy nginx-lua mediagate-floor mediagate"}
BODIES=${BENCH_BODIES-"sessionStart ping"}
CONNS=${BENCH_CONNS-"50 1000"}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
IDLE_TARGETS=${BENCH_IDLE_TARGETS-"nginx haproxy nginx-lua mediagate"}
SYSCALLS=${BENCH_SYSCALLS:-1}
SESSION_STORE=${BENCH_SESSION_STORE:-1}
STORE_SESSIONS=${BENCH_STORE_SESSIONS:-2000}
SYSCALL_DURATION=${BENCH_SYSCALL_DURATION:-5}
PROFILE=${BENCH_PROFILE:-1}
PROFILE_TARGETS=${BENCH_PROFILE_TARGETS-"nginx haproxy mediagate-floor mediagate"}
OUT_DIR=${BENCH_OUT:-$BENCH_DIR/results}
KEEP=${BENCH_KEEP:-0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
OTHER_MAX=${BENCH_OTHER_MAX:-10}
RETRIES=${BENCH_RETRIES:-2}
REPEAT=${BENCH_REPEAT:-1}
MEDIAGATE=${MEDIAGATE_BIN:-$ROOT/target/release/mediagate}
# Another mediagate config for experiments (same ports: 18084, admin 18090).
MEDIAGATE_CONFIG=${BENCH_MEDIAGATE_CONFIG:-$BENCH_DIR/mediagate.toml}
MEDIAGATE_B=${MEDIAGATE_B_BIN:-$MEDIAGATE}
MEDIAGATE_B_CONFIG=${BENCH_MEDIAGATE_B_CONFIG:-$MEDIAGATE_CONFIG}

# Private ports on loopback only.
HOST=127.0.0.1
PORT_UPSTREAM=18081
PORT_NGINX=18082
PORT_NGINX_LUA=18083
PORT_MEDIAGATE=18084
PORT_HAPROXY=18085
PORT_MEDIAGATE_ADMIN=18090
PORT_REDIS=18379
SID=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
LUA_MODULE=/usr/lib/nginx/modules/ngx_http_lua_module.so
NDK_MODULE=/usr/lib/nginx/modules/ndk_http_module.so

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
  printf '[bench] error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes we start, by name -> pid; cleanup ends exactly these, by pid.
declare -A PID=()
SCRATCH=""
POLICY_RC_CREATED=0

stop_pid() { # pid signal
  local pid=$1 sig=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_proc() { # name
  local name=$1 sig=TERM
  [ -n "${PID[$name]:-}" ] || return 0
  # mediagate: SIGINT exits at once (SIGTERM would drain for grace_period_seconds).
  # nginx: SIGTERM is its fast shutdown; the master ends its workers.
  # haproxy: SIGTERM is its hard stop.
  case $name in mediagate*) sig=INT ;; esac
  stop_pid "${PID[$name]}" "$sig"
  unset "PID[$name]"
}

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  for name in "${!PID[@]}"; do
    stop_proc "$name"
  done
  if [ "$POLICY_RC_CREATED" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  if [ -n "$SCRATCH" ] && [ -d "$SCRATCH" ]; then
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
      log "scratch directory kept: $SCRATCH"
    else
      rm -rf "$SCRATCH"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools: install what is missing with apt-get, never leaving the system nginx running.

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

install_tools() {
  local need=()
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  case " $TARGETS $IDLE_TARGETS $PROFILE_TARGETS " in
  *" haproxy "*) command -v haproxy >/dev/null 2>&1 || need+=(haproxy) ;;
  esac
  [ -f "$LUA_MODULE" ] || need+=(libnginx-mod-http-lua)
  pkg_installed lua-cjson || need+=(lua-cjson)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  if [ "$SESSION_STORE" = 1 ]; then
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  fi
  if { [ "$SYSCALLS" = 1 ] || [ "$PROFILE" = 1 ]; } && ! command -v perf >/dev/null 2>&1; then
    need+=(linux-perf)
  fi
  [ ${#need[@]} -eq 0 ] && return 0

  command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]}, and no apt-get to install them"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local nginx_was_running=0
  [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid 2>/dev/null)" 2>/dev/null && nginx_was_running=1
  # Keep the packages' maintainer scripts from starting the system nginx service.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  log "installing ${need[*]} (apt-get)"
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >"${SCRATCH:-/tmp}/apt.log" 2>&1; then
    # linux-perf is optional: retry without it.
    if [[ " ${need[*]} " == *" linux-perf "* ]]; then
      local p rest=()
      for p in "${need[@]}"; do [ "$p" = linux-perf ] || rest+=("$p"); done
      if [ ${#rest[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
          "${rest[@]}" >"${SCRATCH:-/tmp}/apt.log" 2>&1 ||
          die "apt-get install failed: see ${SCRATCH:-/tmp}/apt.log"
      fi
    else
      die "apt-get install failed: see ${SCRATCH:-/tmp}/apt.log"
    fi
  fi
  if [ "$POLICY_RC_CREATED" = 1 ]; then
    $sudo rm -f /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=0
  fi
  # Belt and braces: if the package started the system nginx anyway, stop it again.
  if [ "$nginx_was_running" = 0 ] && [ -f /run/nginx.pid ] &&
    kill -0 "$(cat /run/nginx.pid 2>/dev/null)" 2>/dev/null; then
    log "the nginx package started the system nginx; stopping it"
    $sudo nginx -s quit 2>/dev/null || $sudo kill -QUIT "$(cat /run/nginx.pid)" || true
  fi
}

check_tools() {
  command -v wrk >/dev/null 2>&1 || die "wrk not found (apt-get install wrk)"
  command -v nginx >/dev/null 2>&1 || die "nginx not found (apt-get install nginx-light)"
  if [ ! -f "$LUA_MODULE" ] || [ ! -f "$NDK_MODULE" ]; then
    die "nginx Lua module not found at $LUA_MODULE (apt-get install libnginx-mod-http-lua)"
  fi
  pkg_installed lua-cjson || die "lua-cjson not installed (apt-get install lua-cjson)"
  case " $TARGETS $IDLE_TARGETS $PROFILE_TARGETS " in
  *" haproxy "*) command -v haproxy >/dev/null 2>&1 || die "haproxy not found (apt-get install haproxy)" ;;
  esac
  command -v curl >/dev/null 2>&1 || die "curl not found"
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  if [ "$SYSCALLS" = 1 ]; then
    if ! command -v perf >/dev/null 2>&1 ||
      ! perf stat -e 'syscalls:sys_enter_write' -- true >/dev/null 2>&1; then
      log "perf cannot count syscall tracepoints here: skipping the syscall counts"
      SYSCALLS=0
    fi
  fi
  if [ "$PROFILE" = 1 ]; then
    if ! command -v perf >/dev/null 2>&1 ||
      ! perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
      log "perf record does not work here: skipping the CPU profiles"
      PROFILE=0
    fi
  fi
  case " $TARGETS $IDLE_TARGETS $PROFILE_TARGETS " in
  *" mediagate"*) ;;
  *) return 0 ;;
  esac
  if [ ! -x "$MEDIAGATE" ]; then
    log "building mediagate (cargo build --release --locked)"
    (cd "$ROOT" && cargo build --release --locked) || die "cargo build --release failed"
  fi
  [ -x "$MEDIAGATE" ] || die "mediagate binary not found at $MEDIAGATE"
  "$MEDIAGATE" check -c "$MEDIAGATE_CONFIG" >/dev/null ||
    die "mediagate check -c $MEDIAGATE_CONFIG failed"
  case " $TARGETS $PROFILE_TARGETS " in
  *" mediagate-b "*)
    [ -x "$MEDIAGATE_B" ] || die "MEDIAGATE_B_BIN: no binary at $MEDIAGATE_B"
    "$MEDIAGATE_B" check -c "$MEDIAGATE_B_CONFIG" >/dev/null ||
      die "$MEDIAGATE_B check -c $MEDIAGATE_B_CONFIG failed"
    ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# /proc helpers. CPU: utime + stime (fields 14, 15 of /proc/PID/stat; for a process they cover
# all its threads), in clock ticks. Memory: VmRSS / VmHWM of /proc/PID/status, in kB.

CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { # pid... -> sum of utime+stime
  local total=0 p t
  for p in "$@"; do
    # Drop "pid (comm) " first: comm may hold spaces. Field 14 is then the 12th.
    t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    total=$((total + t))
  done
  echo "$total"
}

mem_kb() { # field pid... -> sum of that field of /proc/PID/status
  local field=$1 total=0 p v
  shift
  for p in "$@"; do
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status")
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

busy_ticks() { # CPU ticks the whole machine spent busy (user nice system irq softirq)
  awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
}

upstream_accepts() { # connections the upstream accepted so far (this query's own included)
  curl -s --max-time 5 "http://$HOST:$PORT_UPSTREAM/_bench/stub_status" |
    awk 'NR == 3 {print $1}'
}

ctx_switches() { # pid... -> voluntary nonvoluntary context switches, summed over all threads
  local p
  for p in "$@"; do
    cat /proc/"$p"/task/*/status 2>/dev/null
  done | awk '$1 == "voluntary_ctxt_switches:" {v += $2} $1 == "nonvoluntary_ctxt_switches:" {n += $2}
              END {print v + 0, n + 0}'
}

reset_hwm() { # pid...: VmHWM back to the current RSS (Linux >= 4.0)
  local p
  for p in "$@"; do
    echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true
  done
}

children_of() { # pid -> its child pids
  local pid=$1 kids=""
  if [ -r "/proc/$pid/task/$pid/children" ]; then
    kids=$(cat "/proc/$pid/task/$pid/children")
  fi
  [ -n "$kids" ] || kids=$(pgrep -P "$pid" 2>/dev/null || true)
  # shellcheck disable=SC2086 # one line of pids
  echo $kids
}

wait_port() { # port seconds
  local port=$1 secs=${2:-10}
  for _ in $(seq 1 $((secs * 10))); do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Starting and stopping the servers. Each proxy gets a fresh process (and a fresh scratch
# directory) for every cell, so peak RSS and the idle test see only their own load.

declare -A PORT=([upstream]=$PORT_UPSTREAM [nginx]=$PORT_NGINX [nginx-lua]=$PORT_NGINX_LUA
  [haproxy]=$PORT_HAPROXY [mediagate]=$PORT_MEDIAGATE [mediagate-redis]=$PORT_MEDIAGATE
  [mediagate-floor]=$PORT_MEDIAGATE [mediagate-b]=$PORT_MEDIAGATE)
declare -A CONF=([upstream]=upstream.conf [nginx]=nginx-proxy.conf [nginx-lua]=nginx-lua.conf)
declare -A WORKERS=([upstream]=2 [nginx]=1 [nginx-lua]=1)
declare -A MEASURED=() # name -> the pids whose CPU and memory are measured

start_nginx() { # name
  local name=$1 dir=$SCRATCH/$1 pid kids
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$BENCH_DIR/${CONF[$name]}" "$dir/nginx.conf"
  [ "$name" = nginx-lua ] && cp "$BENCH_DIR/validate.lua" "$dir/"
  nginx -p "$dir/" -c nginx.conf -e "$dir/error.log" -g 'daemon off;' \
    </dev/null >"$dir/stdout.log" 2>&1 &
  pid=$!
  PID[$name]=$pid
  wait_port "${PORT[$name]}" 10 || die "$name did not listen on ${PORT[$name]}: $(tail -5 "$dir/error.log" "$dir/stdout.log" 2>/dev/null)"
  for _ in $(seq 1 50); do
    kids=$(children_of "$pid")
    [ "$(wc -w <<<"$kids")" -ge "${WORKERS[$name]}" ] && break
    sleep 0.1
  done
  [ "$(wc -w <<<"$kids")" -ge "${WORKERS[$name]}" ] || die "$name: workers did not start"
  # The workers do the work; the master only waits. Measured: the workers.
  MEASURED[$name]=$kids
}

start_mediagate() { # [name config binary]
  local name=${1:-mediagate} config=${2:-$MEDIAGATE_CONFIG} bin=${3:-$MEDIAGATE} dir pid
  dir=$SCRATCH/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  # The access log (stdout) goes to a file, like nginx's access_log.
  "$bin" run -c "$config" </dev/null >"$dir/access.log" 2>"$dir/error.log" &
  pid=$!
  PID[$name]=$pid
  wait_port "$PORT_MEDIAGATE" 15 || die "mediagate did not listen on $PORT_MEDIAGATE: $(tail -5 "$dir/error.log")"
  wait_port "$PORT_MEDIAGATE_ADMIN" 5 || die "mediagate admin did not listen on $PORT_MEDIAGATE_ADMIN"
  MEASURED[$name]=$pid
}

# mediagate with the Redis session store: the same config, a redis-server of its own (no
# persistence) started once for the run.
start_mediagate_redis() {
  if [ -z "${PID[redis]:-}" ]; then
    redis-server --bind "$HOST" --port "$PORT_REDIS" --save '' --appendonly no \
      --dir "$SCRATCH" </dev/null >"$SCRATCH/redis.log" 2>&1 &
    PID[redis]=$!
    wait_port "$PORT_REDIS" 10 || die "redis-server did not listen on $PORT_REDIS: $(tail -5 "$SCRATCH/redis.log")"
  fi
  local config=$SCRATCH/mediagate-redis.toml
  { cat "$MEDIAGATE_CONFIG"; printf '\n[sessions]\nstore = "redis"\nredis_url = "redis://%s:%s/0"\n' "$HOST" "$PORT_REDIS"; } >"$config"
  "$MEDIAGATE" check -c "$config" >/dev/null || die "mediagate check -c $config failed"
  start_mediagate mediagate-redis "$config"
}

# HAProxy in the foreground (-db), one process, one thread: measured is that process.
start_haproxy() {
  local dir=$SCRATCH/haproxy
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$BENCH_DIR/haproxy.cfg" "$dir/haproxy.cfg"
  haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy -c -f bench/haproxy.cfg failed"
  (cd "$dir" && exec haproxy -f haproxy.cfg -db) </dev/null >"$dir/stdout.log" 2>&1 &
  PID[haproxy]=$!
  wait_port "$PORT_HAPROXY" 10 || die "haproxy did not listen on $PORT_HAPROXY: $(tail -5 "$dir/stdout.log")"
  MEASURED[haproxy]=${PID[haproxy]}
}

# mediagate with [bench] pass_through: the same config otherwise.
start_mediagate_floor() {
  local config=$SCRATCH/mediagate-floor.toml
  { cat "$MEDIAGATE_CONFIG"; printf '\n[bench]\npass_through = true\n'; } >"$config"
  "$MEDIAGATE" check -c "$config" >/dev/null || die "mediagate check -c $config failed"
  start_mediagate mediagate-floor "$config"
}

start_target() { # name
  case $1 in
  upstream) ;; # always running
  haproxy) start_haproxy ;;
  mediagate-floor) start_mediagate_floor ;;
  mediagate) start_mediagate ;;
  mediagate-b) start_mediagate mediagate-b "$MEDIAGATE_B_CONFIG" "$MEDIAGATE_B" ;;
  mediagate-redis) start_mediagate_redis ;;
  *) start_nginx "$1" ;;
  esac
}

stop_target() { # name
  [ "$1" = upstream ] || stop_proc "$1"
  return 0
}

# ---------------------------------------------------------------------------------------------
# Correctness before load: every target must answer like the backend.

body_file() { # body -> fixture file
  case $1 in
  sessionStart) echo "$FIXTURES/session-start.json" ;;
  ping | sessionPing) echo "$FIXTURES/ping.json" ;;
  *) die "unknown body $1" ;;
  esac
}

body_path() { # body -> request path
  case $1 in
  sessionStart) echo /api/v1/sessions ;;
  ping | sessionPing) echo "/api/v1/sessions/$SID/events" ;;
  esac
}

post() { # port path file -> prints "status<TAB>location<TAB>x-bench-request-length"
  local hdr
  hdr=$(curl -s -o /dev/null -D - --max-time 5 -X POST -H 'Content-Type: application/json' \
    --data-binary "@$3" "http://$HOST:$1$2" | tr -d '\r')
  awk 'NR==1{s=$2} {h=tolower($1)} h=="location:"{l=$2} h=="x-bench-request-length:"{n=$2}
       END{printf "%s\t%s\t%s\n", s, l, n}' <<<"$hdr"
}

verify_target() { # name
  local name=$1 port=${PORT[$1]} out status location length size bad
  out=$(post "$port" /api/v1/sessions "$FIXTURES/session-start.json")
  IFS=$'\t' read -r status location length <<<"$out"
  [ "$status" = 201 ] || die "$name: sessionStart answered '$status', expected 201"
  [ "$location" = "/api/v1/sessions/$SID" ] ||
    die "$name: sessionStart Location '$location', expected /api/v1/sessions/$SID"
  size=$(wc -c <"$FIXTURES/session-start.json")
  if [ "$name" = nginx-lua ] || [ "${name%-redis}" = mediagate ] || [ "$name" = mediagate-b ]; then
    # The enriched body (media.streamType added) must be what reached the upstream.
    if [ -n "$length" ] && [ "$length" -le "$size" ]; then
      die "$name: the upstream received $length bytes, not an enriched body (> $size)"
    fi
  fi
  out=$(post "$port" "/api/v1/sessions/$SID/events" "$FIXTURES/ping.json")
  [ "${out%%$'\t'*}" = 204 ] || die "$name: ping answered '${out%%$'\t'*}', expected 204"
  if [ "$name" = nginx-lua ] || [ "${name%-redis}" = mediagate ] || [ "$name" = mediagate-b ]; then
    out=$(post "$port" /api/v1/sessions "$FIXTURES/invalid/x01-sessions.json")
    [ "${out%%$'\t'*}" = 400 ] || die "$name: invalid sessionStart answered '${out%%$'\t'*}', expected 400"
    bad=$SCRATCH/bad-event.json
    printf '%s' '{"playerTime":{"playhead":"12.5","ts":1509045336653},"eventType":"ping"}' >"$bad"
    out=$(post "$port" "/api/v1/sessions/$SID/events" "$bad")
    [ "${out%%$'\t'*}" = 400 ] || die "$name: invalid ping answered '${out%%$'\t'*}', expected 400"
  fi
}

# ---------------------------------------------------------------------------------------------
# One cell: target x body x connections.

# wrk's own CPU (user+sys seconds) from the `times` of a subshell whose only child is wrk.
times_seconds() { awk 'NR==2 { split($1,u,/[ms]/); split($2,s,/[ms]/); print u[1]*60+u[2]+s[1]*60+s[2] }' "$1"; }

run_wrk() { # outfile conns seconds url bodyfile [--latency]
  local out=$1 conns=$2 secs=$3 url=$4 body=$5
  shift 5
  (
    # WRK_SCRIPT (wrk-sessions.lua for the session store cells, with BENCH_PATHS).
    BENCH_BODY=$body wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s "$@" \
      -s "$BENCH_DIR/${WRK_SCRIPT:-wrk-post.lua}" "$url" >"$out" 2>&1 || true
    times >"$out.times"
  )
  grep -q '^BENCH ' "$out" || die "wrk failed against $url: $(head -5 "$out")"
}

bench_field() { # file key -> value from the BENCH line
  sed -n 's/^BENCH //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# Waits (at most QUIET_WAIT seconds) until the machine is quiet: a 1 s window in which the whole
# machine is busy less than 15% of one core (our servers are idle between cells).
wait_quiet() {
  local waited=0 q0 q1
  while :; do
    q0=$(busy_ticks)
    sleep 1
    q1=$(busy_ticks)
    [ $(((q1 - q0) * 100 / CLK_TCK)) -lt 15 ] && return 0
    waited=$((waited + 1))
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "the machine is still busy ($(((q1 - q0) * 100 / CLK_TCK))% of a core) after ${QUIET_WAIT}s: measuring anyway"
      return 0
    fi
  done
}

run_cell() { # target body conns
  local target=$1 body=$2 conns=$3 file path url out pids ups c0 c1 u0 u1 hwm wrk_s requests
  local b0 b1 a0 a1 attempt other
  file=$(body_file "$body")
  path=$(body_path "$body")
  url="http://$HOST:${PORT[$target]}$path"
  out=$SCRATCH/wrk-$target-$body-$conns.txt

  for attempt in $(seq 1 $((RETRIES + 1))); do
    wait_quiet
    start_target "$target"
    verify_target "$target"
    if [ "$body" = sessionPing ]; then
      # Pings spread over sessions the gateway saw start (each one judged, and with Redis one
      # GET and one compare-and-set script per call).
      python3 "$BENCH_DIR/start_sessions.py" --host "$HOST" --port "${PORT[$target]}" \
        --n "$STORE_SESSIONS" --body "$FIXTURES/session-start.json" --out "$SCRATCH/paths.txt" ||
        die "$target: could not start the sessions"
      export WRK_SCRIPT=wrk-sessions.lua BENCH_PATHS=$SCRATCH/paths.txt
    else
      unset WRK_SCRIPT BENCH_PATHS
    fi
    pids=${MEASURED[$target]}
    ups=${MEASURED[upstream]}
    log "$target $body c=$conns: warm-up ${WARMUP}s, measure ${DURATION}s"
    [ "$WARMUP" -gt 0 ] && run_wrk "$out.warmup" "$conns" "$WARMUP" "$url" "$file"
    sleep 0.5
    # shellcheck disable=SC2086
    reset_hwm $pids
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $pids)
    # shellcheck disable=SC2086
    u0=$(cpu_ticks $ups)
    a0=$(upstream_accepts)
    b0=$(busy_ticks)
    run_wrk "$out" "$conns" "$DURATION" "$url" "$file" --latency
    b1=$(busy_ticks)
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    # shellcheck disable=SC2086
    u1=$(cpu_ticks $ups)
    a1=$(upstream_accepts)
    # shellcheck disable=SC2086
    hwm=$(mem_kb VmHWM $pids)
    wrk_s=$(times_seconds "$out.times")
    requests=$(bench_field "$out" requests)
    [ "${requests:-0}" -gt 0 ] || die "$target $body c=$conns: no request completed"
    if [ "$body" = sessionPing ]; then
      curl -s --max-time 5 "http://$HOST:$PORT_MEDIAGATE_ADMIN/metrics" |
        grep -E '^mediagate_session_(calls_total|store_errors_total|store_duration_seconds_(sum|count))' \
          >"$SCRATCH/store-$target.metrics" || true
    fi
    unset WRK_SCRIPT BENCH_PATHS
    stop_target "$target"
    # The access logs grow by ~100 MB per cell: drop them.
    rm -f "$SCRATCH/$target/access.log"
    # Busy CPU of the machine not ours (% of one core): another load skewed the cell.
    other=$(awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v u=$((u1 - u0)) -v w="$wrk_s" \
      -v t="$CLK_TCK" -v d="$(bench_field "$out" duration_us)" -v up="$([ "$target" = upstream ] && echo 1 || echo 0)" \
      'BEGIN { o = b - c - (up ? 0 : u) - w * t; printf "%d", o / t / (d / 1e6) * 100 }')
    if [ "$other" -le "$OTHER_MAX" ] || [ "$attempt" -gt "$RETRIES" ]; then
      break
    fi
    log "$target $body c=$conns: other load on the machine (${other}% of a core): measuring again"
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$target" "$body" "$conns" "$requests" "$(bench_field "$out" duration_us)" \
    "$(bench_field "$out" p50_us)" "$(bench_field "$out" p99_us)" \
    "$((c1 - c0))" "$((u1 - u0))" "$CLK_TCK" "$hwm" "$wrk_s" \
    "$(bench_field "$out" err_connect)" "$(bench_field "$out" err_read)" \
    "$(bench_field "$out" err_status)" "$(bench_field "$out" err_timeout)" \
    "$((b1 - b0))" "$((a1 - a0 - 1))" "$attempt" >>"$SCRATCH/cells.tsv"
}

# ---------------------------------------------------------------------------------------------
# Idle keep-alive connections: N clients that each sent one ping, then hold the connection.

idle_test() { # target
  local target=$1 pids before after slab_before slab_after ready helper status rc=0
  start_target "$target"
  verify_target "$target"
  pids=${MEASURED[$target]}
  sleep 0.5
  # shellcheck disable=SC2086
  before=$(mem_kb VmRSS $pids)
  slab_before=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
  ready=$SCRATCH/idle-$target.ready
  rm -f "$ready"
  log "$target: opening $IDLE_CONNS idle keep-alive connections"
  python3 "$BENCH_DIR/idle_conns.py" --host "$HOST" --port "${PORT[$target]}" --n "$IDLE_CONNS" \
    --path "/api/v1/sessions/$SID/events" --body "$FIXTURES/ping.json" --ready-file "$ready" \
    --hold 120 >"$SCRATCH/idle-$target.log" 2>&1 &
  helper=$!
  PID[idle-helper]=$helper
  for _ in $(seq 1 1200); do
    [ -f "$ready" ] && break
    kill -0 "$helper" 2>/dev/null || break
    sleep 0.1
  done
  [ -f "$ready" ] || die "$target: the idle-connection helper did not get ready: $(cat "$SCRATCH/idle-$target.log")"
  sleep 1
  # shellcheck disable=SC2086
  after=$(mem_kb VmRSS $pids)
  slab_after=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
  status=$(cat "$ready")
  stop_proc idle-helper
  case $status in
  "ok=$IDLE_CONNS failed=0"*) ;;
  *) die "$target: not every idle connection was opened and answered: $status" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$IDLE_CONNS" "$before" "$after" \
    "$slab_before" "$slab_after" >>"$SCRATCH/idle.tsv"
  stop_target "$target"
  return $rc
}

# ---------------------------------------------------------------------------------------------
# Syscalls per request: perf stat on every syscall entry tracepoint of the proxy's processes
# while wrk runs (50 connections). perf slows the proxy; only the counts are used.

# The set-up the perf runs share: a fresh target, checked, then warmed up. Sets RUN_FILE,
# RUN_URL, RUN_PIDS (the measured pids) and RUN_PID_LIST (the same, comma-separated, for perf -p).
start_perf_target() { # target body what warmup-outfile
  local target=$1 body=$2
  RUN_FILE=$(body_file "$body")
  RUN_URL="http://$HOST:${PORT[$target]}$(body_path "$body")"
  start_target "$target"
  verify_target "$target"
  RUN_PIDS=${MEASURED[$target]}
  RUN_PID_LIST=$(tr ' ' ',' <<<"$RUN_PIDS" | sed 's/,$//')
  log "$target $body: $3"
  if [ "$WARMUP" -gt 0 ]; then
    run_wrk "$4" 50 "$WARMUP" "$RUN_URL" "$RUN_FILE"
  fi
}

syscall_run() { # target body
  local target=$1 body=$2 out perf_out perf_pid v0 n0 v1 n1
  out=$SCRATCH/perf-$target-$body.wrk
  perf_out=$SCRATCH/perf-$target-$body.csv
  start_perf_target "$target" "$body" "syscall counts (perf stat, ${SYSCALL_DURATION}s)" "$out.warmup"
  # perf counts the pids while its own workload (a sleep) runs: a background job of a script
  # ignores SIGINT, so perf could not be stopped with it.
  perf stat -x, -e 'syscalls:sys_enter_*' -p "$RUN_PID_LIST" \
    -o "$perf_out" -- sleep $((SYSCALL_DURATION + 2)) >/dev/null 2>&1 &
  perf_pid=$!
  PID[perf]=$perf_pid
  sleep 1 # perf opens a few hundred tracepoints per thread before it counts
  # shellcheck disable=SC2086
  read -r v0 n0 <<<"$(ctx_switches $RUN_PIDS)"
  run_wrk "$out" 50 "$SYSCALL_DURATION" "$RUN_URL" "$RUN_FILE"
  # shellcheck disable=SC2086
  read -r v1 n1 <<<"$(ctx_switches $RUN_PIDS)"
  wait "$perf_pid" || true
  unset "PID[perf]"
  grep -q 'sys_enter_' "$perf_out" || die "perf stat counted nothing: $(head -5 "$perf_out")"
  # counts: name<TAB>count, per run, with the request count
  awk -F, -v t="$target" -v b="$body" -v n="$(bench_field "$out" requests)" \
    '$1 ~ /^[0-9]+$/ && $1 > 0 { sub(/^syscalls:sys_enter_/, "", $3); printf "%s\t%s\t%s\t%s\t%s\n", t, b, n, $3, $1 }' \
    "$perf_out" >>"$SCRATCH/syscalls.tsv"
  # Context switches of the proxy's threads during the same run, as two pseudo-syscalls.
  printf '%s\t%s\t%s\t%s\t%s\n' "$target" "$body" "$(bench_field "$out" requests)" \
    "(context switches, voluntary)" "$((v1 - v0))" \
    "$target" "$body" "$(bench_field "$out" requests)" \
    "(context switches, involuntary)" "$((n1 - n0))" >>"$SCRATCH/syscalls.tsv"
  stop_target "$target"
}

# ---------------------------------------------------------------------------------------------
# Where the CPU goes: perf record (cpu-clock samples, no call graphs: self time only) of the
# proxy's processes during a ping / sessionStart run at 50 connections.

profile_run() { # target body
  local target=$1 body=$2 out data
  out=$SCRATCH/profile-$target-$body.wrk
  data=$SCRATCH/profile-$target-$body.data
  start_perf_target "$target" "$body" "CPU profile (perf record, ${SYSCALL_DURATION}s)" "$out.warmup"
  perf record -e cpu-clock -F 1999 -p "$RUN_PID_LIST" -o "$data" \
    -- sleep $((SYSCALL_DURATION + 1)) >/dev/null 2>&1 &
  PID[perf]=$!
  sleep 0.5
  run_wrk "$out" 50 "$SYSCALL_DURATION" "$RUN_URL" "$RUN_FILE"
  wait "${PID[perf]}" || true
  unset "PID[perf]"
  perf report -i "$data" --no-children --sort dso,sym --stdio -q -g none --percent-limit 0 \
    2>/dev/null >"$SCRATCH/profile-$target-$body.txt" || true
  rm -f "$data"
  stop_target "$target"
}

# ---------------------------------------------------------------------------------------------

main() {
  SCRATCH=$(mktemp -d /tmp/mediagate-bench.XXXXXX)
  chmod 755 "$SCRATCH" # nginx workers run as nobody when started by root
  install_tools
  check_tools

  # File descriptors: 10 000 idle clients (helper side and proxy side) plus a margin.
  local hard want
  hard=$(ulimit -Hn)
  want=65536
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
  ulimit -n "$want" || die "cannot raise ulimit -n to $want"
  if [ "$IDLE_CONNS" -gt 0 ] && [ "$want" -lt $((IDLE_CONNS + 200)) ]; then
    die "open-file limit $want is too low for $IDLE_CONNS idle connections (lower BENCH_IDLE_CONNS or raise the hard limit)"
  fi

  local port
  for port in $PORT_UPSTREAM $PORT_NGINX $PORT_NGINX_LUA $PORT_HAPROXY $PORT_MEDIAGATE $PORT_MEDIAGATE_ADMIN $PORT_REDIS; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
      die "port $port is already in use on $HOST (another bench running?)"
    fi
  done

  local rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    rev="$rev (+ uncommitted changes in src/)"
  fi
  {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    printf 'memory\t%s\n' "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'loadavg\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'lua\tlibnginx-mod-http-lua %s, lua-cjson %s\n' \
      "$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null)" \
      "$(dpkg-query -W -f='${Version}' lua-cjson 2>/dev/null)"
    printf 'haproxy\t%s\n' "$(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    printf 'redis\t%s\n' "$(redis-server --version 2>/dev/null | awk '{print $3}')"
    printf 'mediagate\t%s\n' "$rev"
    printf 'binary\t%s, built %s\n' "${MEDIAGATE#"$ROOT"/}" \
      "$(date -u -r "$MEDIAGATE" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo '?')"
    printf 'binary_name\t%s\n' "$(basename "$MEDIAGATE")"
    printf 'config\t%s\n' "${MEDIAGATE_CONFIG#"$ROOT"/}"
    case " $TARGETS $PROFILE_TARGETS " in
    *" mediagate-b "*)
      printf 'b\t%s, built %s, config %s\n' "${MEDIAGATE_B#"$ROOT"/}" \
        "$(date -u -r "$MEDIAGATE_B" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo '?')" \
        "${MEDIAGATE_B_CONFIG#"$ROOT"/}"
      ;;
    esac
    printf 'warmup\t%s\n' "$WARMUP"
    printf 'duration\t%s\n' "$DURATION"
    printf 'ulimit\t%s\n' "$want"
  } >"$SCRATCH/meta.tsv"
  : >"$SCRATCH/cells.tsv"
  : >"$SCRATCH/idle.tsv"
  : >"$SCRATCH/syscalls.tsv"

  log "scratch: $SCRATCH"
  local q0 q1
  q0=$(busy_ticks)
  sleep 1
  q1=$(busy_ticks)
  if [ $(((q1 - q0) * 100 / CLK_TCK)) -gt 20 ]; then
    log "warning: the machine is busy ($(((q1 - q0) * 100 / CLK_TCK))% of a core before the run): the numbers will be skewed"
  fi
  start_nginx upstream
  verify_target upstream

  local target body conns rep
  for rep in $(seq 1 "$REPEAT"); do
    [ "$REPEAT" -gt 1 ] && log "round $rep of $REPEAT"
    for body in $BODIES; do
      for conns in $CONNS; do
        for target in $TARGETS; do
          run_cell "$target" "$body" "$conns"
        done
      done
    done
  done

  if [ "$IDLE_CONNS" -gt 0 ]; then
    for target in $IDLE_TARGETS; do
      idle_test "$target"
    done
  fi

  if [ "$SYSCALLS" = 1 ]; then
    for body in $BODIES; do
      for target in $TARGETS; do
        [ "$target" = upstream ] && continue
        syscall_run "$target" "$body"
      done
    done
  fi

  if [ "$SESSION_STORE" = 1 ]; then
    for target in mediagate mediagate-redis; do
      run_cell "$target" sessionPing 50
    done
    stop_proc redis
  fi

  if [ "$PROFILE" = 1 ]; then
    for body in $BODIES; do
      for target in $PROFILE_TARGETS; do
        profile_run "$target" "$body"
      done
    done
  fi

  stop_proc upstream

  mkdir -p "$OUT_DIR"
  local stamp
  stamp=$(date -u '+%Y%m%d-%H%M%S')
  python3 "$BENCH_DIR/report.py" "$SCRATCH" >"$OUT_DIR/$stamp.md"
  cp "$OUT_DIR/$stamp.md" "$OUT_DIR/latest.md"
  cat "$OUT_DIR/latest.md"
  log "written: ${OUT_DIR#"$ROOT"/}/latest.md and ${OUT_DIR#"$ROOT"/}/$stamp.md"
}

main "$@"
