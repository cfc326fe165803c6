"""Login throttling: how many events (attempts from an address, failures of
an account) a key may have in a sliding window, in bounded memory.

Each key keeps at most `limit` timestamps (older ones no longer matter), and
at most `max_keys` keys are tracked: past that the key seen least recently is
forgotten first, so a flood of distinct addresses costs memory in proportion
to max_keys, never more. Per proxy: an attacker spreading over N proxies gets
N times the budget, which the slow hash and the per-account limit keep small.
"""

import collections
import time


class Throttle:

    def __init__(self, limit, window_s, max_keys=100000, clock=time.monotonic):
        self.limit, self.window_s, self.max_keys, self.clock = limit, window_s, max_keys, clock
        self.events = collections.OrderedDict()  # key -> deque of times, least recently touched first

    def _recent(self, key, now):
        times = self.events.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self.events[key]
            return None
        return times

    def blocked(self, key):
        """Whether `key` used its `limit` events in the last window."""
        times = self._recent(key, self.clock())
        return times is not None and len(times) >= self.limit

    def retry_after(self, key):
        """Seconds until `key` has an event to spare again (0 when it has one now)."""
        now = self.clock()
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window_s - now)

    def record(self, key):
        now = self.clock()
        times = self._recent(key, now)
        if times is None:
            times = self.events[key] = collections.deque(maxlen=self.limit)
            while len(self.events) > self.max_keys:
                self.events.popitem(last=False)
        else:
            self.events.move_to_end(key)
        times.append(now)

    def forget(self, key):
        self.events.pop(key, None)

    def __len__(self):
        return len(self.events)
