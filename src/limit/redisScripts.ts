/**
 * The Lua scripts of the limiter, each registered once with ioredis `defineCommand`
 * (one EVALSHA per decision). They are ports of `algorithms.ts`; keep them in step.
 * Redis's own clock (`TIME`) is the clock, so gateway clocks never matter.
 */

/**
 * Sliding window.
 * KEYS[1]  hash {w = window index, c = current count, p = previous count}
 * ARGV[1]  limit          ARGV[2] window in ms          ARGV[3] "1" = peek (count nothing)
 * Returns  {allowed 0|1, remaining, resetMs, retryAtMs, nowMs}
 */
export const SLIDING_WINDOW_LUA = `
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
local used = previous * (windowMs - elapsed) + (current + 1) * windowMs
local capacity = limit * windowMs
if used <= capacity then
  if ARGV[3] ~= '1' then
    if sameWindow then
      -- The TTL set when this window began (2 windows) still covers it and the next.
      redis.call('HINCRBY', KEYS[1], 'c', 1)
    else
      redis.call('HSET', KEYS[1], 'w', window, 'c', current + 1, 'p', previous)
      redis.call('PEXPIRE', KEYS[1], windowMs * 2)
    end
  end
  return {1, floorDiv(capacity - used, windowMs), resetMs, 0, now}
end
local retryAt
if limit <= 0 then
  retryAt = resetMs
elseif current + 1 <= limit then
  retryAt = windowStart + windowMs - floorDiv((limit - current - 1) * windowMs, previous)
else
  retryAt = resetMs + math.max(0, windowMs - floorDiv((limit - 1) * windowMs, current))
end
return {0, 0, resetMs, retryAt, now}
`;

/**
 * GCRA.
 * KEYS[1]  the theoretical arrival time in ms (a string, full double precision)
 * ARGV[1]  limit          ARGV[2] window in ms          ARGV[3] "1" = peek (count nothing)
 * Returns  {allowed 0|1, remaining, resetMs, retryAtMs, nowMs}
 */
export const GCRA_LUA = `
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if limit <= 0 then
  return {0, 0, now + windowMs, now + windowMs, now}
end
local interval = windowMs / limit
local slack = math.min(interval / 2, 1)
local tat = tonumber(redis.call('GET', KEYS[1]))
local base = now
if tat and tat >= now then base = tat end
local nextTat = base + interval
local allowAt = nextTat - windowMs
if allowAt <= now + slack then
  if ARGV[3] ~= '1' then
    redis.call('SET', KEYS[1], string.format('%.17g', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
  end
  local remaining = math.min(limit - 1, math.max(0, math.floor((windowMs + slack - (nextTat - now)) / interval)))
  return {1, remaining, math.ceil(nextTat), 0, now}
end
return {0, 0, math.ceil(base), math.ceil(allowAt - slack), now}
`;
