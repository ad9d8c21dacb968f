-- wrk script: POST pre-signed WhatsApp webhooks to /webhook/whatsapp.
-- Each wrk thread reads its own file (bodies.N.txt, "signature<TAB>body" per
-- line, made by gen_bodies.py) and sends each request once, in order; when a
-- thread runs out it starts over (those repeats are duplicates, answered 200
-- without work: size the files so that it does not happen, see run.sh).
-- Non-2xx answers are counted by wrk as errors ("Non-2xx or 3xx responses").

local counter = 0
local threads = {}

function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

function init(args)
	local dir = args[1] or "."
	reqs = {}
	local f = assert(io.open(dir .. "/bodies." .. id .. ".txt", "r"))
	for line in f:lines() do
		local tab = line:find("\t", 1, true)
		local sig, body = line:sub(1, tab - 1), line:sub(tab + 1)
		reqs[#reqs + 1] = wrk.format("POST", "/webhook/whatsapp",
			{ ["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig }, body)
	end
	f:close()
	i = 0
	wraps = 0
end

function request()
	i = i + 1
	if i > #reqs then
		i = 1
		wraps = wraps + 1
	end
	return reqs[i]
end

function done(summary, latency, requests)
	io.write(string.format("latency_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
		latency:percentile(50) / 1000, latency:percentile(90) / 1000,
		latency:percentile(99) / 1000, latency.max / 1000))
	for _, t in ipairs(threads) do
		local w = t:get("wraps")
		if w and w > 0 then
			io.write(string.format("warning: thread %d reused its bodies %d times (duplicates)\n", t:get("id"), w))
		end
	end
end
