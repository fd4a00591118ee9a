--[[ set_limit: create, change or remove one limit rule (docs/limits.md). Not a job transition;
atomic so that the next claim sees the whole rule, and every waiting worker is woken to see it.

KEYS  1 limits      the rules: limit key (or pattern ending in *) -> rule JSON
      2 agents      every agent ever enqueued to: each is woken
      3 events      one `limit` event
ARGV  3 limit key (or pattern)  4 rule JSON (stored as is; hiveq/contract/limit_rules.py
      LimitRule.stored), or '' to remove the rule  5 who (client name / host:pid)
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  wake:<agent>   marked for every agent (try: a foreign one is reported, not woken)
Returns {code, existed}: OK; existed 1 when the key had a rule before (0: it had none).
Events: limit (reason: what was set or removed, and by whom; data: the rule or null).
The counters of the keys under a rule (lim:c:<key> …) are kept when it changes or goes: usage
and budgets spent so far still count if the rule comes back.
]]
local key, rule, who = ARGV[3], ARGV[4], ARGV[5]
local existed = redis.call('HEXISTS', K.limits, key)
if rule == '' then
  redis.call('HDEL', K.limits, key)
else
  redis.call('HSET', K.limits, key, rule)
end
for _, agent in ipairs(redis.call('SMEMBERS', K.agents)) do wake(agent) end
emit({ type = 'limit', reason = (rule == '' and ('limit ' .. key .. ' removed') or
  ('limit ' .. key .. ' set')) .. ' by ' .. who, data = rule ~= '' and cjson.decode(rule) or cjson.null })
return { OK, existed }
