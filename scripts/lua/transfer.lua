-- Moves ARGV[1] units from KEYS[1] to KEYS[2] and returns both balances: a script
-- over two keys, which redis-benchmark names on different corekv shards.
local from = redis.call('DECRBY', KEYS[1], ARGV[1])
local to = redis.call('INCRBY', KEYS[2], ARGV[1])
return {from, to}
