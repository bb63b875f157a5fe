"""Traffic helpers for the fault-injection and soak tests: a paced, numbered
stream and a receiver that time-stamps (or counts) what arrives.

Each payload starts with a 4-byte sequence number and the sender's wall-clock
send time (8-byte double): a test can tell exactly which datagrams got through,
when, and how long after a fault was cleared. Both scripts run inside a LAN
host's namespace (plain python3, nothing imported from this repo).
"""

import sys
import time

from tools.twin.lan import _LineProc

_STREAM = r"""
import socket, struct, sys, time
g, port, ifaddr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rate, seconds, size, first = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ifaddr))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
pad = bytes(max(size - 12, 0))
print("ready", flush=True)
t0 = time.monotonic()
i = 0
while True:
    due = t0 + i / rate
    now = time.monotonic()
    if now - t0 >= seconds:
        break
    if due > now:
        time.sleep(due - now)
    try:
        s.sendto(struct.pack("!Id", first + i, time.time()) + pad, (g, port))
    except OSError as e:
        print("err", first + i, e.errno, flush=True)
    i += 1
    if i % 100 == 0:
        print("sent", first + i, flush=True)
print("done", first + i, flush=True)
"""

_RECV = r"""
import socket, struct, sys, time
g, port, ifaddr, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((g, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(g) + socket.inet_aton(ifaddr))
print("ready", flush=True)
if mode == "each":
    while True:
        data, addr = s.recvfrom(65535)
        t = time.time()
        if len(data) >= 12:
            seq, sent = struct.unpack("!Id", data[:12])
        else:
            seq, sent = -1, 0.0
        print("r %d %.6f %.6f %d %s" % (seq, sent, t, len(data), addr[0]), flush=True)
else:  # "count": datagrams per whole second of wall-clock time
    s.settimeout(0.2)
    sec, n = int(time.time()), 0
    while True:
        try:
            s.recvfrom(65535)
            got = 1
        except socket.timeout:
            got = 0
        now = int(time.time())
        if now != sec:
            print("c %d %d" % (sec, n), flush=True)
            sec, n = now, 0
        n += got
"""


class _Proc(_LineProc):
    """A helper script in a host namespace; subclasses parse its lines in _line."""

    def __init__(self, host, argv):
        super().__init__(host, argv, ready_timeout=15)

    def _on_line(self, line):
        if line == "ready":
            self.lines.append(line)  # what the base class waits for
        else:
            self._line(line)

    def _line(self, line):
        self.lines.append(line)

    def wait(self, pred, timeout):
        return self._wait(pred, timeout)


class Stream(_Proc):
    """Numbered datagrams to group:port at `rate` per second for `seconds`."""

    def __init__(self, host, group, port, rate=100, seconds=3600, size=64, first=0):
        self.first = first
        self.next_seq = first
        self.done = False
        self.errors = 0
        super().__init__(host, [sys.executable, "-c", _STREAM, group, str(port), host.ip,
                                str(rate), str(seconds), str(size), str(first)])

    def _line(self, line):
        p = line.split()
        if p[0] in ("sent", "done"):
            self.next_seq = int(p[1])
            self.done = p[0] == "done"
        elif p[0] == "err":
            self.errors += 1
        else:
            self.lines.append(line)

    def finish(self, timeout):
        """Wait until the stream has sent everything; returns the count sent."""
        self.wait(lambda: self.done, timeout)
        return self.next_seq - self.first


class Receiver(_Proc):
    """Every datagram on group:port as (seq, sent_time, arrival_time, length, src)."""

    def __init__(self, host, group, port):
        self.got = []
        super().__init__(host, [sys.executable, "-c", _RECV, group, str(port), host.ip, "each"])

    def _line(self, line):
        p = line.split()
        if p[0] == "r":
            self.got.append((int(p[1]), float(p[2]), float(p[3]), int(p[4]), p[5]))
        else:
            self.lines.append(line)

    def count(self):
        with self._cond:
            return len(self.got)

    def first_after(self, t):
        """The first datagram that arrived at or after wall-clock time t (or None)."""
        with self._cond:
            for d in self.got:
                if d[2] >= t:
                    return d
        return None

    def wait_first_after(self, t, timeout):
        self.wait(lambda: any(d[2] >= t for d in self.got[-50:]), timeout)
        return self.first_after(t)


class Counter(_Proc):
    """Datagrams per wall-clock second on group:port: {second: count}."""

    def __init__(self, host, group, port):
        self.per_s = {}
        super().__init__(host, [sys.executable, "-c", _RECV, group, str(port), host.ip, "count"])

    def _line(self, line):
        p = line.split()
        if p[0] == "c":
            self.per_s[int(p[1])] = int(p[2])

    def window(self, t0, t1):
        """Counts of the whole seconds inside [t0, t1)."""
        with self._cond:
            return [n for s, n in sorted(self.per_s.items()) if t0 <= s and s + 1 <= t1]


def now():
    return time.time()


_SEND_LIST = r"""
import socket, sys, time
g, port, ifaddr, interval, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
with open(path) as f:
    payloads = [b"" if line.strip() == "-" else bytes.fromhex(line.strip()) for line in f if line.strip()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ifaddr))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
n = 0
for p in payloads:
    s.sendto(p, (g, port))
    n += 1
    if interval:
        time.sleep(interval)
print(n, flush=True)
"""


def send_list(host, group, port, payloads, tmp_path, interval=0.005):
    """Send exact payloads (zero-length ones too) from host; returns the count sent."""
    f = tmp_path / ("list-%s-%d-%d.txt" % (group, port, len(payloads)))
    f.write_text("\n".join(p.hex() or "-" for p in payloads) + "\n")
    r = host.run([sys.executable, "-c", _SEND_LIST, group, str(port), host.ip, str(interval),
                  str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])
