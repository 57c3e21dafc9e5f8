-- wrk script: 25-lead Update Leads in Bulk v2 calls, each changing real values.
-- Leads are picked as random blocks of 25 consecutive emails lead<i>@bench.example.
-- Environment: BENCH_LEADS (stored leads), BENCH_DELAY_MS (mean pause between calls, for a
-- fixed rate). The pauses are random (exponential, as between calls of independent clients):
-- equal pauses keep the connections in lockstep, so that their calls all arrive together.

local leads = tonumber(os.getenv("BENCH_LEADS"))
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + id * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local tag = string.format("w%d_%d_%d", id, counter, math.random(1000000))
  local base = math.random(0, math.floor(leads / 25) - 1) * 25
  local items = {}
  for k = 0, 24 do
    local i = base + k
    items[#items + 1] = string.format(
      '{"Fields":[{"Attribute":"EmailAddress","Value":"lead%d@bench.example"},' ..
      '{"Attribute":"FirstName","Value":"%sa"},{"Attribute":"LastName","Value":"%sb"},' ..
      '{"Attribute":"JobTitle","Value":"%sc"},{"Attribute":"mx_City","Value":"%sd"}]}',
      i, tag, tag, tag, tag)
  end
  local body = '{"SearchByKey":"EmailAddress","LeadPropertiesList":[' .. table.concat(items, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end

function delay()
  if delay_ms == 0 then
    return 0
  end
  return -math.log(1 - math.random()) * delay_ms
end
