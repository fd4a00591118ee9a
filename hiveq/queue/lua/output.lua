--[[ output: a running agent's streamed output (ctx.emit, the llm agent's tokens) is appended to
the job's output and announced on the event stream. The job keeps the last ARGV 7 bytes: past
that, the front is trimmed (to three quarters of the bound, at a UTF-8 character start) behind
one marker line saying how many bytes were trimmed.

KEYS  1 events      the output event
ARGV  3 worker id  4 job id  5 lease token  6 text (UTF-8)  7 max output bytes kept
Derived keys (prefix + name: same hash tag, so the same slot; see _lib.lua):
  job:<id>       the job's record (lease check; `output_bytes` counts every byte emitted,
                 `output_trimmed` those trimmed), read with a plain HMGET before the first write
  job:<id>:output the kept output (a string); APPEND is the first write, so a foreign type fails
                 the call cleanly
  worker:<id>    the worker's host/pid/client, read with try (foreign: id only)
Returns {code, bytes emitted before this text}: OK; NOT_FOUND; STALE (a stale worker never writes).
Events: output (data {text, at: its byte offset in all the job's output}; worker). Stream only,
not the custody log: the output itself is kept in job:<id>:output.
]]
local wid, id, token, text, max = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local f = redis.call('HMGET', jkey(id), 'state', 'token', 'task')
if not f[1] then return { NOT_FOUND, 0 } end
if f[1] ~= 'active' or f[2] ~= token then return { STALE, 0 } end
local ok = outkey(id)
local len = redis.call('APPEND', ok, text)
local total = redis.call('HINCRBY', jkey(id), 'output_bytes', #text)
local at = total - #text
if len > max then
  local start = len - math.floor(max * 3 / 4)
  -- start at a character, not inside one (UTF-8 continuation bytes are 0x80-0xBF)
  local byte = string.byte(redis.call('GETRANGE', ok, start, start))
  while byte and byte >= 128 and byte < 192 and start < len - 1 do
    start = start + 1
    byte = string.byte(redis.call('GETRANGE', ok, start, start))
  end
  local tail = redis.call('GETRANGE', ok, start, -1)
  local marker = string.format('[hiveq: %d earlier bytes of output trimmed]\n', total - #tail)
  redis.call('SET', ok, marker .. tail)
  redis.call('HSET', jkey(id), 'output_trimmed', total - #tail)
end
emit(by_worker({ type = 'output', job = id, task = f[3], data = { text = text, at = at } }, wid))
return { OK, at }
