-- wrk script of benchmarks/cluster.py: replays pre-generated POST /api/orders requests against several
-- gateways from one wrk, so that wrk's own latency histogram covers every request (exact p50/p99 over
-- all gateways, no merging of percentiles afterwards).
--
-- Usage: MC_BENCH_ADDRS=127.0.0.1:8000,127.0.0.1:8001 \
--        wrk -tT -cC -d10s -s benchmarks/cluster_wrk.lua http://127.0.0.1:8000 -- REQUESTS_FILE T
-- Thread t (from 0) talks to address t mod #MC_BENCH_ADDRS (round robin over the gateways; T should be
-- a multiple of the number of addresses) and takes lines t+1, t+1+T, ... of REQUESTS_FILE (one request
-- a line, tab-separated: api_key, timestamp, signature, user, body; empty fields send no header). Each
-- request is sent at most once while the pool lasts (a signed request cannot be replayed: 401); then
-- the pool is reused from its start and `exhausted` counts it. done() prints one line "WRKJSON {...}"
-- ("created": each thread's count of 201 answers, in thread order).

local threads = {}
local counter = 0
local addrs = nil

local function lookup_all()
   local found = {}
   for hostport in string.gmatch(os.getenv("MC_BENCH_ADDRS") or "", "[^,]+") do
      local host, port = string.match(hostport, "^(.*):(%d+)$")
      local resolved = wrk.lookup(host, port)
      if resolved == nil or resolved[1] == nil then
         error("cannot resolve " .. hostport)
      end
      table.insert(found, resolved[1])
   end
   return found
end

function setup(thread)
   if addrs == nil then
      addrs = lookup_all()
   end
   if #addrs > 0 then
      thread.addr = addrs[(counter % #addrs) + 1]
   end
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local pool = {}
local index = 0
local size = 0
counts = {}
exhausted = 0

local function fields_of(line)
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
   local nthreads = tonumber(args[2]) or 1
   local n = 0
   for line in io.lines(args[1]) do
      if n % nthreads == id then
         local f = fields_of(line)
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
   local created = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("counts")) do
         merged[status] = (merged[status] or 0) + n
      end
      used = used + thread:get("exhausted")
      table.insert(created, string.format("%d", thread:get("counts")[201] or 0))
   end
   local parts = {}
   for status, n in pairs(merged) do
      table.insert(parts, string.format('"%d": %d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us": %d, "requests": %d, "status": {%s}, "exhausted": %d, "created": [%s], ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.duration, summary.requests, table.concat(parts, ", "), used, table.concat(created, ", "),
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
