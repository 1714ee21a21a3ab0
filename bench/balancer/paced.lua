-- wrk, paced: each connection waits WRK_DELAY_MS between a response and its next request, so
-- every row is offered (about) the same request rate and p99 compares latency, not load.
-- With WRK_SPREAD=1 it also aims thread i at node i, as spread.lua does, for the direct row.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "2")
local spread = os.getenv("WRK_SPREAD") == "1"
local nodes = {"10.99.1.11", "10.99.1.12", "10.99.1.13"}
local addrs = nil
local count = 0

function setup(thread)
   if not spread then
      return
   end
   if addrs == nil then
      addrs = {}
      for _, host in ipairs(nodes) do
         for _, addr in ipairs(wrk.lookup(host, "30080")) do
            table.insert(addrs, addr)
         end
      end
   end
   thread.addr = addrs[(count % #addrs) + 1]
   count = count + 1
end

function delay()
   return delay_ms
end
