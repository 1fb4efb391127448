-- wrk script: POST one fixed JSON body; check every response.
-- (From the project's shared peer harness, bench/peers/post.lua; the auth header and the label check were
-- added for the aimaas peer.)
--   WRK_BODY_FILE    request body (JSON)
--   WRK_EXPECT_FILE  exact response body a correct server returns (optional;
--                    captured and validated by bench.py check before the run)
--   WRK_EXPECT_LABELS file holding the expected labels as a JSON list (optional): a
--                    200 whose body differs from WRK_EXPECT_FILE still counts as ok
--                    when the "label" values it holds are exactly these, in order
--                    (counted apart as "varied": servers that also return
--                    probabilities may differ in their last float digits between
--                    calls, e.g. when a request is batched with others)
--   WRK_AUTH_FILE    file holding an API key: sent as "Authorization: Bearer KEY"
--                    (optional; a file rather than a variable keeps the key out of
--                    process listings)
--   WRK_COUNT_VERSIONS=1  also count the '"version":N' values of the answers
--                    (rollout benchmark: which model version answered)
-- At the end prints one line: "WRKJSON {...}" with counts and latencies (us).
-- A response counts as ok only if its status is 200 and its body equals the
-- expected body byte for byte (or passes the label check above); otherwise it
-- is non200 or mismatch. Statuses are also counted by class (2xx/3xx/4xx/5xx).

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function env_file(name)
  local path = os.getenv(name)
  if path and path ~= "" then
    return slurp(path)
  end
  return nil
end

wrk.method = "POST"
wrk.body = slurp(os.getenv("WRK_BODY_FILE"))
wrk.headers["Content-Type"] = "application/json"

local key = env_file("WRK_AUTH_FILE")
if key ~= nil then
  wrk.headers["Authorization"] = "Bearer " .. key:gsub("%s+$", "")
end

local expected = env_file("WRK_EXPECT_FILE")

local expected_labels = nil
local labels_text = env_file("WRK_EXPECT_LABELS")
if labels_text ~= nil then
  expected_labels = {}
  for v in labels_text:gmatch("-?%d+") do
    table.insert(expected_labels, v)
  end
end

local count_versions = os.getenv("WRK_COUNT_VERSIONS") == "1"

local function labels_match(body)
  local i = 0
  for v in body:gmatch('"label":%s*(-?%d+)') do
    i = i + 1
    if expected_labels[i] ~= v then
      return false
    end
  end
  return i == #expected_labels
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  varied = 0
  non200 = 0
  mismatch = 0
  s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0
  versions = {}
end

function response(status, headers, body)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  elseif status >= 200 then
    s2xx = s2xx + 1
  end
  if count_versions and status == 200 then
    local v = body:match('"version":%s*(%d+)')
    if v ~= nil then
      versions[v] = (versions[v] or 0) + 1
    end
  end
  if status ~= 200 then
    non200 = non200 + 1
  elseif expected == nil or body == expected then
    ok = ok + 1
  elseif expected_labels ~= nil and labels_match(body) then
    ok = ok + 1
    varied = varied + 1
  else
    mismatch = mismatch + 1
  end
end

function done(summary, latency, requests)
  local n = {ok = 0, varied = 0, non200 = 0, mismatch = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0}
  local vers = {}
  for _, t in ipairs(threads) do
    for k, _ in pairs(n) do
      n[k] = n[k] + t:get(k)
    end
    for v, c in pairs(t:get("versions")) do
      vers[v] = (vers[v] or 0) + c
    end
  end
  local vparts = {}
  for v, c in pairs(vers) do
    table.insert(vparts, string.format('"%s":%.0f', v, c))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"err_connect":%.0f,"err_read":%.0f,"err_write":%.0f,"err_status":%.0f,"err_timeout":%.0f,' ..
    '"ok":%.0f,"varied":%.0f,"non200":%.0f,"mismatch":%.0f,' ..
    '"s2xx":%.0f,"s3xx":%.0f,"s4xx":%.0f,"s5xx":%.0f,"versions":{%s},' ..
    '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_max_us":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    n.ok, n.varied, n.non200, n.mismatch,
    n.s2xx, n.s3xx, n.s4xx, n.s5xx, table.concat(vparts, ","),
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
