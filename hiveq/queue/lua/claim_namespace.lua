--[[ claim_namespace: record the namespace's owner and protocol on first use; afterwards check
that every client speaks the same protocol for the same app and env.

KEYS  1 meta        the owner record: read, and written on first use only
ARGV  3 app  4 env  5 protocol version  6 who (client name, kept as `created_by`)
Derived keys: none.
Returns {code, app, env, protocol, created_ms}: OK, NAMESPACE_MISMATCH or PROTOCOL_MISMATCH,
with the recorded owner.
Events: none.
]]
local m = redis.call('HMGET', K.meta, 'app', 'env', 'protocol', 'created')
if not m[1] then
  redis.call('HSET', K.meta, 'app', ARGV[3], 'env', ARGV[4], 'protocol', ARGV[5],
    'created', NOW, 'created_by', ARGV[6])
  return { OK, ARGV[3], ARGV[4], ARGV[5], NOW }
end
if m[1] ~= ARGV[3] or m[2] ~= ARGV[4] then return { 5, m[1], m[2], m[3], tonumber(m[4]) } end
if m[3] ~= ARGV[5] then return { 6, m[1], m[2], m[3], tonumber(m[4]) } end
return { OK, m[1], m[2], m[3], tonumber(m[4]) }
