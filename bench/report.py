#!/usr/bin/env python3
"""Turns the raw outputs of bench/run.sh (in its scratch directory) into the markdown report.

Usage: report.py SCRATCH_DIR > report.md

Reads meta.tsv, cells.tsv, idle.tsv and syscalls.tsv (formats: see run.sh, which writes them).
"""
import os
import sys

NAMES = {
    "upstream": "upstream (direct)",
    "nginx": "nginx proxy",
    "nginx-lua": "nginx + Lua",
    "haproxy": "HAProxy",
    "mediagate-floor": "mediagate floor (pass-through)",
    "mediagate": "mediagate",
    "mediagate-b": "mediagate B",
    "mediagate-redis": "mediagate, Redis store",
}
ORDER = ["upstream", "nginx", "haproxy", "nginx-lua", "mediagate-floor", "mediagate",
         "mediagate-b", "mediagate-redis"]
BODY_ORDER = ["sessionStart", "ping", "sessionPing"]

# Issue 15's goal, at 50 connections, against nginx and HAProxy as plain proxies (the stretch:
# 0.8x nginx's CPU).
GOAL_CPU = 1.0
STRETCH_CPU = 0.8
GOAL_RPS = 1.0
GOAL_P99 = 1.0
GOAL_IDLE_KB = 2.5


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def order_key(target):
    return ORDER.index(target) if target in ORDER else len(ORDER)


def body_key(body):
    return BODY_ORDER.index(body) if body in BODY_ORDER else len(BODY_ORDER)


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def ratio(a, b):
    return a / b if b else float("nan")


def main():
    scratch = sys.argv[1]
    meta = dict((r[0], r[1]) for r in rows(os.path.join(scratch, "meta.tsv")))
    global BINARY
    BINARY = meta.get("binary_name", BINARY)
    out = []
    w = out.append

    w("# mediagate load benchmark")
    w("")
    w(f"Run {meta.get('date', '?')} by `make bench` (bench/run.sh).")
    w("")
    w("| machine | |")
    w("| --- | --- |")
    for key, label in [
        ("nproc", "cores (nproc)"),
        ("cpu", "CPU"),
        ("memory", "memory"),
        ("kernel", "kernel"),
        ("loadavg", "load average at start"),
        ("nginx", "nginx"),
        ("haproxy", "HAProxy"),
        ("lua", "Lua"),
        ("wrk", "wrk"),
        ("mediagate", "mediagate (git)"),
        ("binary", "mediagate binary"),
        ("b", "mediagate B (binary, config)"),
    ]:
        if key == "b" and key not in meta:
            continue
        w(f"| {label} | {meta.get(key, '?')} |")
    w("")
    w(
        f"Set-up: loopback only; `wrk -t1 --latency`, {meta.get('warmup', '?')} s warm-up then "
        f"{meta.get('duration', '?')} s measured per cell; every proxy is a fresh process for each "
        "cell; no CPU pinning (wrk, the proxy and the upstream share the cores). Upstream: nginx, "
        "2 workers, `return 201/204`, no access log. nginx proxies: 1 worker, keepalive 64 to the "
        "upstream, access log to a file (buffer=64k flush=100ms). HAProxy: bench/haproxy.cfg, 1 "
        "thread, default `http-reuse safe`, httplog lines into an in-memory ring. mediagate: "
        f"{meta.get('config', 'bench/mediagate.toml')} (bench/mediagate.toml: shipped defaults, 2 "
        "threads, validation enforce, one enrichment param, access log to a file, metrics and the "
        "session tracker (memory store) on); mediagate floor: the same with `[bench] "
        "pass_through = true` (no validation, enrichment, metrics, log or tracking). "
        "Bodies: tests/fixtures/session-start.json (624 B) to /api/v1/sessions, "
        "tests/fixtures/ping.json (70 B) to /api/v1/sessions/{sid}/events. "
        f"ulimit -n {meta.get('ulimit', '?')}."
    )
    w("")

    runs = {}
    for r in rows(os.path.join(scratch, "cells.tsv")):
        (target, body, conns, requests, duration_us, p50, p99, ticks, up_ticks, clk, hwm,
         wrk_s, e_conn, e_read, e_status, e_timeout, busy, up_conns, attempts) = r
        requests = int(requests)
        secs = int(duration_us) / 1e6
        clk = int(clk)
        runs.setdefault((target, body, int(conns)), []).append({
            "rps": requests / secs,
            "p50": int(p50) / 1000.0,
            "p99": int(p99) / 1000.0,
            "cpu_us": int(ticks) * 1e6 / clk / requests,
            "cpu_pct": int(ticks) / clk / secs * 100,
            "up_us": int(up_ticks) * 1e6 / clk / requests,
            "up_pct": int(up_ticks) / clk / secs * 100,
            "hwm_mb": int(hwm) / 1024.0,
            "wrk_pct": float(wrk_s) / secs * 100,
            "errors": int(e_conn) + int(e_read) + int(e_status) + int(e_timeout),
            "status_errors": int(e_status),
            "requests": requests,
            "up_conns": int(up_conns),
            "attempts": int(attempts),
            # Machine-wide busy CPU not spent by the proxy, the upstream or wrk: other load
            # on the machine (and kernel threads), which skews the cell when it is large.
            "other_pct": (int(busy) - int(ticks) - (0 if target == "upstream" else int(up_ticks))
                          - float(wrk_s) * clk) / clk / secs * 100,
        })
    # With BENCH_REPEAT > 1 a cell was measured several times: keep the median of each number,
    # and the range of CPU per request.
    cells = {}
    rounds = max((len(v) for v in runs.values()), default=1)
    for key, measured in runs.items():
        c = {name: median([m[name] for m in measured]) for name in measured[0]}
        c["cpu_min"] = min(m["cpu_us"] for m in measured)
        c["cpu_max"] = max(m["cpu_us"] for m in measured)
        c["n"] = len(measured)
        cells[key] = c

    if cells:
        w("## Results")
        w("")
        w(
            "CPU-µs/req: user+system CPU of the proxy's processes (nginx: its worker; mediagate: "
            "the process, all threads) during the measured run, from /proc/PID/stat, divided by "
            "the requests wrk completed. CPU %: of one core. Peak RSS: VmHWM of the same processes "
            "(nginx: the worker only, the master adds a constant ~1–4 MB). For the upstream row "
            "the measured processes are the upstream's two workers. Upstream: the upstream's CPU "
            "per request and load (of one core, it has two workers) in the same run. errors: "
            "wrk's connect/read/timeout errors and non-2xx answers. up conns: connections the "
            "upstream accepted during the measured run (from its stub_status; for the upstream "
            "row, wrk's). other CPU %: busy CPU of the whole machine (/proc/stat) not spent by the "
            "proxy, the upstream or wrk — other load that skews the cell when it is more than a "
            "few % (a cell above 10% is measured again, up to twice: \"try N\" marks the "
            "measurement kept)."
        )
        w("")
        if rounds > 1:
            w(f"Each cell was measured {rounds} times (BENCH_REPEAT); every number is the median "
              "of its measurements, and CPU-µs/req shows their range in parentheses.")
            w("")
        noisy = [k for k, c in cells.items() if c["other_pct"] > 10]
        if noisy:
            w(
                f"**Warning: {len(noisy)} of {len(cells)} cells ran with other load on the machine "
                "(other CPU % above 10): their numbers are skewed. Rerun on a quiet machine.**"
            )
            w("")
        w("| target | body | conns | req/s | p50 ms | p99 ms | CPU-µs/req | CPU % | peak RSS MB "
          "| upstream CPU-µs/req (CPU %) | up conns | wrk CPU % | other CPU % | errors |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: |")
        for (target, body, conns) in sorted(
                cells, key=lambda k: (body_key(k[1]), k[2], order_key(k[0]))):
            c = cells[(target, body, conns)]
            up = "(same)" if target == "upstream" else f"{c['up_us']:.1f} ({c['up_pct']:.0f})"
            cpu = f"{c['cpu_us']:.1f}"
            if c["n"] > 1:
                cpu += f" ({c['cpu_min']:.1f}–{c['cpu_max']:.1f})"
            w(
                f"| {NAMES.get(target, target)} | {body} | {conns} | {c['rps']:,.0f} | "
                f"{c['p50']:.2f} | {c['p99']:.2f} | {cpu} | {c['cpu_pct']:.0f} | "
                f"{c['hwm_mb']:.1f} | {up} | {c['up_conns']:,.0f} | {c['wrk_pct']:.0f} | "
                f"{c['other_pct']:.0f}{'' if c['attempts'] == 1 else ' (try ' + str(int(c['attempts'])) + ')'} "
                f"| {c['errors']:.0f} |"
            )
        w("")

        for base in ("nginx", "haproxy"):
            if not any(k[0] == base for k in cells):
                continue
            w(f"## Ratios against {NAMES[base]}")
            w("")
            w(f"Each value is target ÷ {NAMES[base]} in the same run, same body, same "
              "connections. CPU/req and p99: lower is better; req/s: higher is better.")
            w("")
            w("| body | conns | target | CPU/req | req/s | p99 |")
            w("| --- | ---: | --- | ---: | ---: | ---: |")
            for (target, body, conns) in sorted(
                    cells, key=lambda k: (body_key(k[1]), k[2], order_key(k[0]))):
                if target == base or (base, body, conns) not in cells:
                    continue
                c = cells[(target, body, conns)]
                n = cells[(base, body, conns)]
                w(
                    f"| {body} | {conns} | {NAMES.get(target, target)} | "
                    f"{ratio(c['cpu_us'], n['cpu_us']):.2f}× | {ratio(c['rps'], n['rps']):.2f}× | "
                    f"{ratio(c['p99'], n['p99']):.2f}× |"
                )
            w("")
        floor_keys = [k for k in cells if k[0] == "mediagate-floor" and ("mediagate",) + k[1:] in cells]
        if floor_keys:
            w("## The floor: framework against work")
            w("")
            w("The floor is mediagate with `[bench] pass_through` (runtime, threads, sockets, "
              "HTTP framing, the upstream pool, Location); the work is everything else "
              "(validation, enrichment, metrics, access log, session tracker): mediagate's CPU "
              "per request less the floor's, in the same run.")
            w("")
            w("| body | conns | floor CPU-µs/req | work CPU-µs/req | floor ÷ nginx | floor ÷ HAProxy |")
            w("| --- | ---: | ---: | ---: | ---: | ---: |")
            for (_t, body, conns) in sorted(floor_keys, key=lambda k: (body_key(k[1]), k[2])):
                f = cells[("mediagate-floor", body, conns)]
                m = cells[("mediagate", body, conns)]
                vs = []
                for base in ("nginx", "haproxy"):
                    b = cells.get((base, body, conns))
                    vs.append(f"{ratio(f['cpu_us'], b['cpu_us']):.2f}×" if b else "")
                w(f"| {body} | {conns} | {f['cpu_us']:.1f} | {m['cpu_us'] - f['cpu_us']:.1f} | "
                  f"{vs[0]} | {vs[1]} |")
            w("")
        if any(k[0] == "mediagate" and k[0] != "nginx-lua" for k in cells) and any(
                k[0] == "nginx-lua" for k in cells):
            w("mediagate ÷ nginx + Lua (the peer doing the same job):")
            w("")
            w("| body | conns | CPU/req | req/s | p99 |")
            w("| --- | ---: | ---: | ---: | ---: |")
            for (target, body, conns) in sorted(cells, key=lambda k: (body_key(k[1]), k[2])):
                if target != "mediagate" or ("nginx-lua", body, conns) not in cells:
                    continue
                c = cells[(target, body, conns)]
                n = cells[("nginx-lua", body, conns)]
                w(
                    f"| {body} | {conns} | {ratio(c['cpu_us'], n['cpu_us']):.2f}× | "
                    f"{ratio(c['rps'], n['rps']):.2f}× | {ratio(c['p99'], n['p99']):.2f}× |"
                )
            w("")

    store_m = cells.get(("mediagate", "sessionPing", 50))
    store_r = cells.get(("mediagate-redis", "sessionPing", 50))
    if store_m and store_r:
        w("## Session store: memory against Redis (50 connections)")
        w("")
        w(
            "Pings spread over sessions the gateway saw start (each call judged: with the memory "
            "store a look-up in the process, with Redis one GET before forwarding and one "
            "compare-and-set script after the answer, on a redis-server on loopback). The "
            "difference is the latency the Redis store adds per call, in the same run."
        )
        w("")
        w("| store | req/s | p50 ms | p99 ms | CPU-µs/req | errors |")
        w("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, c in (("memory", store_m), ("redis", store_r)):
            w(f"| {name} | {c['rps']:,.0f} | {c['p50']:.3f} | {c['p99']:.3f} | "
              f"{c['cpu_us']:.1f} | {c['errors']:.0f} |")
        w("")
        w(f"Redis adds **{(store_r['p50'] - store_m['p50']) * 1000:.0f} µs at p50** and "
          f"**{(store_r['p99'] - store_m['p99']) * 1000:.0f} µs at p99** per call.")
        for target in ("mediagate", "mediagate-redis"):
            path = os.path.join(scratch, f"store-{target}.metrics")
            if os.path.exists(path):
                with open(path) as f:
                    lines = [l.strip() for l in f if l.strip()]
                w("")
                w(f"{NAMES[target]}, its session series after the cell:")
                w("")
                w("```")
                w("\n".join(lines))
                w("```")
        w("")

    idle = rows(os.path.join(scratch, "idle.tsv"))
    idle_kb = {}
    if idle:
        w("## Idle keep-alive client connections")
        w("")
        w(
            "N client connections that each sent one ping and got its 204, then stay open and "
            "idle; growth of the proxy's VmRSS (nginx: the worker) over a fresh process that "
            "answered the check requests, divided by N: the user-space memory the proxy holds per "
            "connection. For scale, the last column is the growth of the kernel's slab memory "
            "(/proc/meminfo Slab, machine-wide) per connection: the sockets of both ends (client "
            "and proxy), their files and epoll entries; it hardly depends on the proxy."
        )
        w("")
        w("| target | connections | RSS before MB | RSS with them MB | KB per connection | vs nginx "
          "| kernel slab KB per connection (both ends) |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for target, n, before, after, _sb, _sa in idle:
            idle_kb[target] = (int(after) - int(before)) / int(n)
        for target, n, before, after, sb, sa in sorted(idle, key=lambda r: order_key(r[0])):
            vs = (f"{ratio(idle_kb[target], idle_kb['nginx']):.2f}×"
                  if "nginx" in idle_kb and idle_kb["nginx"] > 0 else "")
            w(
                f"| {NAMES.get(target, target)} | {int(n):,} | {int(before) / 1024:.1f} | "
                f"{int(after) / 1024:.1f} | {idle_kb[target]:.2f} | {vs} | "
                f"{(int(sa) - int(sb)) / int(n):.2f} |"
            )
        w("")

    if any(k[0] == "mediagate" and k[2] == 50 for k in cells) or "mediagate" in idle_kb:
        w("## Issue 15's goal (mediagate, everything on, 50 connections)")
        w("")
        w("| check | goal | measured | |")
        w("| --- | --- | ---: | --- |")
        for body in sorted({k[1] for k in cells}, key=body_key):
            m = cells.get(("mediagate", body, 50))
            if not m:
                continue
            for base in ("nginx", "haproxy"):
                n = cells.get((base, body, 50))
                if not n:
                    continue
                for label, goal, value, ok in [
                    ("CPU per request", f"≤ {GOAL_CPU}×", ratio(m["cpu_us"], n["cpu_us"]),
                     lambda v: v <= GOAL_CPU),
                    ("requests/s", f"≥ {GOAL_RPS}×", ratio(m["rps"], n["rps"]),
                     lambda v: v >= GOAL_RPS),
                    ("p99 latency", f"≤ {GOAL_P99}×", ratio(m["p99"], n["p99"]),
                     lambda v: v <= GOAL_P99),
                ]:
                    w(f"| {body}, vs {NAMES[base]}: {label} | {goal} | {value:.2f}× | "
                      f"{'met' if ok(value) else 'not met'} |")
            n = cells.get(("nginx", body, 50))
            if n:
                v = ratio(m["cpu_us"], n["cpu_us"])
                w(f"| {body}, vs nginx: CPU per request (stretch) | ≤ {STRETCH_CPU}× | {v:.2f}× | "
                  f"{'met' if v <= STRETCH_CPU else 'not met'} |")
        if "mediagate" in idle_kb:
            v = idle_kb["mediagate"]
            w(f"| idle keep-alive connection | ≤ {GOAL_IDLE_KB} KB | {v:.2f} KB | "
              f"{'met' if v <= GOAL_IDLE_KB else 'not met'} |")
        w("")

    sys_rows = rows(os.path.join(scratch, "syscalls.tsv"))
    if sys_rows:
        w("## Syscalls per request (perf stat, 50 connections)")
        w("")
        w(
            "`perf stat -e 'syscalls:sys_enter_*' -p PIDS` on the proxy's processes (nginx: the "
            "worker) during a separate run (perf slows it: only counts are used), divided by the "
            "requests wrk completed in it. Calls under 0.01 per request in every column are left "
            "out. Context switches: of all the proxy's threads (/proc/PID/task/*/status), per "
            "request, in the same run."
        )
        w("")
        data = {}
        requests = {}
        for target, body, n, name, count in sys_rows:
            requests[(target, body)] = int(n)
            data.setdefault(body, {}).setdefault(name, {})[target] = int(count) / max(1, int(n))
        for body in sorted(data, key=body_key):
            targets = sorted({t for (t, b) in requests if b == body}, key=order_key)
            w(f"**{body}**")
            w("")
            w("| syscall | " + " | ".join(NAMES.get(t, t) for t in targets) + " |")
            w("| --- | " + " | ".join("---:" for _ in targets) + " |")
            calls = [s for s in data[body] if not s.startswith("(")]
            names = sorted(calls, key=lambda s: -max(data[body][s].values()))
            for name in names:
                vals = [data[body][name].get(t, 0.0) for t in targets]
                if max(vals) < 0.01:
                    continue
                w(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
            totals = [sum(data[body][s].get(t, 0.0) for s in calls) for t in targets]
            w("| **total** | " + " | ".join(f"**{v:.2f}**" for v in totals) + " |")
            for name in sorted(s for s in data[body] if s.startswith("(")):
                vals = [data[body][name].get(t, 0.0) for t in targets]
                w(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
            w("| requests counted | " + " | ".join(f"{requests[(t, body)]:,}" for t in targets) + " |")
            w("")

    profiles = sorted(
        (f for f in os.listdir(scratch) if f.startswith("profile-") and f.endswith(".txt")))
    if profiles:
        w("## Where the CPU goes (perf record, 50 connections)")
        w("")
        w(
            "`perf record -e cpu-clock -F 1999 -p PIDS` during a separate run; self time per "
            "symbol, grouped by library (Rust symbols by their crate). µs/req: the share times "
            "the CPU-µs/req of the same cell in the results above."
        )
        w("")
        for name in sorted(profiles, key=lambda f: (
                body_key(f[len("profile-"):-4].split("-")[-1]),
                order_key(f[len("profile-"):-4].rsplit("-", 1)[0]))):
            target, body = name[len("profile-"):-4].rsplit("-", 1)
            samples = parse_profile(os.path.join(scratch, name))
            if not samples:
                continue
            cpu_us = cells.get((target, body, 50), {}).get("cpu_us")
            groups = {}
            for pct, dso, sym in samples:
                groups[category(dso, sym)] = groups.get(category(dso, sym), 0.0) + pct
            w(f"**{NAMES.get(target, target)}, {body}**")
            w("")
            w("| where | share | µs/req |")
            w("| --- | ---: | ---: |")
            for cat, pct in sorted(groups.items(), key=lambda kv: -kv[1]):
                if pct >= 0.5:
                    us = f"{pct / 100 * cpu_us:.1f}" if cpu_us else ""
                    w(f"| {cat} | {pct:.1f}% | {us} |")
            rest = sum(p for p in groups.values() if p < 0.5)
            if rest > 0:
                us = f"{rest / 100 * cpu_us:.1f}" if cpu_us else ""
                w(f"| other (groups under 0.5%) | {rest:.1f}% | {us} |")
            w("")
            if target.startswith("mediagate"):
                w("Top symbols:")
                w("")
                w("| share | library | symbol |")
                w("| ---: | --- | --- |")
                for pct, dso, sym in samples[:15]:
                    short = sym if len(sym) <= 110 else sym[:107] + "..."
                    w(f"| {pct:.1f}% | {dso} | `{short}` |")
                w("")

    print("\n".join(out))


def parse_profile(path):
    """perf report --sort dso,sym --stdio lines -> [(percent, dso, symbol)], largest first."""
    import re
    line_re = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")
    samples = []
    with open(path) as f:
        for line in f:
            m = line_re.match(line)
            if m:
                samples.append((float(m.group(1)), m.group(2), m.group(4)))
    return sorted(samples, key=lambda s: -s[0])


BINARY = "mediagate"  # the binary's file name, as perf names its dso (set from meta.tsv)


def category(dso, sym):
    import re
    if dso.startswith("[kernel"):
        return "kernel (syscalls, TCP/loopback, scheduler)"
    if dso.startswith("libc"):
        return "libc (malloc/free, memcpy, ...)"
    if "luajit" in dso:
        return "LuaJIT"
    if dso == "nginx" or dso.startswith("ngx_"):
        return "nginx"
    if dso.startswith("ld-linux") or dso.startswith("libm"):
        return "libc (malloc/free, memcpy, ...)"
    if dso != BINARY:
        return dso
    if sym.startswith(("_mi_", "mi_", "_rjem_", "je_")):
        return "allocator linked in (mimalloc/jemalloc)"
    inner = sym
    m = re.match(r"^core::ptr::drop_in_place<(.*)>$", sym)
    if m:
        inner = m.group(1)
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", inner)
    crate = m.group(1) if m else ""
    if crate == "mediagate":
        return "mediagate (its own code)"
    if crate.startswith("pingora"):
        return "pingora"
    if crate == "tokio":
        return "tokio"
    if crate in ("serde_json", "serde"):
        return "serde_json"
    if crate == "prometheus":
        return "prometheus"
    if crate in ("http", "httparse", "bytes", "httpdate", "h2"):
        return "http, httparse, bytes"
    if crate in ("core", "alloc", "std", "__rustc"):
        return "Rust std (core, alloc)"
    if sym.startswith("0x") or not crate:
        return "mediagate binary, unresolved"
    return crate


if __name__ == "__main__":
    main()
