-- wrk script: GET a path with `Authorization: Bearer <token>`, the tokens read from a file
-- (one per line). Arguments after `--`:
--   1 token file
--   2 mode: "rotate" (cycle through the tokens) or "once" (every request a token not sent
--     before; a thread stops when its share of the file is used up)
--   3 path (default /api/issues)
--   4 wrk's thread count (-t), so threads take disjoint shares
--   5 pause between a connection's requests in ms (only with victim.lua, which defines delay)
-- done() prints one line, "WRK_RESULT key=value ...", that bench/run.sh reads.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file = args[1]
   mode = args[2] or "rotate"
   local path = args[3] or "/api/issues"
   local nthreads = tonumber(args[4] or "1")
   think = tonumber(args[5] or "0")
   local mine, all = {}, {}
   local n = 0
   for line in io.lines(file) do
      if #line > 0 then
         if n % nthreads == id then
            table.insert(mine, line)
         end
         if n < nthreads then
            table.insert(all, line)
         end
         n = n + 1
      end
   end
   if #mine == 0 and mode == "rotate" then
      mine = all -- fewer tokens than threads: every thread rotates through all of them
   end
   if #mine == 0 then
      error("no tokens for thread " .. id .. " in " .. file)
   end
   tokens = mine
   issued = 0
   exhausted = 0
   -- Small pools are formatted once; large ones per request (memory).
   if #tokens <= 20000 then
      prebuilt = {}
      for i, token in ipairs(tokens) do
         prebuilt[i] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
      end
   else
      request_path = path
   end
   index = 0
end

function request()
   index = index + 1
   if index > #tokens then
      if mode == "once" then
         -- Never send a token twice: stop, and until the thread has stopped, ask for a public
         -- page without a token.
         exhausted = 1
         wrk.thread:stop()
         return wrk.format("GET", "/")
      end
      index = 1
   end
   issued = issued + 1
   if prebuilt then
      return prebuilt[index]
   end
   return wrk.format("GET", request_path, { ["Authorization"] = "Bearer " .. tokens[index] })
end

function done(summary, latency, requests)
   local issued_total, exhausted_any = 0, 0
   for _, thread in ipairs(threads) do
      issued_total = issued_total + (thread:get("issued") or 0)
      if (thread:get("exhausted") or 0) > 0 then
         exhausted_any = 1
      end
   end
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d "
         .. "connect=%d read=%d write=%d timeout=%d issued=%d exhausted=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.status, e.connect, e.read, e.write, e.timeout, issued_total, exhausted_any))
end
