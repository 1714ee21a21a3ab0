-- wrk for the "direct" row: aim thread i at node i (wrk sends each thread to one address), so
-- `wrk -t3 -s spread.lua http://10.99.1.11:30080/` spreads its connections over the three nodes.
local nodes = {"10.99.1.11", "10.99.1.12", "10.99.1.13"}
local port = "30080"
local addrs = nil
local count = 0

function setup(thread)
   if addrs == nil then
      addrs = {}
      for _, host in ipairs(nodes) do
         for _, addr in ipairs(wrk.lookup(host, port)) do
            table.insert(addrs, addr)
         end
      end
   end
   thread.addr = addrs[(count % #addrs) + 1]
   count = count + 1
end
