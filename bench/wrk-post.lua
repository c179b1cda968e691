-- wrk script of bench/run.sh: POSTs the file named by $BENCH_BODY as JSON to the URL's path,
-- and prints one machine-readable line at the end (latencies in microseconds):
--   BENCH requests=N duration_us=N p50_us=N p99_us=N mean_us=N err_connect=N err_read=N
--         err_write=N err_status=N err_timeout=N
-- err_status counts answers other than 2xx/3xx.
local path = os.getenv("BENCH_BODY")
if path == nil then
    error("wrk-post.lua: set BENCH_BODY to the file to post")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
