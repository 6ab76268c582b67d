-- wrk script: every request carries a random, never valid, permanent-token-shaped bearer
-- token (the attacker of scenario g). Arguments after `--`: 1 path (default /api/issues).
-- done() prints "WRK_RESULT key=value ..." like tokens.lua.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

function init(args)
   path = args[1] or "/api/issues"
   math.randomseed(os.time() * 1000 + id)
end

function request()
   local chars = {}
   for i = 1, 30 do
      local k = math.random(1, #alphabet)
      chars[i] = alphabet:sub(k, k)
   end
   local token = "perm:Zmxvb2Q=.NDctMA==." .. table.concat(chars)
   return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d "
         .. "connect=%d read=%d write=%d timeout=%d issued=%d exhausted=0\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.status, e.connect, e.read, e.write, e.timeout, summary.requests))
end
