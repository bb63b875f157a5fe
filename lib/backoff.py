# Retry with back-off, report once per change: bringing the NIC up, opening
# the sockets and re-activating the NIC wait 1, 2, 4 ... 30 s between attempts,
# and a failure is logged only when it differs from the one logged last (a
# dead chip must not fill the console; a new error must not go unsaid).
import time

_MIN_MS = 1000
_MAX_MS = 30000


class Backoff:
    def __init__(self, log, min_ms=_MIN_MS, max_ms=_MAX_MS):
        self.log = log
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.delay_ms = min_ms  # the wait after the next failure
        self.due = None  # ticks_ms of the next attempt; None: at once
        self.reported = None  # the failure logged last; None since the last success

    def ready(self, now):
        return self.due is None or time.ticks_diff(now, self.due) >= 0

    def failed(self, now, what, repeat=False):
        """An attempt failed with `what` (a message): log it unless it is the
        one logged last (with repeat, every time: a console opened later must
        see it, and USB serial drops what was printed before it was opened);
        the next attempt waits the delay, which doubles."""
        if repeat:
            self.log("%s (next try in %d s)" % (what, self.delay_ms // 1000))
        elif what != self.reported:
            self.log("%s (retrying with back-off up to %d s; reported again only if it changes)"
                     % (what, self.max_ms // 1000))
        self.reported = what
        self.due = time.ticks_add(now, self.delay_ms)
        self.delay_ms = min(self.delay_ms * 2, self.max_ms)

    def settle(self, now, ms):
        """An attempt worked but its effect takes time to show (an address
        from DHCP): no attempt for ms (at least the delay, which doubles)."""
        self.reported = None
        self.due = time.ticks_add(now, max(ms, self.delay_ms))
        self.delay_ms = min(self.delay_ms * 2, self.max_ms)

    def succeeded(self):
        """It works: the next failure waits the shortest delay and is logged.
        True when a failure had been logged (the caller may say it is over)."""
        was = self.reported is not None
        self.reported = None
        self.delay_ms = self.min_ms
        self.due = None
        return was

    def wait(self, wdt=None):
        """Sleep until the next attempt is due, feeding the watchdog."""
        while self.due is not None and time.ticks_diff(self.due, time.ticks_ms()) > 0:
            if wdt is not None:
                wdt.feed()
            time.sleep_ms(100)
