-- wrk script for the web bench (bench/web_bench.py). Environment:
--   BENCH_TOKENS  file of "<access token> <patient id>" lines, one per patient
--   BENCH_MODE    "post" (POST a new reading) or "list" (GET the recommendations list)
--   BENCH_TARGET  "product" (/api/v1/..., Bearer token) or "ceiling" (the bare-DRF app, no auth)
-- Every POST carries a reading no earlier request sent (its own patient, time offset per thread and request), so
-- each one is a real insert, not a deduplicated resend.
local accounts = {}
local counter = 0
local threads = 0
local mode = os.getenv("BENCH_MODE") or "post"
local target = os.getenv("BENCH_TARGET") or "product"
local base = os.time() - 3600

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    local token, patient = line:match("^(%S+)%s+(%S+)$")
    if token then accounts[#accounts + 1] = { token = token, patient = patient } end
  end
end

function request()
  counter = counter + 1
  local account = accounts[(counter % #accounts) + 1]
  local headers = { ["Content-Type"] = "application/json" }
  if target == "product" then headers["Authorization"] = "Bearer " .. account.token end
  if mode == "list" then
    if target == "product" then return wrk.format("GET", "/api/v1/recommendations/", headers) end
    return wrk.format("GET", "/recommendations/?patient=" .. account.patient, headers)
  end
  -- Each thread its own 16-day band of times 7 s apart (200,000 readings), all inside the API's plausible window
  -- (PLAUSIBLE_PAST_DAYS, 365): with up to 8 threads the oldest is 130 days back. (A band of 810 days per thread
  -- made every request of the second thread a 400.)
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", base - (tid * 200000 + counter % 200000) * 7)
  local body = string.format(
    '{"taken_at":"%s","systolic":%d,"diastolic":%d,"heart_rate":%d,"source":"cuff"}',
    stamp, 118 + counter % 24, 74 + counter % 12, 60 + counter % 25)
  local path = (target == "product") and "/api/v1/readings/" or "/readings/"
  return wrk.format("POST", path, headers, body)
end
