"""The rate limiter's fixed window in one Redis round trip per limited request (issue 14).

Flask-Limiter's ``fixed-window`` strategy makes three round trips to Redis for each limited
request: the hit (a Lua INCRBY + EXPIRE), then, only to write the ``X-RateLimit-*`` headers,
a GET of the counter and a TTL of the key. :class:`OneTripFixedWindow` hits with one Lua
script that also returns the counter and the key's TTL, and keeps that window for the rest
of the request, so the headers come from the same answer.

The limit itself is unchanged: the same key, the same atomic INCRBY in Redis shared by every
worker, the same comparison with the limit (a request is refused once the counter passes
it), the same expiry set when the window opens. The headers say what was left right after
this request's own hit (Flask-Limiter documents ``remaining`` as "after deduction for the
current request"; its three-trip version read it again later, after the view). Any other
storage (``memory://`` in tests and development) uses the library's methods unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from flask import g, has_app_context
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from limits.util import WindowStats

#: ``incr_expire.lua`` of the ``limits`` package (the window opens with the first hit), plus
#: the counter's TTL in the same answer.
_HIT_AND_STATS = """
local current = redis.call("incrby", KEYS[1], ARGV[2])
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

_G_KEY = "_market_ratelimit_windows"


class OneTripFixedWindow(FixedWindowRateLimiter):
    """``fixed-window`` whose hit on Redis also answers the window's state (see the module)."""

    def __init__(self, storage: Any) -> None:
        super().__init__(storage)
        self._script: Any = None

    def _hit_script(self, storage: RedisStorage) -> Any:
        if self._script is None:
            self._script = storage.get_connection().register_script(_HIT_AND_STATS)
        return self._script

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        storage = self.storage
        if not isinstance(storage, RedisStorage) or not has_app_context():
            return super().hit(item, *identifiers, cost=cost)
        key = item.key_for(*identifiers)
        try:
            count, ttl = self._hit_script(storage)(
                [storage.prefixed_key(key)], [item.get_expiry(), cost]
            )
        except storage.base_exceptions as exc:  # as the library's storage methods do
            if storage.wrap_exceptions:
                raise StorageError(exc) from exc
            raise
        count, ttl = int(count), int(ttl)
        windows = g.get(_G_KEY)
        if windows is None:
            windows = {}
            setattr(g, _G_KEY, windows)
        windows[key] = WindowStats(max(ttl, 0) + time.time(), max(0, item.amount - count))
        return count <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        if has_app_context():
            window = (g.get(_G_KEY) or {}).get(item.key_for(*identifiers))
            if window is not None:
                return window
        return super().get_window_stats(item, *identifiers)


def install(limiter: Any) -> None:
    """Use :class:`OneTripFixedWindow` for ``limiter`` (a bound Flask-Limiter) if it runs the
    library's ``fixed-window`` strategy (the default; another configured strategy is kept)."""
    current = limiter._limiter  # Flask-Limiter builds it in init_app from RATELIMIT_STRATEGY
    if type(current) is FixedWindowRateLimiter:
        limiter._limiter = OneTripFixedWindow(current.storage)
