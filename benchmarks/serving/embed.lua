-- wrk script for embeddings.py: every request POSTs the next body of a list (one sentence each), so the
-- connections send different sentences; every response is checked.
--   WRK_BODIES_FILE  request bodies, one JSON document per line
--   WRK_AUTH_FILE    file holding an API key, sent as "Authorization: Bearer KEY"
--   WRK_DIMENSION    expected vector length (optional): an answer counts as ok only if it is a 200
--                    holding exactly one "embedding" of that many numbers
-- At the end prints "WRKJSON {...}" with the same fields as post.lua (counts, latencies in us).

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local bodies = {}
for line in slurp(os.getenv("WRK_BODIES_FILE")):gmatch("[^\n]+") do
  table.insert(bodies, line)
end
assert(#bodies > 0, "WRK_BODIES_FILE holds no body")

local headers = {["Content-Type"] = "application/json"}
local key_file = os.getenv("WRK_AUTH_FILE")
if key_file and key_file ~= "" then
  headers["Authorization"] = "Bearer " .. slurp(key_file):gsub("%s+$", "")
end
local dimension = tonumber(os.getenv("WRK_DIMENSION") or "")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, non200, mismatch, sent = 0, 0, 0, 0
end

function request()
  sent = sent + 1
  return wrk.format("POST", nil, headers, bodies[(sent - 1) % #bodies + 1])
end

local function well_formed(body)
  local count, vector = 0, nil
  for v in body:gmatch('"embedding":%s*%[([^%]]*)%]') do
    count = count + 1
    vector = v
  end
  if count ~= 1 then
    return false
  end
  if dimension == nil then
    return true
  end
  local n = 0
  for _ in vector:gmatch("[^,]+") do
    n = n + 1
  end
  return n == dimension
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif well_formed(body) then
    ok = ok + 1
  else
    mismatch = mismatch + 1
  end
end

function done(summary, latency, requests)
  local n = {ok = 0, non200 = 0, mismatch = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(n) do
      n[k] = n[k] + t:get(k)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"err_connect":%.0f,"err_read":%.0f,"err_write":%.0f,"err_status":%.0f,"err_timeout":%.0f,' ..
    '"ok":%.0f,"varied":0,"non200":%.0f,"mismatch":%.0f,' ..
    '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_max_us":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    n.ok, n.non200, n.mismatch,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
