-- wrk script of `npm run bench`.
-- BENCH_COOKIES: a file of Cookie header values, one a line. One line: every request carries
-- it (a hot session). More: requests rotate through them, each connection from its own offset.
-- BENCH_RESULT: where done() writes the figures as JSON.

local cookies = {}
local requests = {}
local n = 0
local i = 0

function init(args)
  local file = os.getenv("BENCH_COOKIES")
  if file then
    for line in io.lines(file) do
      if #line > 0 then table.insert(cookies, line) end
    end
  end
  n = #cookies
  if n == 1 then
    wrk.headers["Cookie"] = cookies[1]
  elseif n > 1 then
    -- requests are formatted once here, so request() only picks one
    for k = 1, n do
      requests[k] = wrk.format(nil, nil, { Cookie = cookies[k] })
    end
    i = math.random(n)
  end
end

function rotate()
  i = i + 1
  if i > n then i = 1 end
  return requests[i]
end

function done(summary, latency, reqs)
  local out = os.getenv("BENCH_RESULT")
  if not out then return end
  local f = io.open(out, "w")
  local e = summary.errors
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
  f:close()
end

-- wrk calls request() for every request only when it is defined: keep the hot path static
if os.getenv("BENCH_ROTATE") == "1" then
  request = rotate
end
