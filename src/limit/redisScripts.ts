/**
 * The Lua scripts of the limiter, each registered once with ioredis `defineCommand`.
 * `PLAN_LUA` is a port of `algorithms.ts`, `calendar.ts` and `MemoryLimitStore.decideSync`;
 * keep them in step (the contract suite runs both against the same expectations).
 * Redis's own clock (`TIME`) is the clock, so gateway clocks never matter.
 */

/**
 * The fast path: a plan of one rate counter (a plain one-window tier), as before SPEC §9 —
 * the same arithmetic as PLAN_LUA for one counter, without its loop, tables and calendar
 * (measured: PLAN_LUA costs Redis about 50 % more CPU per call for one counter).
 * Sliding window.
 * KEYS[1]  hash {w = window index, c = current count, p = previous count}
 * ARGV[1]  limit    ARGV[2] window in ms    ARGV[3] "1" = peek    ARGV[4] cost    ARGV[5] clock offset ms (tests only)
 * Returns  {allowed 0|1, remaining (refused: what is free as things stand), resetMs, retryAtMs, nowMs}
 */
export const SLIDING_WINDOW_LUA = `
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local cost = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])
local function floorDiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 end
  return q
end
local window = math.floor(now / windowMs)
local windowStart = window * windowMs
local previous, current = 0, 0
local sameWindow = false
local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
if s[1] then
  local w = tonumber(s[1])
  if w == window then
    sameWindow = true
    previous = tonumber(s[3])
    current = tonumber(s[2])
  elseif w == window - 1 then
    previous = tonumber(s[2])
  end
end
local elapsed = now - windowStart
local resetMs = windowStart + windowMs
local used = previous * (windowMs - elapsed) + (current + cost) * windowMs
local capacity = limit * windowMs
if used <= capacity then
  if ARGV[3] ~= '1' then
    if sameWindow then
      -- The TTL set when this window began (2 windows) still covers it and the next.
      redis.call('HINCRBY', KEYS[1], 'c', cost)
    else
      redis.call('HSET', KEYS[1], 'w', window, 'c', current + cost, 'p', previous)
      redis.call('PEXPIRE', KEYS[1], windowMs * 2)
    end
  end
  return {1, floorDiv(capacity - used, windowMs), resetMs, 0, now}
end
local unused = capacity - used + cost * windowMs
local free = 0
if unused > 0 then free = floorDiv(unused, windowMs) end
local retryAt
if limit <= 0 or cost > limit then
  retryAt = resetMs
elseif current + cost <= limit then
  retryAt = windowStart + windowMs - floorDiv((limit - current - cost) * windowMs, previous)
else
  retryAt = resetMs + math.max(0, windowMs - floorDiv((limit - cost) * windowMs, current))
end
return {0, free, resetMs, retryAt, now}
`;

/**
 * The fast path's GCRA (see SLIDING_WINDOW_LUA).
 * KEYS[1]  the theoretical arrival time in ms (a string, full double precision)
 * ARGV[1]  limit    ARGV[2] window in ms    ARGV[3] "1" = peek    ARGV[4] cost    ARGV[5] clock offset ms (tests only)
 * Returns  {allowed 0|1, remaining (refused: what is free as things stand), resetMs, retryAtMs, nowMs}
 */
export const GCRA_LUA = `
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local cost = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])
if limit <= 0 or cost > limit then
  return {0, 0, now + windowMs, now + windowMs, now}
end
local interval = windowMs / limit
local slack = math.min(interval / 2, 1)
local tat = tonumber(redis.call('GET', KEYS[1]))
local base = now
if tat and tat >= now then base = tat end
local nextTat = base + interval * cost
local allowAt = nextTat - windowMs
if allowAt <= now + slack then
  if ARGV[3] ~= '1' then
    redis.call('SET', KEYS[1], string.format('%.17g', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
  end
  local remaining = math.min(limit - cost, math.max(0, math.floor((windowMs + slack - (nextTat - now)) / interval)))
  return {1, remaining, math.ceil(nextTat), 0, now}
end
local free = math.min(limit, math.max(0, math.floor((windowMs + slack - (base - now)) / interval)))
return {0, free, math.ceil(base), math.ceil(allowAt - slack), now}
`;

/** Shared by PLAN_LUA and QUOTA_CHANGE_LUA: the clock, floorDiv and the quota period (calendar.ts). */
const COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local DAY = 86400000
local function floorDiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 end
  return q
end
local function daysFromCivil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mm = m + 9
  if m > 2 then mm = m - 3 end
  local doy = math.floor((153 * mm + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civilFromDays(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp - 9
  if mp < 10 then m = mp + 3 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function anchoredDay(y, m, anchor)
  local first = daysFromCivil(y, m, 1)
  local nextFirst
  if m == 12 then nextFirst = daysFromCivil(y + 1, 1, 1) else nextFirst = daysFromCivil(y, m + 1, 1) end
  return first + math.min(anchor, nextFirst - first) - 1
end
-- {period id (first day), end ms}
local function quotaPeriod(spec, anchor)
  local today = math.floor(now / DAY)
  if spec == 'day' then return today, (today + 1) * DAY end
  local y, m = civilFromDays(today)
  local start = anchoredDay(y, m, anchor)
  local finish
  if today >= start then
    if m == 12 then finish = anchoredDay(y + 1, 1, anchor) else finish = anchoredDay(y, m + 1, anchor) end
  else
    finish = start
    if m == 1 then start = anchoredDay(y - 1, 12, anchor) else start = anchoredDay(y, m - 1, anchor) end
  end
  return start, finish * DAY
end
`;

/**
 * One decision over every counter of a plan (plan.ts), atomically.
 * KEYS[i]  counter i's state: sw → hash {w window index, c current, p previous};
 *          gcra → string TAT ms; day|month → hash {p period id, c used, a added}
 * ARGV[1]  "1" = peek (count nothing)     ARGV[2] cost      ARGV[3] clock offset ms (0; tests only)
 * ARGV[4]  the counters, in KEYS order, as one string "spec:limit:arg|spec:limit:arg|…": spec sw|gcra|day|month,
 *          arg the window in ms (rate) or the anchor day (quota). One argument, made once per plan template:
 *          fewer arguments to encode per call than three per counter.
 * Returns  {allowed 0|1, nowMs, binding (0-based), retryAtMs, remaining1, reset1, remaining2, reset2, ...}
 */
export const PLAN_LUA = `${COMMON}
local cost = tonumber(ARGV[2])
local n = #KEYS
local specs, limits, args = {}, {}, {}
do
  local i = 0
  for sp, l, a in string.gmatch(ARGV[4], '(%a+):(%d+):(%d+)') do
    i = i + 1
    specs[i] = sp
    limits[i] = tonumber(l)
    args[i] = tonumber(a)
  end
end
local allowed = true
local binding = 0
local retryAt = 0
-- per counter: allowed, remaining if counted, reset if counted, free, standing reset, write kind, a, b, c
local ok, rem, rst, free, srst, wk, wa, wb, wc = {}, {}, {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local spec = specs[i]
  local limit = limits[i]
  local arg = args[i]
  local retry = 0
  if spec == 'sw' then
    local windowMs = arg
    local window = math.floor(now / windowMs)
    local windowStart = window * windowMs
    local previous, current = 0, 0
    local same = false
    local s = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    if s[1] then
      local w = tonumber(s[1])
      if w == window then
        same = true
        previous = tonumber(s[3])
        current = tonumber(s[2])
      elseif w == window - 1 then
        previous = tonumber(s[2])
      end
    end
    local elapsed = now - windowStart
    local resetMs = windowStart + windowMs
    local used = previous * (windowMs - elapsed) + (current + cost) * windowMs
    local capacity = limit * windowMs
    local unused = capacity - used + cost * windowMs
    free[i] = 0
    if unused > 0 then free[i] = floorDiv(unused, windowMs) end
    rst[i] = resetMs
    srst[i] = resetMs
    if used <= capacity then
      ok[i] = true
      rem[i] = floorDiv(capacity - used, windowMs)
      if same then wk[i] = 'swinc' else wk[i] = 'swset' end
      wa[i] = window
      wb[i] = current + cost
      wc[i] = previous
    else
      ok[i] = false
      rem[i] = 0
      if limit <= 0 or cost > limit then
        retry = resetMs
      elseif current + cost <= limit then
        retry = windowStart + windowMs - floorDiv((limit - current - cost) * windowMs, previous)
      else
        retry = resetMs + math.max(0, windowMs - floorDiv((limit - cost) * windowMs, current))
      end
    end
  elseif spec == 'gcra' then
    local windowMs = arg
    if limit <= 0 or cost > limit then
      ok[i] = false
      rem[i] = 0
      free[i] = 0
      rst[i] = now + windowMs
      srst[i] = now + windowMs
      retry = now + windowMs
    else
      local interval = windowMs / limit
      local slack = math.min(interval / 2, 1)
      local tat = tonumber(redis.call('GET', KEYS[i]))
      local base = now
      if tat and tat >= now then base = tat end
      local nextTat = base + interval * cost
      local allowAt = nextTat - windowMs
      free[i] = math.min(limit, math.max(0, math.floor((windowMs + slack - (base - now)) / interval)))
      srst[i] = math.ceil(base)
      if allowAt <= now + slack then
        ok[i] = true
        rem[i] = math.min(limit - cost, math.max(0, math.floor((windowMs + slack - (nextTat - now)) / interval)))
        rst[i] = math.ceil(nextTat)
        wk[i] = 'tat'
        wa[i] = nextTat
      else
        ok[i] = false
        rem[i] = 0
        rst[i] = math.ceil(base)
        retry = math.ceil(allowAt - slack)
      end
    end
  else
    local period, endMs = quotaPeriod(spec, arg)
    local used, added = 0, 0
    local same = false
    local s = redis.call('HMGET', KEYS[i], 'p', 'c', 'a')
    if s[1] and tonumber(s[1]) == period then
      same = true
      used = tonumber(s[2]) or 0
      added = tonumber(s[3]) or 0
    end
    local cap = limit + added
    free[i] = math.max(0, cap - used)
    rst[i] = endMs
    srst[i] = endMs
    if used + cost <= cap then
      ok[i] = true
      rem[i] = cap - used - cost
      if same then wk[i] = 'qinc' else wk[i] = 'qset' end
      wa[i] = period
      wb[i] = endMs
    else
      ok[i] = false
      rem[i] = 0
      retry = endMs
    end
  end
  if not ok[i] and (allowed or retry > retryAt) then
    binding = i - 1
    retryAt = retry
    allowed = false
  end
end
local out = {0, now, binding, retryAt}
if not allowed then
  for i = 1, n do
    out[3 + 2 * i] = free[i]
    out[4 + 2 * i] = srst[i]
  end
  return out
end
out[1] = 1
out[4] = 0
local fewest = nil
for i = 1, n do
  out[3 + 2 * i] = rem[i]
  out[4 + 2 * i] = rst[i]
  if fewest == nil or rem[i] < fewest then
    fewest = rem[i]
    out[3] = i - 1
  end
  if ARGV[1] ~= '1' then
    local k = wk[i]
    if k == 'swinc' then
      -- The TTL set when this window began (2 windows) still covers it and the next.
      redis.call('HINCRBY', KEYS[i], 'c', cost)
    elseif k == 'swset' then
      local windowMs = args[i]
      redis.call('HSET', KEYS[i], 'w', wa[i], 'c', wb[i], 'p', wc[i])
      redis.call('PEXPIRE', KEYS[i], windowMs * 2)
    elseif k == 'tat' then
      redis.call('SET', KEYS[i], string.format('%.17g', wa[i]), 'PX', math.ceil(wa[i] - now) + 1000)
    elseif k == 'qinc' then
      redis.call('HINCRBY', KEYS[i], 'c', cost)
    elseif k == 'qset' then
      redis.call('HSET', KEYS[i], 'p', wa[i], 'c', cost, 'a', 0)
      redis.call('PEXPIRE', KEYS[i], wb[i] - now + DAY)
    end
  end
end
return out
`;

/**
 * Reads or changes a quota counter for its current period (admin).
 * KEYS[1]  the quota hash {p, c, a}
 * ARGV[1]  "reset" | "add" | "get" (change nothing)   ARGV[2] N (add)    ARGV[3] clock offset ms    ARGV[4] spec (day|month)    ARGV[5] anchor day    ARGV[6] limit
 * Returns  {limit + added, used, remaining, resetMs}
 */
export const QUOTA_CHANGE_LUA = `${COMMON}
local period, endMs = quotaPeriod(ARGV[4], tonumber(ARGV[5]))
local used, added = 0, 0
local s = redis.call('HMGET', KEYS[1], 'p', 'c', 'a')
if s[1] and tonumber(s[1]) == period then
  used = tonumber(s[2]) or 0
  added = tonumber(s[3]) or 0
end
if ARGV[1] ~= 'get' then
  if ARGV[1] == 'reset' then
    used, added = 0, 0
  else
    added = added + tonumber(ARGV[2])
  end
  redis.call('HSET', KEYS[1], 'p', period, 'c', used, 'a', added)
  redis.call('PEXPIRE', KEYS[1], endMs - now + DAY)
end
local cap = tonumber(ARGV[6]) + added
return {cap, used, math.max(0, cap - used), endMs}
`;
