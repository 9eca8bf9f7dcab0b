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
      -- Never shorten it: the hash may hold a plan's other counters (PLAN_LUA), e.g. a quota.
      if redis.call('PTTL', KEYS[1]) < windowMs * 2 then redis.call('PEXPIRE', KEYS[1], windowMs * 2) end
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
-- Globals are slow in Redis's Lua (a guarded table): every library function used is a local.
local floor, ceil, max, min, tonumber, call = math.floor, math.ceil, math.max, math.min, tonumber, redis.call
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local DAY = 86400000
local function floorDiv(a, b)
  local q = floor(a / b)
  if q * b > a then q = q - 1 end
  return q
end
local function daysFromCivil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mm = m + 9
  if m > 2 then mm = m - 3 end
  local doy = floor((153 * mm + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civilFromDays(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
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
  return first + min(anchor, nextFirst - first) - 1
end
-- {period id (first day), end ms}
local function quotaPeriod(spec, anchor)
  local today = floor(now / DAY)
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
 * One decision over every counter of a plan (plan.ts), atomically, with ONE read and at most
 * one write of the subject's state: every counter is a group of fields of one hash.
 * Measured (INFO cpu, 4 counters): a key per counter made Redis work 2.6× the single-counter
 * script (HMGET and HINCRBY per counter); one hash brings it to ~2× (22 against 11 µs).
 * KEYS[1]  sliding window: the hash of every counter (the main window keeps the fast path's
 *          fields w, c, p, so counts carry over when windows come and go);
 *          gcra: the main TAT (a string: the fast path's key), KEYS[2] the hash of the rest
 * ARGV[1]  "1" = peek (count nothing)     ARGV[2] cost      ARGV[3] clock offset ms (0; tests only)
 * ARGV[4]  the counters, in plan order, as JSON made once per plan template (redisLimitStore.ts):
 *          [specs, limits, args, starts, fields]: spec sw|gcra|day|month; arg the window in ms
 *          (rate) or the anchor day (quota); fields every hash field to read, in counter order
 *          (sw: window index, current, previous; gcra: TAT, none for the main one in KEYS[1];
 *          quota: period id, used, added), a counter's first at fields[start + 1].
 * Returns  {allowed 0|1, nowMs, binding (0-based), retryAtMs, remaining1, reset1, remaining2, reset2, ...}
 */
export const PLAN_LUA = `${COMMON}
local cost = tonumber(ARGV[2])
local hash = KEYS[#KEYS]
local gmain = #KEYS == 2
-- C decodes it (cjson) much faster than Lua patterns would parse it: measured 6 µs for 4 counters.
local plan = cjson.decode(ARGV[4])
local specs, limits, args, at, names = plan[1], plan[2], plan[3], plan[4], plan[5]
local n, m = #specs, #names
local unpack, format = unpack, string.format
local v = {}
if m > 0 then v = call('HMGET', hash, unpack(names)) end
local mainTat = nil
if gmain then mainTat = call('GET', KEYS[1]) end
local allowed = true
local binding = 0
local retryAt = 0
-- per counter: remaining if counted, reset if counted, free, standing reset
local rem, rst, free, srst = {}, {}, {}, {}
-- the fields to write if every counter allows; fresh: a window or period begins (the TTL may need to grow)
local w = {}
local nw = 0
-- field (by its index in names) and its new value, to the write
local function put(k, value)
  w[nw + 1] = names[k]
  w[nw + 2] = value
  nw = nw + 2
end
local fresh = false
local ttl = 0
local j = 0
for i = 1, n do
  local spec = specs[i]
  local limit = limits[i]
  local arg = args[i]
  local f = at[i]
  local retry = 0
  local ok
  if spec == 'sw' then
    local windowMs = arg
    local window = floor(now / windowMs)
    local windowStart = window * windowMs
    local previous, current = 0, 0
    local same = false
    local sw, sc, sprev = v[j + 1], v[j + 2], v[j + 3]
    j = j + 3
    if sw then
      local ws = tonumber(sw)
      if ws == window then
        same = true
        previous = tonumber(sprev) or 0
        current = tonumber(sc) or 0
      elseif ws == window - 1 then
        previous = tonumber(sc) or 0
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
    if windowMs * 2 > ttl then ttl = windowMs * 2 end
    if used <= capacity then
      ok = true
      rem[i] = floorDiv(capacity - used, windowMs)
      put(f + 2, current + cost)
      if not same then
        fresh = true
        put(f + 1, window)
        put(f + 3, previous)
      end
    else
      ok = false
      rem[i] = 0
      if limit <= 0 or cost > limit then
        retry = resetMs
      elseif current + cost <= limit then
        retry = windowStart + windowMs - floorDiv((limit - current - cost) * windowMs, previous)
      else
        retry = resetMs + max(0, windowMs - floorDiv((limit - cost) * windowMs, current))
      end
    end
  elseif spec == 'gcra' then
    local windowMs = arg
    local tat
    if gmain and i == 1 then
      tat = tonumber(mainTat)
    else
      j = j + 1
      tat = tonumber(v[j])
    end
    if limit <= 0 or cost > limit then
      ok = false
      rem[i] = 0
      free[i] = 0
      rst[i] = now + windowMs
      srst[i] = now + windowMs
      retry = now + windowMs
    else
      local interval = windowMs / limit
      local slack = min(interval / 2, 1)
      local base = now
      if tat and tat >= now then base = tat end
      local nextTat = base + interval * cost
      local allowAt = nextTat - windowMs
      free[i] = min(limit, max(0, floor((windowMs + slack - (base - now)) / interval)))
      srst[i] = ceil(base)
      if allowAt <= now + slack then
        ok = true
        rem[i] = min(limit - cost, max(0, floor((windowMs + slack - (nextTat - now)) / interval)))
        rst[i] = ceil(nextTat)
        local tv = format('%.17g', nextTat)
        if gmain and i == 1 then
          mainTat = tv
        else
          -- A TAT grows with every request: its hash's TTL must follow.
          fresh = true
          if nextTat - now + 1000 > ttl then ttl = ceil(nextTat - now) + 1000 end
          put(f + 1, tv)
        end
      else
        ok = false
        rem[i] = 0
        rst[i] = ceil(base)
        retry = ceil(allowAt - slack)
      end
    end
  else
    local period, endMs = quotaPeriod(spec, arg)
    local used, added = 0, 0
    local same = false
    local sp, sc, sa = v[j + 1], v[j + 2], v[j + 3]
    j = j + 3
    if sp and tonumber(sp) == period then
      same = true
      used = tonumber(sc) or 0
      added = tonumber(sa) or 0
    end
    local cap = limit + added
    free[i] = max(0, cap - used)
    rst[i] = endMs
    srst[i] = endMs
    if endMs - now + DAY > ttl then ttl = endMs - now + DAY end
    if used + cost <= cap then
      ok = true
      rem[i] = cap - used - cost
      put(f + 2, used + cost)
      if not same then
        fresh = true
        put(f + 1, period)
        put(f + 3, 0)
      end
    else
      ok = false
      rem[i] = 0
      retry = endMs
    end
  end
  if not ok and (allowed or retry > retryAt) then
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
end
if ARGV[1] ~= '1' then
  if gmain then
    call('SET', KEYS[1], mainTat, 'PX', ceil(tonumber(mainTat) - now) + 1000)
  end
  if nw > 0 then
    call('HSET', hash, unpack(w, 1, nw))
    -- Never shorten it: keys of one identity may have plans with other counters (and the fast
    -- path) on the same hash.
    if fresh and call('PTTL', hash) < ttl then call('PEXPIRE', hash, ttl) end
  end
end
return out
`;

/**
 * Reads or changes a quota counter for its current period (admin).
 * KEYS[1]  the subject's plan hash (PLAN_LUA)
 * ARGV[1]  "reset" | "add" | "get" (change nothing)   ARGV[2] N (add)    ARGV[3] clock offset ms    ARGV[4] spec (day|month)
 * ARGV[5]  anchor day    ARGV[6] limit    ARGV[7..9] the quota's fields: period id, used, added
 * Returns  {limit + added, used, remaining, resetMs}
 */
export const QUOTA_CHANGE_LUA = `${COMMON}
local period, endMs = quotaPeriod(ARGV[4], tonumber(ARGV[5]))
local used, added = 0, 0
local s = redis.call('HMGET', KEYS[1], ARGV[7], ARGV[8], ARGV[9])
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
  redis.call('HSET', KEYS[1], ARGV[7], period, ARGV[8], used, ARGV[9], added)
  local ttl = endMs - now + DAY
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local cap = tonumber(ARGV[6]) + added
return {cap, used, math.max(0, cap - used), endMs}
`;
