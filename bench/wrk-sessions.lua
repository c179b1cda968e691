-- wrk script of bench/run.sh's session store cells: each request is a ping on the next of the
-- sessions listed in $BENCH_PATHS (one events path a line, started through the gateway), with a
-- playerTime.ts that grows by one second a request (so a session's pings are far apart in its
-- player clock: no session rule is broken). Prints the BENCH line of wrk-post.lua.
local file = os.getenv("BENCH_PATHS")
if file == nil then
    error("wrk-sessions.lua: set BENCH_PATHS to the file of events paths")
end
local paths = {}
for line in io.lines(file) do
    if line ~= "" then
        paths[#paths + 1] = line
    end
end
if #paths == 0 then
    error("wrk-sessions.lua: no path in " .. file)
end

local i = 0
local ts = 1509045336653
local headers = { ["Content-Type"] = "application/json" }

function request()
    i = i + 1
    ts = ts + 1000
    local body = string.format('{"playerTime":{"playhead":%d,"ts":%d},"eventType":"ping"}', i % 3600, ts)
    return wrk.format("POST", paths[(i % #paths) + 1], headers, body)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
