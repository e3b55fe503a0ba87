"""Telegram's flood limits as a blocking gate: call :meth:`FloodGate.wait` before every send.

Telegram's published limits for bots (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one message per second in one chat, at most 20 messages per minute in one group, and
about 30 messages per second overall. A 429 answer carries ``retry_after`` seconds, which
:meth:`FloodGate.penalise` turns into a pause.

Every limit is a sliding window over the moments sends were let through:

* per chat: two sends to the same chat are at least ``per_chat_interval_s`` apart;
* per group: any 60 s window holds at most ``group_per_minute`` sends to one chat of kind
  ``"group"`` or ``"channel"`` (channels count as groups, as python-telegram-bot's rate
  limiter also does; private chats are exempt);
* overall: any 1 s window holds at most ``global_per_second`` sends;
* penalties: no send to a penalised chat (or to any chat, after a global penalty) before the
  penalty ends.

The gate is pure logic around an injectable ``clock`` (seconds, monotonic) and ``sleep``, so
tests drive it with a fake clock. It is thread-safe: a send is recorded under a lock at the
clock's current reading, only when every limit allows it, and a thread that has to wait
sleeps outside the lock and then checks again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

ChatKind = Literal["private", "group", "channel"]
ChatId = int | str

#: Length in seconds of the group and the global sliding windows.
GROUP_WINDOW_S = 60.0
GLOBAL_WINDOW_S = 1.0
#: Shortest sleep, so that a fake clock always moves forward.
_MIN_SLEEP_S = 1e-6
#: Chats idle longer than this are forgotten once the gate tracks more than _PRUNE_ABOVE chats.
_PRUNE_ABOVE = 4096


class SendWindowClosedError(Exception):
    """The gate would let a send through only after its deadline; nothing was recorded.

    ``ready_in_s`` is how long the send would have had to wait (seconds from the check).
    """

    def __init__(self, chat_id: ChatId, ready_in_s: float, deadline_in_s: float) -> None:
        super().__init__(f"chat {_key(chat_id)}: the flood limits allow the next send in {ready_in_s:.1f}s, "
                         f"after its deadline in {deadline_in_s:.1f}s")
        self.ready_in_s = ready_in_s
        self.deadline_in_s = deadline_in_s


class FloodGate:
    """Blocks each send just long enough to respect Telegram's flood limits.

    Parameters
    ----------
    per_chat_interval_s
        Minimum seconds between two sends to the same chat.
    group_per_minute
        Maximum sends to one group or channel in any 60 s window.
    global_per_second
        Maximum sends overall in any 1 s window.
    clock
        Current time in seconds; must never go backwards (``time.monotonic``).
    sleep
        Blocks for the given seconds (``time.sleep``); a test's fake sleep advances its clock.
    """

    def __init__(
        self,
        *,
        per_chat_interval_s: float = 1.0,
        group_per_minute: int = 20,
        global_per_second: int = 30,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(per_chat_interval_s) and per_chat_interval_s >= 0):
            raise ValueError(f"per_chat_interval_s must be >= 0, got {per_chat_interval_s}")
        if group_per_minute < 1 or global_per_second < 1:
            raise ValueError(
                "group_per_minute and global_per_second must be at least 1, got "
                f"{group_per_minute} and {global_per_second}"
            )
        self.per_chat_interval_s = float(per_chat_interval_s)
        self.group_per_minute = int(group_per_minute)
        self.global_per_second = int(global_per_second)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_send: dict[str, float] = {}
        self._group_sends: dict[str, deque[float]] = {}
        self._global_sends: deque[float] = deque(maxlen=self.global_per_second)
        self._chat_paused_until: dict[str, float] = {}
        self._global_paused_until = -math.inf

    def __repr__(self) -> str:
        return (
            f"FloodGate(per_chat_interval_s={self.per_chat_interval_s}, "
            f"group_per_minute={self.group_per_minute}, "
            f"global_per_second={self.global_per_second})"
        )

    def now(self) -> float:
        """The gate's clock reading (seconds), the scale of :meth:`wait`'s ``deadline``."""
        return self._clock()

    def wait(self, chat_id: ChatId, chat_kind: ChatKind = "group", *, deadline: float | None = None) -> float:
        """Block until a send to ``chat_id`` respects every limit, then count it as sent.

        ``deadline`` (a reading of :meth:`now`): when the send could only go later than that,
        raise :class:`SendWindowClosedError` at once instead of waiting, and count nothing.

        Returns
        -------
        float
            The seconds spent waiting (0.0 when the send could go at once).
        """
        key = _key(chat_id)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                ready_at = self._ready_at(key, chat_kind)
                if ready_at <= now:
                    self._record(key, chat_kind, now)
                    return waited
                if deadline is not None and ready_at > deadline:
                    raise SendWindowClosedError(chat_id, ready_at - now, deadline - now)
            delay = max(ready_at - now, _MIN_SLEEP_S)
            logger.debug("flood gate holds chat %s for %.3fs", key, delay)
            self._sleep(delay)
            waited += delay

    def time_until_allowed(self, chat_id: ChatId, chat_kind: ChatKind = "group") -> float:
        """Seconds until a send to ``chat_id`` would be let through (0.0 if now); records nothing."""
        with self._lock:
            return max(0.0, self._ready_at(_key(chat_id), chat_kind) - self._clock())

    def penalise(self, chat_id: ChatId | None, retry_after_s: float) -> None:
        """Hold back sends after Telegram answered 429 with ``retry_after_s``.

        ``chat_id`` pauses that chat only: Telegram's 429 on ``sendMessage`` is its per-chat flood
        control, and this gate already keeps the overall rate under the global limit. ``None``
        pauses every chat. A shorter penalty never shortens a pause already in force.
        """
        if not (math.isfinite(retry_after_s) and retry_after_s >= 0):
            raise ValueError(f"retry_after_s must be a finite number >= 0, got {retry_after_s}")
        with self._lock:
            until = self._clock() + retry_after_s
            if chat_id is None:
                self._global_paused_until = max(self._global_paused_until, until)
                logger.warning("Telegram flood control: all chats paused for %.1fs", retry_after_s)
            else:
                key = _key(chat_id)
                self._chat_paused_until[key] = max(self._chat_paused_until.get(key, until), until)
                logger.warning(
                    "Telegram flood control: chat %s paused for %.1fs", key, retry_after_s
                )

    def _ready_at(self, key: str, chat_kind: ChatKind) -> float:
        """Earliest moment the next send to ``key`` respects every limit (lock held)."""
        ready = max(
            self._global_paused_until,
            self._chat_paused_until.get(key, -math.inf),
            self._last_send.get(key, -math.inf) + self.per_chat_interval_s,
        )
        if len(self._global_sends) == self.global_per_second:
            ready = max(ready, self._global_sends[0] + GLOBAL_WINDOW_S)
        if chat_kind != "private":
            sends = self._group_sends.get(key)
            if sends is not None and len(sends) == self.group_per_minute:
                ready = max(ready, sends[0] + GROUP_WINDOW_S)
        return ready

    def _record(self, key: str, chat_kind: ChatKind, now: float) -> None:
        """Count a send let through at ``now`` (lock held)."""
        self._last_send[key] = now
        self._global_sends.append(now)
        if chat_kind != "private":
            sends = self._group_sends.get(key)
            if sends is None:
                sends = self._group_sends[key] = deque(maxlen=self.group_per_minute)
            sends.append(now)
        if len(self._last_send) > _PRUNE_ABOVE:
            self._forget_idle_chats(now)

    def _forget_idle_chats(self, now: float) -> None:
        horizon = now - max(GROUP_WINDOW_S, self.per_chat_interval_s)
        for key in [k for k, last in self._last_send.items() if last < horizon]:
            if self._chat_paused_until.get(key, -math.inf) <= now:
                del self._last_send[key]
                self._group_sends.pop(key, None)
                self._chat_paused_until.pop(key, None)


def _key(chat_id: ChatId) -> str:
    """One key per chat whether its id arrives as ``-100123`` or ``"-100123"``."""
    return str(chat_id).strip()
