-- wrk script of benchmarks/server.py: replays pre-generated POST /api/orders requests.
--
-- Usage: wrk -t1 -c64 -d10s -s benchmarks/server_wrk.lua URL -- REQUESTS_FILE THREADS
-- REQUESTS_FILE has one request a line, tab-separated: api_key, timestamp, signature, user, body
-- (empty fields send no header). Thread t of THREADS takes lines t+1, t+1+THREADS, ... Each request
-- is sent at most once while the pool lasts (signed requests cannot be replayed: the server answers
-- 401); then the pool is reused from its start and `exhausted` reports it. Answers are counted by
-- status; done() prints one line "WRKJSON {...}" for the harness.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local pool = {}
local index = 0
local size = 0
counts = {}
exhausted = 0

local function split(line)
   local fields = {}
   local start = 1
   while true do
      local tab = string.find(line, "\t", start, true)
      if tab == nil then
         table.insert(fields, string.sub(line, start))
         return fields
      end
      table.insert(fields, string.sub(line, start, tab - 1))
      start = tab + 1
   end
end

function init(args)
   local path = args[1]
   local nthreads = tonumber(args[2]) or 1
   local n = 0
   for line in io.lines(path) do
      if n % nthreads == id then
         local f = split(line)
         local headers = {["Content-Type"] = "application/json"}
         if f[1] ~= "" then
            headers["X-MC-APIKEY"] = f[1]
            headers["X-MC-TIMESTAMP"] = f[2]
            headers["X-MC-SIGNATURE"] = f[3]
         end
         if f[4] ~= "" then
            headers["X-MC-User"] = f[4]
         end
         size = size + 1
         pool[size] = wrk.format("POST", "/api/orders", headers, f[5])
      end
      n = n + 1
   end
end

function request()
   index = index + 1
   if index > size then
      index = 1
      exhausted = exhausted + 1
   end
   return pool[index]
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   local used = 0
   for _, thread in ipairs(threads) do
      local c = thread:get("counts")
      for status, n in pairs(c) do
         merged[status] = (merged[status] or 0) + n
      end
      used = used + thread:get("exhausted")
   end
   local parts = {}
   for status, n in pairs(merged) do
      table.insert(parts, string.format('"%d": %d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us": %d, "requests": %d, "status": {%s}, "exhausted": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.duration, summary.requests, table.concat(parts, ", "), used,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
