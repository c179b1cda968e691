-- Body validation for nginx + Lua (access_by_lua), the peer of mediagate's validation in
-- bench/run.sh: what a Kong-style request validator does on the same engine.
--   sessions(): POST /api/v1/sessions. The envelope, eventType sessionStart, the required
--               sessionStart params with their JSON types, one default param set when absent
--               (media.streamType = "video": the documentation's sessionStart lacks it, so the
--               body is re-encoded and forwarded with set_body_data).
--   events():   POST /api/v1/sessions/{sid}/events. The envelope only; the body is forwarded
--               as it came.
-- Failures answer 400 with a JSON list of errors, like mediagate, and never reach the upstream.
local cjson = require "cjson.safe"

-- lua-cjson 2.1.0 caps the precision at 14 significant digits (the default): a double such as
-- media.length = 60.39333333333333 is re-encoded as 60.393333333333. Kept: it is the stock
-- library's behaviour, and the cost of encoding does not depend on it.
cjson.encode_number_precision(14)

local M = {}

local EVENT_TYPES = {}
for _, name in ipairs({
    "sessionStart", "play", "ping", "bitrateChange", "bufferStart", "pauseStart",
    "adBreakStart", "adStart", "adComplete", "adSkip", "adBreakComplete", "chapterStart",
    "chapterComplete", "chapterSkip", "error", "sessionComplete", "sessionEnd", "stateStart",
    "stateEnd",
}) do
    EVENT_TYPES[name] = true
end

local REQUIRED_SESSION_PARAMS = {
    { "analytics.trackingServer", "string" },
    { "analytics.reportSuite", "string" },
    { "visitor.marketingCloudOrgId", "string" },
    { "media.id", "string" },
    { "media.length", "number" },
    { "media.contentType", "string" },
    { "media.playerName", "string" },
    { "media.channel", "string" },
}

local DEFAULT_SESSION_PARAMS = {
    { "media.streamType", "video" },
}

local floor = math.floor

local function add(errors, path, rule, detail)
    errors[#errors + 1] = { path = path, rule = rule, detail = detail }
end

local function reject(message, errors)
    ngx.status = 400
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Access-Control-Allow-Origin"] = "*"
    ngx.header["Access-Control-Allow-Methods"] = "OPTIONS,POST,PUT"
    ngx.header["Access-Control-Allow-Headers"] = "Content-Type"
    ngx.header["Access-Control-Expose-Headers"] = "Location"
    local body = cjson.encode({ message = message, errors = errors })
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(400)
end

-- Reads and decodes the body; answers 400 itself when it cannot.
local function read_json()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body == nil then
        -- Spilled to a file (larger than client_body_buffer_size) or empty.
        local file = ngx.req.get_body_file()
        if file == nil then
            return reject("invalid request body", { { path = "", rule = "json", detail = "empty body" } })
        end
        local f = io.open(file, "rb")
        body = f and f:read("*a")
        if f then f:close() end
    end
    local doc, err = cjson.decode(body or "")
    if doc == nil then
        return reject("invalid request body", { { path = "", rule = "json", detail = err } })
    end
    if type(doc) ~= "table" then
        return reject("invalid request body", { { path = "", rule = "body_kind", detail = "expected an object" } })
    end
    return doc
end

-- playerTime {playhead: number >= 0, ts: integer}, eventType (a known event type, on the right
-- endpoint), params an object when present.
local function check_envelope(doc, errors, on_sessions)
    local pt = doc.playerTime
    if pt == nil then
        add(errors, "/playerTime", "required", "missing")
    elseif type(pt) ~= "table" then
        add(errors, "/playerTime", "type", "expected an object")
    else
        local playhead = pt.playhead
        if playhead == nil then
            add(errors, "/playerTime/playhead", "required", "missing")
        elseif type(playhead) ~= "number" then
            add(errors, "/playerTime/playhead", "type", "expected a number")
        elseif playhead < 0 then
            add(errors, "/playerTime/playhead", "minimum", "must be >= 0")
        end
        local ts = pt.ts
        if ts == nil then
            add(errors, "/playerTime/ts", "required", "missing")
        elseif type(ts) ~= "number" or floor(ts) ~= ts then
            add(errors, "/playerTime/ts", "type", "expected an integer")
        end
    end
    local event_type = doc.eventType
    if event_type == nil then
        add(errors, "/eventType", "required", "missing")
    elseif type(event_type) ~= "string" then
        add(errors, "/eventType", "type", "expected a string")
    elseif not EVENT_TYPES[event_type] then
        add(errors, "/eventType", "event_type", "not an event type")
    elseif (event_type == "sessionStart") ~= on_sessions then
        add(errors, "/eventType", "endpoint", "not accepted on this endpoint")
    end
    local params = doc.params
    if params ~= nil and type(params) ~= "table" then
        add(errors, "/params", "type", "expected an object")
    end
end

function M.sessions()
    local doc = read_json()
    local errors = {}
    check_envelope(doc, errors, true)
    local params = doc.params
    if params == nil then
        add(errors, "/params", "required", "missing")
    elseif type(params) == "table" then
        for _, rule in ipairs(REQUIRED_SESSION_PARAMS) do
            local name, want = rule[1], rule[2]
            local value = params[name]
            if value == nil then
                add(errors, "/params/" .. name, "required", "missing")
            elseif type(value) ~= want then
                add(errors, "/params/" .. name, "type", "expected a " .. want)
            end
        end
    end
    if #errors > 0 then
        return reject("invalid request body", errors)
    end
    local changed = false
    for _, default in ipairs(DEFAULT_SESSION_PARAMS) do
        if params[default[1]] == nil then
            params[default[1]] = default[2]
            changed = true
        end
    end
    if changed then
        ngx.req.set_body_data(cjson.encode(doc))
    end
end

function M.events()
    local doc = read_json()
    local errors = {}
    check_envelope(doc, errors, false)
    if #errors > 0 then
        return reject("invalid request body", errors)
    end
end

return M
