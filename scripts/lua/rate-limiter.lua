-- A fixed-window rate limiter, three commands per call: the window's count, its
-- expiry set once, and the time left. KEYS[1] the window, ARGV[1] its length in s.
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
local ttl = redis.call('TTL', KEYS[1])
return {n, ttl}
