--[[ report_usage: an agent reports what a leased job used (tokens, US dollars); the job's token
reservation (made by claim from its estimate_tokens) covers it first, the rest is added to every
limit key of the job (docs/limits.md). Not a state transition; atomic so that parallel jobs'
budgets add up exactly and a stale worker cannot report on a job it no longer holds.

KEYS  (none)
ARGV  3 job id  4 lease token  5 tokens used (a whole number >= 0)  6 US dollars used (>= 0)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       read with a plain HMGET before the first write (a foreign type fails cleanly);
                 `lres` (its reservation left), `used_tokens`, `used_usd` written
  lim:c:<key>    each of its limit keys' counters: `tu` (tokens this minute, window `tw`), `bt`,
                 `bu` (budget used), with try (foreign: not counted, the call carries on)
Returns {code}: OK, NOT_FOUND or STALE.
Events: none (usage shows in the job record and in `GET /limits`).
]]
local id, token = ARGV[3], ARGV[4]
local tokens, usd = math.max(0, math.floor(tonumber(ARGV[5]) or 0)), math.max(0, tonumber(ARGV[6]) or 0)
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'lkeys', 'lres')
if not f[1] then return { NOT_FOUND } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE } end
local res = tonumber(f[4]) or 0
local covered = math.min(res, tokens)
local extra = tokens - covered
if tokens > 0 then redis.call('HINCRBY', jkey(id), 'used_tokens', tokens) end
if usd > 0 then redis.call('HINCRBYFLOAT', jkey(id), 'used_usd', usd) end
if covered > 0 then redis.call('HSET', jkey(id), 'lres', res - covered) end
local tw = NOW - NOW % 60000
for k in string.gmatch(f[3] or '', '%S+') do
  local c = try('HGET', limkey(k), 'tw')
  if c ~= FOREIGN then
    if extra > 0 then
      if tonumber(c) == tw then
        redis.call('HINCRBY', limkey(k), 'tu', extra)
      else
        redis.call('HSET', limkey(k), 'tw', tw, 'tu', extra)
      end
      redis.call('HINCRBY', limkey(k), 'bt', extra)
    end
    if usd > 0 then redis.call('HINCRBYFLOAT', limkey(k), 'bu', usd) end
  end
end
return { OK }
