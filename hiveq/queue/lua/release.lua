--[[ release: a worker hands leased jobs back at once (shutdown), to the head of their priority.
The hand-back does not count as a delivery.

KEYS  1 leases
ARGV  3 worker id  4 reason  5… pairs: job id, lease token
Returns one code per job: OK, NOT_FOUND or STALE.
Events: job active -> waiting (reason).
]]
local wid, reason = ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', jkey(id), 'state', 'token')
  if not f[1] then
    out[#out + 1] = NOT_FOUND
  elseif f[1] ~= 'active' or f[2] ~= token then
    out[#out + 1] = STALE
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HINCRBY', jkey(id), 'attempts', -1)
    to_waiting(id, 'active', reason, { worker = wid })
    out[#out + 1] = OK
  end
end
return out
