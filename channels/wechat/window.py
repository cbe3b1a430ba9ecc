"""Per-citizen state in Redis: the customer-service window, subscribe consents, held messages.

A citizen's message (or another action of theirs) opens a window of ``hours`` in which at most
``messages`` customer-service messages may be sent. A message that cannot go — window closed and
no subscribe consent left — is *held* and re-queued at the citizen's next contact. Holding and
opening are atomic against each other (both are Lua scripts), so a message is never held
just after the window re-opened and then forgotten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from channels.base import RUN_FLAT_LUA, OutboundMessage, Then
from channels.group_commit import GroupCommit

_HOLD = """
local last_in = redis.call('HGET', KEYS[1], 'last_in') or ''
if last_in ~= ARGV[1] then return 0 end
if ARGV[4] == '1' and last_in ~= '' then redis.call('HSET', KEYS[1], 'sent', ARGV[5]) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if tonumber(ARGV[6]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
return 1
"""

_MARK_CLOSED = """
if (redis.call('HGET', KEYS[1], 'last_in') or '') == ARGV[1] and ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'sent', ARGV[2])
  return 1
end
return 0
"""

_RUN = RUN_FLAT_LUA + "return run_flat(ARGV, 1)"

_TAKE_CONSENT = """
local left = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if left <= tonumber(ARGV[2] or '0') then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
return 1
"""


MEDIA_QUEUE = "hl:wx:media:queue"
"""Media references (``wechat:<account>:<media_id>``) waiting to be fetched by a background task."""
MEDIA_RETRY = "hl:wx:media:retry"
"""Fetches that failed for a passing reason: ``<attempt>|<ref>`` scored by when to try again."""


def _oldest_first(held: dict[str, str]) -> list[str]:
    """Held messages (JSON) by field name, which starts with the time they were held."""
    return [held[k] for k in sorted(held)]


class StateUnavailable(Exception):
    """Redis failed while reading or writing a citizen's window state."""


@dataclass
class WindowState:
    last_in: str  # the raw value, used to detect a new contact between read and hold
    sent: int
    open: bool


class Windows:
    def __init__(self, redis: Any, hours: float = 48, messages: int = 5, held_days: float = 30) -> None:
        self.redis = redis
        self.seconds = hours * 3600
        self.messages = messages
        # what waits for a citizen who never comes back is dropped this long after the last message
        # held (0: kept until they do): the ticket's status can still be asked for (查询)
        self.held_seconds = int(held_days * 86400)
        self._hold = redis.register_script(_HOLD)
        self._take = redis.register_script(_TAKE_CONSENT)
        self._run = GroupCommit(redis, _RUN, timeout_s=1.5)  # contacts that are not messages (menu clicks)
        self._mark_closed = redis.register_script(_MARK_CLOSED)

    @staticmethod
    def _win(account: str, openid: str) -> str:
        return f"hl:wx:win:{account}:{openid}"

    @staticmethod
    def _pending(account: str, openid: str) -> str:
        return f"hl:wx:pending:{account}:{openid}"

    @staticmethod
    def _consent(account: str, openid: str) -> str:
        return f"hl:wx:consent:{account}:{openid}"

    @staticmethod
    def _page(account: str, openid: str) -> str:
        return f"hl:wx:page:{account}:{openid}"

    def contact_commands(self, account: str, openid: str, media: list[str] | None = None) -> list[list[Any]]:
        """What a contact writes, atomically: a fresh window, the media to fetch; the last command
        reads the held messages (``held_in`` turns its reply into a list)."""
        win = self._win(account, openid)
        commands: list[list[Any]] = [
            ["HSET", win, "last_in", repr(time.time()), "sent", 0],
            ["EXPIRE", win, int(self.seconds) + 3600],
        ]
        if media:
            commands.append(["RPUSH", MEDIA_QUEUE, *media])
        commands.append(["HGETALL", self._pending(account, openid)])
        return commands

    @staticmethod
    def held_in(reply: Any) -> list[str]:
        """The held messages (JSON) in a ``contact_commands`` reply, oldest first."""
        return _oldest_first(dict(zip(reply[::2], reply[1::2], strict=True)) if reply else {})

    async def contact(self, account: str, openid: str, media: list[str] | None = None) -> list[str]:
        """The citizen acted without a message (a menu click): open a fresh window; returns the
        held messages to re-queue and then ``release`` (so a failure between the two loses
        nothing). A message's contact rides on its enqueue instead (``contact_commands``)."""
        try:
            reply = await self._run.call([], Then(self.contact_commands(account, openid, media)).flat())
        except (RedisError, OSError, TimeoutError) as exc:
            raise StateUnavailable(str(exc)) from exc
        return self.held_in(reply)

    async def close(self, account: str, openid: str) -> None:
        """The citizen left (unsubscribed): no customer-service message until they come back."""
        try:
            await self.redis.delete(self._win(account, openid))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def state(self, account: str, openid: str) -> WindowState:
        try:
            data = await self.redis.hgetall(self._win(account, openid))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc
        last_in = data.get("last_in", "")
        sent = int(data.get("sent") or 0)
        is_open = bool(last_in) and time.time() - float(last_in) < self.seconds and sent < self.messages
        return WindowState(last_in=last_in, sent=sent, open=is_open)

    async def closed_by_wechat(self, account: str, openid: str, seen: WindowState) -> None:
        """WeChat said the window is closed (45015/45047): record it, unless the citizen wrote since."""
        try:
            await self._mark_closed(keys=[self._win(account, openid)], args=[seen.last_in, self.messages])
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def count_sent(self, account: str, openid: str) -> None:
        try:
            await self.redis.hincrby(self._win(account, openid), "sent", 1)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def hold(
        self, account: str, openid: str, out: OutboundMessage, seen: WindowState, *, closed_by_wechat: bool
    ) -> bool:
        """Keep ``out`` for the next contact; False if the citizen made contact since ``seen`` (the
        window is open again: send now instead). ``closed_by_wechat`` marks our record closed."""
        try:
            held = await self._hold(
                keys=[self._win(account, openid), self._pending(account, openid)],
                args=[
                    seen.last_in,
                    order_key(out),
                    out.model_dump_json(),
                    "1" if closed_by_wechat else "0",
                    self.messages,
                    self.held_seconds,
                ],
            )
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc
        return bool(held)

    async def release(self, account: str, openid: str, out: OutboundMessage) -> None:
        """Forget a held message once it was re-queued."""
        try:
            await self.redis.hdel(self._pending(account, openid), order_key(out))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def held(self, account: str, openid: str) -> list[str]:
        try:
            held: dict[str, str] = await self.redis.hgetall(self._pending(account, openid))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc
        return _oldest_first(held)

    # --- subscribe-message consents -------------------------------------------------------
    async def add_consents(self, account: str, openid: str, template_ids: list[str]) -> None:
        if not template_ids:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for template_id in template_ids:
                    pipe.hincrby(self._consent(account, openid), template_id, 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def take_consent(self, account: str, openid: str, template_id: str, *, keep: int = 0) -> bool:
        """Spend one consent for ``template_id`` if more than ``keep`` are left (atomic)."""
        try:
            return bool(await self._take(keys=[self._consent(account, openid)], args=[template_id, keep]))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def give_back_consent(self, account: str, openid: str, template_id: str) -> None:
        try:
            await self.redis.hincrby(self._consent(account, openid), template_id, 1)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def consents(self, account: str, openid: str) -> dict[str, int]:
        try:
            data = await self.redis.hgetall(self._consent(account, openid))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc
        return {k: int(v) for k, v in data.items()}

    # --- mini-program page sessions -------------------------------------------------------
    async def set_page_session(self, account: str, openid: str, session_id: str, ttl_s: int) -> None:
        try:
            await self.redis.set(self._page(account, openid), session_id, ex=ttl_s)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc

    async def page_session(self, account: str, openid: str) -> str | None:
        try:
            value = await self.redis.get(self._page(account, openid))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(str(exc)) from exc
        return str(value) if value else None


def order_key(out: OutboundMessage) -> str:
    """Held messages are keyed by creation time then id: sorted keys give the original order."""
    return f"{out.created_at.timestamp():017.6f}:{out.id}"

