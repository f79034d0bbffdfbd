"""Per-channel send rate limits: a token bucket shared by every worker.

Each channel has a bucket holding up to `burst` tokens (one second's worth: the channel's
`effective_rate_per_second`), refilled continuously at that rate. Sending a message takes one.
When the bucket is empty the caller *reserves* the next free slot instead: the tokens go
negative and the answer is how long to wait. A queue of messages therefore leaves at exactly the
channel's rate, each task sleeping (a Celery countdown) until its own slot, instead of every
waiting task waking up each second to fight over one token. Reservations reach at most
`horizon` seconds ahead; beyond that nothing is taken and the caller is told to ask again later.

The bucket lives in Redis (`settings.RATE_LIMIT_REDIS_URL`) and is updated by one Lua script,
atomically, with Redis's own clock, so workers on several machines share it. The value
"memory" keeps buckets in the process instead: development without Redis (`make run`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from redis.exceptions import RedisError

# Reservations are made at most this many seconds ahead.
DEFAULT_HORIZON_SECONDS = 300.0

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst (capacity), horizon (s).
# Returns {reserved (1/0), wait in seconds as a string (Lua numbers become integers)}.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > horizon then
  return {0, tostring(wait - horizon)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
-- Once full again the bucket is the same as no bucket: let the key go.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {1, tostring(wait)}
"""


# What `reserve` raises when the shared store cannot be reached.
UNAVAILABLE = (RedisError, OSError)


@dataclass(frozen=True)
class Reservation:
    """The answer of the bucket.

    - reserved and wait == 0: send now;
    - reserved and wait > 0: a slot is held `wait` seconds from now; send then, without asking
      again;
    - not reserved: the bucket is booked beyond the horizon; ask again in about `wait` seconds.
    """

    reserved: bool
    wait: float

    @property
    def send_now(self) -> bool:
        return self.reserved and self.wait <= 0


def _key(channel) -> str:
    prefix = getattr(settings, "RATE_LIMIT_KEY_PREFIX", "salesos:rate")
    return f"{prefix}:{channel.tenant_id}:{channel.pk}"


def horizon() -> float:
    return float(getattr(settings, "RATE_LIMIT_HORIZON_SECONDS", DEFAULT_HORIZON_SECONDS))


def reserve(channel) -> Reservation:
    """Take one send from the channel's bucket (or book the next slot)."""
    rate = float(channel.effective_rate_per_second)
    return backend().reserve(_key(channel), rate=rate, burst=max(rate, 1.0), horizon=horizon())


def backend():
    return _backend_for(settings.RATE_LIMIT_REDIS_URL)


@cache
def _backend_for(url: str):
    if url.strip().lower() == "memory":
        return MemoryBuckets()
    return RedisBuckets(url)


class RedisBuckets:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.script = self.client.register_script(TOKEN_BUCKET_LUA)

    def reserve(self, key: str, *, rate: float, burst: float, horizon: float) -> Reservation:
        reserved, wait = self.script(keys=[key], args=[repr(rate), repr(burst), repr(horizon)])
        return Reservation(reserved=bool(int(reserved)), wait=float(wait))

    def reset(self, key: str) -> None:
        self.client.delete(key)


class MemoryBuckets:
    """The same algorithm in the process (one process only: development and tests)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}

    def reserve(self, key: str, *, rate: float, burst: float, horizon: float) -> Reservation:
        with self.lock:
            now = time.monotonic()
            tokens, ts = self.buckets.get(key, (burst, now))
            if now > ts:
                tokens, ts = min(burst, tokens + (now - ts) * rate), now
            wait = (1 - tokens) / rate if tokens < 1 else 0.0
            if wait > horizon:
                return Reservation(reserved=False, wait=wait - horizon)
            self.buckets[key] = (tokens - 1, ts)
            return Reservation(reserved=True, wait=wait)

    def reset(self, key: str | None = None) -> None:
        with self.lock:
            if key is None:
                self.buckets.clear()
            else:
                self.buckets.pop(key, None)


def reset(channel=None) -> None:
    """Forget a channel's bucket (all in-process buckets when no channel is given)."""
    buckets = backend()
    if channel is not None:
        buckets.reset(_key(channel))
    elif isinstance(buckets, MemoryBuckets):
        buckets.reset()
