-- wrk script for `make bench` (bench/run.py passes the arguments after `--`):
--   patch <credentials>         PATCH /api/apple_device_tokens/<token>, a new random token
--                               each time
--   get <credentials> <path>    GET <path>
--   dpn <credentials>           POST /device/apns/ {"registration_id": <new random token>,
--                               "active": true}: django-push-notifications' registration
--   devices <credentials>       POST /api/devices, a new random token and fingerprint each
--                               time
-- <credentials> is a file of credentials, one a line; each request carries one drawn at
-- random, as "Bearer <session id>" (patch, get, with Poparazzi's headers) or as
-- "Token <key>" (dpn, Django REST framework's token auth).
-- response() counts non-2xx answers per thread; done() prints one line
-- "BENCH_JSON {...}" with the totals and latency percentiles (microseconds).

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

local mode
local fixed_request
local credentials = {}
local scheme = "Bearer "
local BODY = '{"data":{"type":"apple_device_tokens","id":"%s","attributes":{'
  .. '"is_invalidated":false,"bundle_version":"3.1.23","build_number":"839",'
  .. '"is_production":true,"bundle_id":"TTYL.Inc.Poparazzi","is_voip":false}}}'
local DPN_BODY = '{"registration_id":"%s","active":true}'
local DEVICE_BODY = '{"data":{"type":"devices","attributes":{'
  .. '"channel":"ios_push","token":"%s","fingerprint":"%s","environment":"production",'
  .. '"bundle_id":"com.example.app","app_version":"2.1.0","build_number":"839",'
  .. '"device_model":"iPhone15,3","os_version":"iOS 18.2","time_zone":"Europe/Paris",'
  .. '"is_voip":false}}}'

responses = 0
non2xx = 0
last_bad_status = 0

local function read_credentials(path)
  local file = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in file:lines() do
    if line ~= "" then table.insert(credentials, line) end
  end
  file:close()
  assert(#credentials > 0, "no credentials in " .. path)
end

function init(args)
  mode = args[1]
  read_credentials(args[2])
  if mode == "dpn" then
    scheme = "Token "
    wrk.headers["Accept"] = "application/json"
    wrk.headers["Content-Type"] = "application/json"
  else
    wrk.headers["Accept"] = "application/vnd.api+json, application/json"
    wrk.headers["Version"] = "3.1.23#839"
    wrk.headers["User-Agent"] = "Poparazzi/839 CFNetwork/1335.0.3 Darwin/21.6.0"
  end
  if mode == "patch" or mode == "devices" then
    wrk.headers["Content-Type"] = "application/vnd.api+json"
  elseif mode == "get" then
    wrk.headers["Authorization"] = scheme .. credentials[1]
    fixed_request = wrk.format("GET", args[3])
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

local function random_token()
  local parts = {}
  for i = 1, 16 do
    parts[i] = string.format("%04x", math.random(0, 65535))
  end
  return table.concat(parts)
end

function request()
  if fixed_request then
    return fixed_request
  end
  local token = random_token()
  wrk.headers["Authorization"] = scheme .. credentials[math.random(#credentials)]
  if mode == "dpn" then
    return wrk.format("POST", "/device/apns/", nil, string.format(DPN_BODY, token))
  end
  if mode == "devices" then
    return wrk.format("POST", "/api/devices", nil,
                      string.format(DEVICE_BODY, token, string.sub(random_token(), 1, 32)))
  end
  return wrk.format("PATCH", "/api/apple_device_tokens/" .. token, nil,
                    string.format(BODY, token))
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_bad_status = status
  end
end

function done(summary, latency, requests)
  local seen, bad, bad_status = 0, 0, 0
  for _, thread in ipairs(threads) do
    seen = seen + (thread:get("responses") or 0)
    bad = bad + (thread:get("non2xx") or 0)
    local status = thread:get("last_bad_status") or 0
    if status ~= 0 then bad_status = status end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"responses":%d,"non2xx":%d,'
    .. '"last_bad_status":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,'
    .. '"timeout":%d},"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,'
    .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, seen, bad, bad_status,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
