package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each touches one key (KEYS[1]), so it runs on the node
// that owns the key's slot in a cluster, atomically. Times are unix
// milliseconds in Redis's frame: the store's clock plus the offset it
// measured (see clock.go). A key is live when it has no expiry (-1) or its
// PEXPIRETIME is after ARGV's "now".

// getScript returns false for a missing key, else {value, PEXPIRETIME}:
// GET and PEXPIRETIME in one round trip and one atomic step.
var getScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PEXPIRETIME', KEYS[1])}
`)

// casScript writes only when the stored state is still the one the caller
// computed from.
//
//	ARGV[1] "0": expect no live record; "1": expect a live record whose
//	        value is ARGV[2] byte for byte
//	ARGV[3] now
//	ARGV[4] "s": SET ARGV[5] with PXAT ARGV[6]; "d": DEL; "c": only check
//
// It returns {1} when the expectation held (and the action ran), else {0}
// when there is no live record now, or {0, value, PEXPIRETIME} with the
// live record, so the caller can retry without another read.
var casScript = redis.NewScript(`
local k = KEYS[1]
local cur = redis.call('GET', k)
local exp = -2
if cur then
  exp = redis.call('PEXPIRETIME', k)
  if exp ~= -1 and exp <= tonumber(ARGV[3]) then cur = false end
end
local match
if ARGV[1] == '0' then match = not cur else match = (cur == ARGV[2]) end
if not match then
  if cur then return {0, cur, exp} end
  return {0}
end
local act = ARGV[4]
if act == 's' then
  redis.call('SET', k, ARGV[5], 'PXAT', ARGV[6])
elseif act == 'd' then
  redis.call('DEL', k)
end
return {1}
`)

// touchScript moves a live key's expiry to ARGV[2] (PEXPIREAT: the value
// is not rewritten, as connect-redis's touch), or deletes it when ARGV[3]
// is "1" (the new expiry is not after now). It returns 0 and changes
// nothing when there is no live key: a touch never creates one.
//
//	ARGV[1] now, ARGV[2] new PEXPIREAT, ARGV[3] "1" to delete
var touchScript = redis.NewScript(`
local exp = redis.call('PEXPIRETIME', KEYS[1])
if exp == -2 then return 0 end
if exp ~= -1 and exp <= tonumber(ARGV[1]) then return 0 end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`)

// reapScript deletes the key if it has an expiry and that expiry is not
// after ARGV[1] (now). Re-checked here, so a key touched or rewritten
// after the scan read its expiry is kept. It returns 1 when it deleted.
var reapScript = redis.NewScript(`
local exp = redis.call('PEXPIRETIME', KEYS[1])
if exp >= 0 and exp <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)
