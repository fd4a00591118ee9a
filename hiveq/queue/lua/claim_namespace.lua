--[[ claim_namespace: record the namespace's owner, protocol and epoch on first use; afterwards
check that every client speaks the same protocol for the same app and env. The epoch (a random
id drawn by the first client, with `created`) names this life of the namespace: a process that
later finds another epoch, or none, knows Redis lost the data (record_loss.lua).

KEYS  1 meta        the owner record: read, and written on first use only (an `epoch` is added
                    to a record made before epochs existed)
ARGV  3 app  4 env  5 protocol version  6 who (client name, kept as `created_by`)  7 a new epoch id
Derived keys: none.
Returns {code, app, env, protocol, created_ms, epoch}: OK, NAMESPACE_MISMATCH or
PROTOCOL_MISMATCH, with the recorded owner.
Events: none.
]]
local m = redis.call('HMGET', K.meta, 'app', 'env', 'protocol', 'created', 'epoch')
if not m[1] then
  redis.call('HSET', K.meta, 'app', ARGV[3], 'env', ARGV[4], 'protocol', ARGV[5],
    'created', NOW, 'created_by', ARGV[6], 'epoch', ARGV[7])
  return { OK, ARGV[3], ARGV[4], ARGV[5], NOW, ARGV[7] }
end
if m[1] ~= ARGV[3] or m[2] ~= ARGV[4] then return { 5, m[1], m[2], m[3], tonumber(m[4]), m[5] or '' } end
if m[3] ~= ARGV[5] then return { 6, m[1], m[2], m[3], tonumber(m[4]), m[5] or '' } end
if not m[5] then
  redis.call('HSET', K.meta, 'epoch', ARGV[7])
  m[5] = ARGV[7]
end
return { OK, m[1], m[2], m[3], tonumber(m[4]), m[5] }
