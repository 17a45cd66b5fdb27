-- wrk script: POST pre-signed Stripe bodies from BODIES_FILE ("signature\tbody" lines), each
-- thread taking its own share, so every request is a distinct event until the file runs out.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = #args > 0 and tonumber(args[1]) or 1
  requests = {}
  local i = 0
  for line in io.lines(os.getenv("BODIES_FILE")) do
    if i % nthreads == tid then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(requests, wrk.format("POST", "/webhooks/stripe",
        {["Content-Type"] = "application/json", ["Stripe-Signature"] = sig}, body))
    end
    i = i + 1
  end
  idx = 0
end

function request()
  idx = idx + 1
  if idx > #requests then idx = 1 end
  return requests[idx]
end
