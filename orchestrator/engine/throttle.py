"""Per-account pauses when Meta throttles (613 and the other rate-limit codes).

Instagram's limits are per second per account (docs/platform.md 6): the right answer to a
throttle is to stop that account's sends for a few seconds and resume, not to park one row
for minutes while the account's other conversations keep hitting the limit. A pause starts at
`first_s`, doubles while throttles keep coming (up to `max_s`), honours the time Meta gives
(`estimated_time_to_regain_access` in the usage headers, `Retry-After`), and is jittered so
several processes do not resume in lockstep. Pauses are per process, like the rate limiter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class AccountPauses:
    first_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.3
    rand: random.Random = field(default_factory=random.Random)
    _until: dict[str, datetime] = field(default_factory=dict)
    _streak: dict[str, int] = field(default_factory=dict)

    def throttled(self, account_id: str, now: datetime, floor_s: float | None = None) -> float:
        """Record a throttle; returns the pause in seconds."""
        streak = self._streak.get(account_id, 0) + 1
        self._streak[account_id] = streak
        pause = min(self.max_s, self.first_s * 2 ** (streak - 1))
        pause *= 1 + self.jitter * (2 * self.rand.random() - 1)
        if floor_s is not None:
            pause = max(pause, floor_s)
        until = now + timedelta(seconds=pause)
        self._until[account_id] = max(until, self._until.get(account_id, until))
        return pause

    def succeeded(self, account_id: str) -> None:
        self._streak.pop(account_id, None)

    def paused(self, now: datetime) -> list[str]:
        """Accounts whose sends wait now (expired pauses are forgotten)."""
        for account_id in [a for a, t in self._until.items() if t <= now]:
            del self._until[account_id]
        return list(self._until)
