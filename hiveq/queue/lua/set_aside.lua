--[[ set_aside: move a foreign value off one of hiveq's key names (`hiveq repair`): RENAMENX to
a quarantine name inside the namespace, so the scripts that refused the key work again and
nothing is deleted. Only a value of another type than hiveq's is moved; one step, so a key
that hiveq (or its writer) changed meanwhile is left alone.

KEYS  1 events*     the event below (checked, and written, unless `events` is the key moved)
ARGV  3 the key's suffix after the prefix (e.g. q:demo, leases)  4 the Redis type hiveq keeps
      there
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  <suffix>             the key named by ARGV[3], any key of the namespace: its TYPE is read
                       first; nothing is written unless it holds a type other than ARGV[4]
  aside:<suffix>:<ms>  where it goes (RENAMENX: never over an existing key)
Returns {code, found type, quarantine name}: OK (moved); NOT_FOUND (the key is gone or holds
hiveq's type: nothing to move); DUPLICATE (the quarantine name is taken: call again).
Events: anomaly (the key, the type found, where it went).
]]
local suffix, expected = ARGV[3], ARGV[4]
local key = anykey(suffix)
local found = type_of(key)
if found == 'none' or found == expected then return { NOT_FOUND, found, '' } end
local dest = asidekey(suffix, NOW_TEXT)
if suffix ~= 'events' then check_later('events') end
if redis.call('RENAMENX', key, dest) == 0 then return { DUPLICATE, found, dest } end
if suffix ~= 'events' then
  emit({ type = 'anomaly', reason = key .. ' held a ' .. found .. ', not a ' .. expected ..
    ' (another application using the same key name?); set aside as ' .. dest .. ' by hiveq repair' })
end
return { OK, found, dest }
