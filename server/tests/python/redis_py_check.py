"""What redis-py users do with transactions and pub/sub, against a corekv on PORT.

Run by server/tests/redis_py.rs with redis-py from PyPI. Exits non-zero (an assertion)
on the first difference from what redis-py expects of Redis.
"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])
protocol = int(sys.argv[2]) if len(sys.argv) > 2 else 2
r = redis.Redis(port=port, decode_responses=True, protocol=protocol)
r.flushall()

# The default pipeline is a MULTI/EXEC transaction.
p = r.pipeline()
p.set("a", 1).incr("a").get("a").sadd("s", "x").hset("h", "f", "v").mget("a", "s:none")
assert p.execute() == [True, 2, "2", 1, 1, ["2", None]]

# An error inside EXEC is that command's reply; the others still run.
p = r.pipeline()
p.set("str", "x").incr("str").set("after", "1")
res = p.execute(raise_on_error=False)
assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] is True, res

# A command that fails to queue aborts the transaction.
p = r.pipeline()
p.set("q", 1)
p.execute_command("NOSUCHCOMMAND")
try:
    p.execute()
    raise AssertionError("EXECABORT expected")
except redis.ResponseError as e:
    assert "EXECABORT" in str(e) or "unknown command" in str(e), e
assert r.get("q") is None

# Optimistic locking: r.transaction retries on WatchError; no increment is lost.
def incr(pipe):
    v = int(pipe.get("counter") or 0)
    pipe.multi()
    pipe.set("counter", v + 1)


def worker():
    c = redis.Redis(port=port, protocol=protocol)
    for _ in range(100):
        c.transaction(incr, "counter")


threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert r.get("counter") == "400", r.get("counter")

# A watched key changed by another client: WatchError, nothing written.
with r.pipeline() as pipe:
    pipe.watch("w")
    r.set("w", "other")
    pipe.multi()
    pipe.set("w", "mine")
    try:
        pipe.execute()
        raise AssertionError("WatchError expected")
    except redis.WatchError:
        pass
assert r.get("w") == "other"

# Pub/sub.
ps = r.pubsub()
ps.subscribe("news")
ps.psubscribe("n*")
confirmations = []
deadline = time.time() + 5
while len(confirmations) < 2 and time.time() < deadline:
    m = ps.get_message(timeout=1)
    if m:
        confirmations.append(m["type"])
assert sorted(confirmations) == ["psubscribe", "subscribe"], confirmations
assert r.publish("news", "hi") == 2
assert r.pubsub_numsub("news") == [("news", 1)]
assert r.pubsub_numpat() == 1
got = []
deadline = time.time() + 5
while len(got) < 2 and time.time() < deadline:
    m = ps.get_message(timeout=1)
    if m:
        got.append((m["type"], m["channel"], m["data"]))
assert sorted(got) == [("message", "news", "hi"), ("pmessage", "news", "hi")], got
ps.unsubscribe("news")
ps.punsubscribe("n*")
ps.close()

# A message handler thread, as applications run it.
received = []
ps = r.pubsub(ignore_subscribe_messages=True)
ps.subscribe(**{"jobs": lambda m: received.append(m["data"])})
thread = ps.run_in_thread(sleep_time=0.01)
time.sleep(0.2)
for i in range(50):
    r.publish("jobs", str(i))
deadline = time.time() + 5
while len(received) < 50 and time.time() < deadline:
    time.sleep(0.05)
thread.stop()
assert received == [str(i) for i in range(50)], received

# Scripts: redis-py's Lock (its release, extend and reacquire are Lua scripts) and
# register_script (EVALSHA, SCRIPT LOAD on NOSCRIPT).
r.script_flush()
lock = r.lock("resource", timeout=5)
assert lock.acquire(blocking=False)
assert not r.lock("resource", timeout=5).acquire(blocking=False)
assert lock.owned() and lock.locked()
assert lock.extend(2)
assert 5000 < r.pttl("resource") <= 7000, r.pttl("resource")
assert lock.reacquire()
lock.release()
assert not lock.locked()
try:
    lock.release()
    raise AssertionError("LockNotOwnedError expected")
except redis.exceptions.LockError:
    pass

# Threads contend for one lock around a read-modify-write: no update is lost.
r.set("guarded", 0)
def locked_incr():
    for _ in range(20):
        with r.lock("guard", timeout=5, blocking_timeout=10, sleep=0.001):
            v = int(r.get("guarded"))
            r.set("guarded", v + 1)
threads = [threading.Thread(target=locked_incr) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert r.get("guarded") == "80", r.get("guarded")

add = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
assert add(keys=["scripted"], args=[5]) == 5
assert add(keys=["scripted"], args=[2]) == 7
# Keys on different shards (when there are several): one atomic script.
move = r.register_script(
    "local v = redis.call('get', KEYS[1]) redis.call('del', KEYS[1]) "
    "redis.call('set', KEYS[2], v) return v"
)
r.set("from", "payload")
assert move(keys=["from", "to"]) == "payload"
assert r.get("from") is None and r.get("to") == "payload"
try:
    r.eval("return redis.call('incr', KEYS[1])", 1, "to")
    raise AssertionError("ResponseError expected")
except redis.ResponseError as e:
    assert "not an integer" in str(e), e
print("ok")
