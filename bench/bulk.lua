-- wrk script: 25-lead Update Leads in Bulk v2 calls, each changing real values.
-- Leads are picked as random blocks of 25 consecutive emails lead<i>@bench.example.
--
-- Environment:
--   BENCH_LEADS       stored leads
--   BENCH_WORKLOAD    everyday: the same 4 text fields on every lead;
--                     client: the same, with a new Idempotency-Key on every call (as
--                       `leadstore bulk-update` sends);
--                     mixed: leads of one call write different sets of fields, about 1 lead in
--                       10 also sets OwnerId (one of BENCH_OWNERS), and 1 call in 5 gives 5 of
--                       its leads a new, unique mx_CustomerCode
--   BENCH_OWNERS      user ids, comma-separated (mixed)
--   BENCH_RUN         a tag unique to this run: values and keys never repeat an earlier run's
--   BENCH_DELAY_MS    mean pause before each call (0: none), for a fixed rate. The pauses are
--                     random (exponential, as between calls of independent clients): equal
--                     pauses keep the connections in lockstep, so that their calls all arrive
--                     together
--   BENCH_STOP_AFTER  stop after this many answers (0: run for wrk's duration)
--
-- At the end one line `BENCH_RESULT {json}`: answers, non-2xx answers, leads updated and
-- failed (from each answer's Status), latency percentiles, and leads updated per second of the
-- wall clock (for the slowest window of the phase).

local leads = tonumber(os.getenv("BENCH_LEADS"))
local workload = os.getenv("BENCH_WORKLOAD") or "everyday"
local run_tag = os.getenv("BENCH_RUN") or "r"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "0")
local owners = {}
for owner in string.gmatch(os.getenv("BENCH_OWNERS") or "", "[^,]+") do
  owners[#owners + 1] = owner
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Per thread (each has its own Lua state); read by done() through the thread objects.
counter = 0
answers = 0
non2xx = 0
ok_leads = 0
failed_leads = 0
calls_with_failures = 0
per_second = {}
failure = ""

function init(args)
  math.randomseed(os.time() + id * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function field(name, value)
  return string.format('{"Attribute":"%s","Value":"%s"}', name, value)
end

local function lead_key(i)
  return string.format('{"Attribute":"EmailAddress","Value":"lead%d@bench.example"}', i)
end

local function everyday_lead(i, tag)
  return "{\"Fields\":[" .. lead_key(i) .. "," .. field("FirstName", tag .. "a") .. "," ..
    field("LastName", tag .. "b") .. "," .. field("JobTitle", tag .. "c") .. "," ..
    field("mx_City", tag .. "d") .. "]}"
end

-- The mixed workload's field sets: each lead takes one at random, so a call's leads write
-- different fields, and all of them text but for mx_Budget (a number).
local sets = {
  {"FirstName", "LastName", "JobTitle", "mx_City"},
  {"JobTitle", "mx_City", "mx_Region", "mx_Industry"},
  {"LastName", "Company", "mx_Budget", "mx_Referrer"},
  {"FirstName", "mx_Region", "mx_Referrer"},
}

local function mixed_lead(i, k, tag, unique_call)
  local parts = {lead_key(i)}
  for n, name in ipairs(sets[math.random(#sets)]) do
    if name == "mx_Budget" then
      parts[#parts + 1] = string.format('{"Attribute":"mx_Budget","Value":"%d"}', math.random(1, 2000000000))
    else
      parts[#parts + 1] = field(name, tag .. n)
    end
  end
  if #owners > 0 and math.random(10) == 1 then
    parts[#parts + 1] = field("OwnerId", owners[math.random(#owners)])
  end
  if unique_call and k % 5 == 0 then
    parts[#parts + 1] = field("mx_CustomerCode", "U" .. tag .. "_" .. k)
  end
  return "{\"Fields\":[" .. table.concat(parts, ",") .. "]}"
end

function request()
  counter = counter + 1
  local tag = string.format("%s_%d_%d", run_tag, id, counter)
  local base = math.random(0, math.floor(leads / 25) - 1) * 25
  local unique_call = counter % 5 == 0
  local items = {}
  for k = 0, 24 do
    if workload == "mixed" then
      items[#items + 1] = mixed_lead(base + k, k, tag, unique_call)
    else
      items[#items + 1] = everyday_lead(base + k, tag)
    end
  end
  if workload == "client" then
    wrk.headers["Idempotency-Key"] = "bench-" .. tag
  end
  local body = '{"SearchByKey":"EmailAddress","LeadPropertiesList":[' .. table.concat(items, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end

function delay()
  if delay_ms == 0 then
    return 0
  end
  -- wrk takes whole milliseconds: round at random, so that the mean stays delay_ms.
  local pause = -math.log(1 - math.random()) * delay_ms
  return math.floor(pause + math.random())
end

function response(status, headers, body)
  answers = answers + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if failure == "" then
      failure = status .. " " .. string.sub(body, 1, 400)
    end
  else
    local ok = tonumber(string.match(body, '"SuccessCount":(%d+)') or "0")
    local failed = tonumber(string.match(body, '"FailureCount":(%d+)') or "0")
    ok_leads = ok_leads + ok
    failed_leads = failed_leads + failed
    if failed > 0 or ok == 0 then
      calls_with_failures = calls_with_failures + 1
      if failure == "" then
        failure = string.sub(body, 1, 400)
      end
    end
    local second = os.time()
    per_second[second] = (per_second[second] or 0) + ok
  end
  if stop_after > 0 and answers >= stop_after then
    wrk.thread:stop()
  end
end

local function json_string(s)
  return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("%c", " ") .. '"'
end

function done(summary, latency, requests)
  local totals = {answers = 0, non2xx = 0, ok_leads = 0, failed_leads = 0, calls_with_failures = 0}
  local seconds = {}
  local first_failure = ""
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
    for second, count in pairs(thread:get("per_second")) do
      seconds[second] = (seconds[second] or 0) + count
    end
    if first_failure == "" then
      first_failure = thread:get("failure")
    end
  end
  local series = {}
  for second, count in pairs(seconds) do
    series[#series + 1] = string.format("[%d,%d]", second, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"answers":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"ok_leads":%d,"failed_leads":%d,"calls_with_failures":%d,"p50_us":%d,"p99_us":%d,' ..
    '"per_second":[%s],"failure":%s}\n',
    summary.requests, summary.duration, totals.answers, totals.non2xx,
    e.connect + e.read + e.write + e.timeout, totals.ok_leads, totals.failed_leads,
    totals.calls_with_failures, latency:percentile(50), latency:percentile(99),
    table.concat(series, ","), json_string(first_failure)))
end
