"""Helpers for tests that run simulated boards on the private LAN: start a
board, read its stats lines, and the traffic (tools/twin/traffic.py programs
run in a LAN host) that the tests send and record.

- send_payloads / Recorder: exact payloads in, exact datagrams (bytes and
  source) out.
- Stream / Receiver / Counter: a paced, numbered stream (each payload a 4-byte
  sequence number and the sender's wall-clock send time) and a receiver that
  time-stamps (or counts per second) what arrives: which datagrams got
  through, when, and how long after a fault was cleared.
"""

import json
import time
from contextlib import contextmanager

from tools import boardlink
from tools.lines import LineProc
from tools.twin import mpy, traffic
from tools.twin.runner import Board, twin_config


def load_default_config():
    return json.loads((mpy.ROOT / "config.json").read_text())


# -- boards ---------------------------------------------------------------------------------
def start_board(lan_host, config=None, personality="lwip", ip=None, repl=False, uid=None,
                **relay):
    """A twin board on `lan_host` (config: the repo's config.json by default), moved to
    the host's address, stats every second, watchdog off unless given."""
    base = config if config is not None else load_default_config()
    relay.setdefault("watchdog_ms", 0)
    relay.setdefault("stats_interval_s", 1)
    cfg = twin_config(base, ip or lan_host.ip, **relay)
    kw = {"uid": uid} if uid else {}
    b = Board(lan_host, cfg, personality=personality, repl=repl, **kw)
    b.start()
    return b


@contextmanager
def running_board(lan_host, config=None, **kw):
    """start_board(), the firmware's status line waited for; stopped at the end."""
    board = start_board(lan_host, config, **kw)
    try:
        wait_running(board)
        yield board
    finally:
        board.stop()


def wait_running(board, timeout=30):
    """Wait for the status line the firmware prints once its sockets are open."""
    return board.wait_for("| IP ", timeout)


def last_stats(board):
    """The board's last stats line, parsed (boardlink.parse_stats), or None before the first."""
    for line in reversed(board.lines):
        stats = boardlink.parse_stats(line)
        if stats is not None:
            return stats
    return None


def route_stats(board, name="route0"):
    """The route's counters from the board's last stats line ({} before the first)."""
    stats = last_stats(board)
    return stats["routes"].get(name, {}) if stats else {}


def wait_stats(board, pred, timeout=10.0, name="route0"):
    """The route's counters once pred(counters) holds (AssertionError after timeout)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = route_stats(board, name)
        if st and pred(st):
            return st
        time.sleep(0.2)
    raise AssertionError("stats never matched: %s\n%s" % (
        route_stats(board, name), "\n".join(board.lines[-15:])))


def no_traceback(board):
    """The board's output has no traceback. At a REPL, stopping the twin sends
    Ctrl-C, which the REPL reports as a KeyboardInterrupt from <stdin>: not ours."""
    out = board.output()
    text = out.replace('Traceback (most recent call last):\n  File "<stdin>", line 1, in '
                       '<module>\nKeyboardInterrupt: ', "")
    assert "Traceback" not in text, out
    return out


def save_result(name, data):
    """Measured figures (for docs/resilience.md) into build/NAME."""
    results = mpy.ROOT / "build"
    results.mkdir(exist_ok=True)
    (results / name).write_text(json.dumps(data, indent=2))


# -- exact datagrams ------------------------------------------------------------------------
def send_payloads(host, group, port, payloads, tmp_path, interval=0.005, loop=False):
    """Send exact payloads (zero-length ones too) from host; returns the count sent."""
    f = tmp_path / ("payloads-%s-%d-%d.txt" % (group, port, len(payloads)))
    f.write_text("\n".join(p.hex() or "-" for p in payloads) + "\n")
    res = host.run(traffic.argv("send-file", group, port, host.ip, f, interval,
                                "1" if loop else "0"),
                   capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.split()[-1])


class Recorder(LineProc):
    """Records every datagram arriving on group:port in a host namespace, as
    (source, payload), until quiet_s pass with nothing new."""

    def __init__(self, host, group, port, quiet_s=3.0):
        self.datagrams = []
        super().__init__(traffic.argv("record", group, port, host.ip, quiet_s),
                         ready='{"ready"', popen=host.popen)

    def on_line(self, line):
        d = json.loads(line)
        if "src" in d:
            self.datagrams.append((d["src"], bytes.fromhex(d["data"])))

    def finish(self, timeout=60):
        """Wait until the recorder stops; every datagram it got."""
        self.proc.wait(timeout)
        self._thread.join(5)
        return self.datagrams


# -- numbered streams -----------------------------------------------------------------------
class Stream(LineProc):
    """Numbered datagrams to group:port at `rate` per second for `seconds`."""

    def __init__(self, host, group, port, rate=100, seconds=3600, size=64, first=0):
        self.first = first
        self.next_seq = first
        self.done = False
        self.errors = 0
        super().__init__(traffic.argv("stream", group, port, host.ip, rate, seconds, size,
                                      first),
                         ready="ready", ready_timeout=15, popen=host.popen)

    def on_line(self, line):
        p = line.split()
        if p[0] in ("sent", "done"):
            self.next_seq = int(p[1])
            self.done = p[0] == "done"
        elif p[0] == "err":
            self.errors += 1

    def finish(self, timeout):
        """Wait until the stream has sent everything; returns the count sent."""
        self.wait(lambda: self.done, timeout)
        return self.next_seq - self.first


class Receiver(LineProc):
    """Every datagram on group:port as (seq, sent_time, arrival_time, length, src)."""

    def __init__(self, host, group, port):
        self.got = []
        super().__init__(traffic.argv("receive", group, port, host.ip, "each"),
                         ready="ready", ready_timeout=15, popen=host.popen)

    def on_line(self, line):
        p = line.split()
        if p[0] == "r":
            self.got.append((int(p[1]), float(p[2]), float(p[3]), int(p[4]), p[5]))

    def count(self):
        return len(self.got)

    def first_after(self, t):
        """The first datagram that arrived at or after wall-clock time t (or None)."""
        for d in list(self.got):
            if d[2] >= t:
                return d
        return None

    def wait_first_after(self, t, timeout):
        self.wait(lambda: any(d[2] >= t for d in self.got[-50:]), timeout)
        return self.first_after(t)


class Counter(LineProc):
    """Datagrams per wall-clock second on group:port: {second: count}."""

    def __init__(self, host, group, port):
        self.per_s = {}
        super().__init__(traffic.argv("receive", group, port, host.ip, "count"),
                         ready="ready", ready_timeout=15, popen=host.popen)

    def on_line(self, line):
        p = line.split()
        if p[0] == "c":
            self.per_s[int(p[1])] = int(p[2])

    def window(self, t0, t1):
        """Counts of the whole seconds inside [t0, t1)."""
        return [n for s, n in sorted(self.per_s.items()) if t0 <= s and s + 1 <= t1]
