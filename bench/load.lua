-- wrk script of bench/load.py: every request is distinct (a fresh nonce each time; a new person for
-- first-time check-ins), answers are counted here, on the client side, and written to DD_OUT when the
-- run ends so that load.py can compare them with what the database stored.
--
-- Settings come from the environment (wrk's setup() and done() run where init()'s arguments never reach):
--   DD_SCENARIO  baseline | naive | first | duplicate | onetap
--   DD_RUN       a prefix unique to this run (nonces never repeat between runs)
--   DD_THREADS   wrk's thread count
--   DD_MARKER    text a 2xx answer must contain to count as acknowledged ("" for the baseline)
--   DD_PATHS     space-separated paths: the event's check-in URL (onetap: one per event, used in turn)
--   DD_TOKENS    a file of device tokens, one a line (duplicate, onetap)
--   DD_BANDS, DD_GENDERS, DD_HOME  the first-time form's choices (space-separated) and home unit
--   DD_OUT       where done() writes the counts

local scenario = os.getenv("DD_SCENARIO")
local run = os.getenv("DD_RUN")
local nthreads = tonumber(os.getenv("DD_THREADS"))
local marker = os.getenv("DD_MARKER") or ""

local function words(text)
  local list = {}
  for word in (text or ""):gmatch("%S+") do list[#list + 1] = word end
  return list
end

local paths = words(os.getenv("DD_PATHS"))
local bands = words(os.getenv("DD_BANDS"))
local genders = words(os.getenv("DD_GENDERS"))
local home = os.getenv("DD_HOME") or ""

-- What the page's htmx sends with its form post (htmx 2, a phone's browser on the same origin).
local page_headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["HX-Request"] = "true",
  ["HX-Target"] = "checkin",
  ["Accept"] = "*/*",
  ["Accept-Language"] = "vi-VN,vi;q=0.9",
  ["Sec-Fetch-Site"] = "same-origin",
  ["User-Agent"] = "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
    .. "Chrome/124.0.0.0 Mobile Safari/537.36",
}

local form_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

-- The main state: one entry per thread, read back in done().
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

-- Per thread (the globals done() reads with thread:get).
sent, answered, acked = 0, 0, 0
statuses = {}  -- status code -> count of answers that were not acknowledged
new_tokens = {}  -- first-time: the device token of each acknowledged check-in
local tokens = {}
local base_url

function init(args)
  if scenario == "duplicate" or scenario == "onetap" then
    for line in io.lines(os.getenv("DD_TOKENS")) do tokens[#tokens + 1] = line end
  end
  base_url = "http://" .. wrk.host .. ":" .. wrk.port
  page_headers["Origin"] = base_url
end

-- Requests of this thread are numbered id, id + nthreads, id + 2 * nthreads, ... so no two threads
-- make the same one.
local function next_number()
  local n = id + sent * nthreads
  sent = sent + 1
  return n
end

local function form(n, extra)
  local body = "nonce=" .. run .. "-" .. n .. "&scan=&device="
  return extra and body .. "&" .. extra or body
end

local function post(path, body, cookie)
  page_headers["Referer"] = base_url .. path
  page_headers["Cookie"] = cookie
  return wrk.format("POST", path, page_headers, body)
end

function request()
  local n = next_number()
  if scenario == "baseline" then
    return wrk.format("GET", "/?n=" .. run .. "-" .. n)
  elseif scenario == "naive" then
    -- The bare app's one-row SQLModel write: a fresh nonce is the row (unique, so none is stored twice).
    return wrk.format("POST", "/naive", form_headers, "nonce=" .. run .. "-" .. n)
  elseif scenario == "first" then
    local profile = "age_band=" .. bands[n % #bands + 1] .. "&gender=" .. genders[n % #genders + 1]
      .. "&home_unit_id=" .. home .. "&name=&consent=yes"
    return post(paths[1], form(n, profile), nil)
  elseif scenario == "duplicate" then
    -- Phones that checked in at this event already: each scan must be answered "already checked in".
    return post(paths[1], form(n), "dd_device=" .. tokens[n % #tokens + 1])
  else
    -- onetap: each known phone at the first event, then each at the next one, and so on.
    local event = math.floor(n / #tokens) % #paths + 1
    return post(paths[event], form(n), "dd_device=" .. tokens[n % #tokens + 1])
  end
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 and (marker == "" or body:find(marker, 1, true)) then
    acked = acked + 1
    if scenario == "first" then
      local cookie = headers["set-cookie"] or headers["Set-Cookie"] or ""
      local token = cookie:match("dd_device=([^;]+)")
      if token then new_tokens[#new_tokens + 1] = token end
    end
  else
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("DD_OUT"), "w"))
  local total = { sent = 0, answered = 0, acked = 0 }
  local refused = {}
  for _, thread in ipairs(threads) do
    for key in pairs(total) do total[key] = total[key] + thread:get(key) end
    for status, count in pairs(thread:get("statuses")) do
      refused[status] = (refused[status] or 0) + count
    end
    for _, token in ipairs(thread:get("new_tokens")) do out:write("token ", token, "\n") end
  end
  -- Before the run wrk calls request() once in its first thread to check the script's request
  -- (script_verify_request); that request is never sent.
  total.sent = total.sent - 1
  for key, value in pairs(total) do out:write(key, " ", value, "\n") end
  for status, count in pairs(refused) do out:write("status ", status, " ", count, "\n") end
  local errors = summary.errors
  out:write("requests ", summary.requests, "\n")
  out:write("duration_us ", summary.duration, "\n")
  out:write("socket_errors ", errors.connect + errors.read + errors.write + errors.timeout, "\n")
  out:write("p50_us ", latency:percentile(50), "\n")
  out:write("p99_us ", latency:percentile(99), "\n")
  out:close()
end
