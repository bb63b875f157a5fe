# A token bucket: `rate` tokens a second, never more than `burst` at once.
# The relay's routes (datagrams) and the discovery responder (replies) each
# have one. The owner keeps the level (an int it lowers by one per item: the
# forward loop keeps it among its per-route ints) and hands it to refill()
# with the milliseconds since the last refill, on its 100 ms tick.
# Plain Python (no const): the host tools import lib/discovery.py, which uses it.

NO_CAP = 1 << 29  # the level of a bucket without a cap: a small int, restored each refill


class TokenBucket:
    def __init__(self, rate, burst):
        self.rate = rate  # tokens per second; 0: no cap
        self.burst = burst
        self._credit = 0  # rate * ms not yet a whole token

    def full(self):
        """The level to start with."""
        return self.burst if self.rate else NO_CAP

    def refill(self, level, ms):
        """The level `ms` milliseconds later."""
        if not self.rate:
            return NO_CAP  # never runs dry, stays a small int
        if ms <= 0 or level >= self.burst:
            self._credit = 0  # a full bucket saves nothing up
            return level
        self._credit += self.rate * ms
        add = self._credit // 1000
        if not add:
            return level
        self._credit -= add * 1000
        level += add
        return level if level < self.burst else self.burst
