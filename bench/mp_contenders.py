# MicroPython (unix port) side of the benchmark: one program, one contender
# per run. Run by bench/ inside its private network namespace:
#
#   micropython bench/mp_contenders.py MODE ARGS...
#
#   seed  IN_GROUP IN_PORT OUT_GROUP OUT_PORT        the WIZnet tutorial's loop
#   bare  IN_GROUP IN_PORT OUT_GROUP OUT_PORT        recvfrom + sendto, nothing else
#   ours  ROUTES_FILE OWN_IP                         lib/relay.py Relay, as the board runs it
#
# Every mode prints "READY" (to stderr) once its sockets exist and then forwards until
# killed (SIGTERM): the forward loop itself is exactly the contender's, no
# counting or stop test is added to it (the benchmark counts at the receiver).
#
# Heap modes (garbage collector off, gc.mem_alloc deltas, see bench/heap.py):
#   heap-recv  IN_GROUP IN_PORT N BUFSIZE            recvfrom(BUFSIZE) only
#   heap-seed / heap-bare  (as seed/bare) N
#   heap-ours  ROUTES_FILE OWN_IP N
# (ROUTES_FILE: the "routes" list as JSON; bench/procs.py writes it.)
# They say "READY", handle N datagrams and say "HEAP <bytes> <datagrams>".
# (The bare and seed heap loops run `for _ in range(N)`, which MicroPython
# compiles to a plain counter: it allocates nothing.)
import gc
import socket
import sys

IP_ADD_MEMBERSHIP = socket.IP_ADD_MEMBERSHIP
BUF = 1473  # ours reads max_datagram + 1; the bare loop reads the same
# Benchmark environment, the same for every contender (socat gets rcvbuf= too): a 4 MB
# receive queue, so that a few ms of scheduling noise on the shared 2-CPU machine does not
# decide the loss-free rate (the kernel default holds ~6 ms of traffic at 50,000/s).
# Linux numbers: the unix port has no SO_RCVBUF name.
SOL_SOCKET = 1
SO_RCVBUF = 8
RCVBUF = 4 << 20


def bench_queue(s):
    s.setsockopt(SOL_SOCKET, SO_RCVBUF, RCVBUF)


def say(line):
    # Harness messages go to stderr: stdout (the seed's prints, the relay's
    # stats lines) goes to /dev/null, as on a board with no terminal attached.
    sys.stderr.write(line + "\n")


def ready():
    say("READY")


def ip_to_bytes(ip_str):  # the tutorial's helper
    return bytes(map(int, ip_str.split(".")))


def sockaddr(ip, port):
    return socket.getaddrinfo(ip, int(port))[0][-1]


def seed_socket(group, port):
    # udp_multicast_init() ported to the unix port: getaddrinfo sockaddr for
    # bind, and the 8-byte mreq (group + interface 0.0.0.0) instead of the
    # tutorial's struct.pack('4sl', ...), which is 16 bytes on a 64-bit host.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(sockaddr(group, port))
    mreq = ip_to_bytes(group) + ip_to_bytes("0.0.0.0")
    s.setsockopt(0, IP_ADD_MEMBERSHIP, mreq)
    bench_queue(s)  # not the tutorial's: see RCVBUF
    return s


def seed(group, port, out_group, out_port):
    sock = seed_socket(group, port)
    dst = sockaddr(out_group, out_port)
    ready()
    while True:
        message, addr = sock.recvfrom(1024)
        print(f"Received: {message} from {addr}")
        sock.sendto(message, dst)
        print("Data sent.")


def bare(group, port, out_group, out_port):
    # The plainest forwarder: the seed's loop without the prints, with its own
    # transmit socket (so the source address is the interface's), reading
    # max_datagram + 1 like ours. Nothing cached, nothing checked.
    rx = seed_socket(group, port)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = sockaddr(out_group, out_port)
    ready()
    while True:
        data, addr = rx.recvfrom(BUF)
        tx.sendto(data, dst)


def bare_poll(group, port, out_group, out_port):
    # Calibration only (not a contender): the bare loop behind one select.poll,
    # as any loop that serves several sockets needs. The floor for ours.
    import select

    rx = seed_socket(group, port)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = sockaddr(out_group, out_port)
    p = select.poll()
    p.register(rx, 1)
    ipoll = p.ipoll
    recvfrom = rx.recvfrom
    sendto = tx.sendto
    ready()
    while True:
        for _ev in ipoll(100):
            data, addr = recvfrom(BUF)
            sendto(data, dst)


class StandInNic:
    """What Relay asks of lib/nic.py's Nic: the address, link and connected."""

    def __init__(self, ip):
        self._ip = ip

    def ip(self):
        return self._ip

    def link(self):
        return True

    def connected(self):
        return True


def relay_config(routes_file, stats_interval_s=10):
    """The user's options through lib/config.py, lifted for the host."""
    import json

    import config

    with open(routes_file) as f:
        routes = json.load(f)
    obj = {
        "nic": {},
        "network": {"ip": "198.18.0.2", "netmask": "255.254.0.0", "gateway": "0.0.0.0"},
        "routes": routes,
        "relay": {"max_datagram": 1472, "stats_interval_s": stats_interval_s},
    }
    # The board has 5 UDP sockets; the host has more (4 routes + TX = 5 > budget 3).
    cfg, errors = config.validate(obj, max_udp_sockets=8)
    if errors:
        raise SystemExit("config: " + "; ".join(errors))
    for r in cfg["routes"]:
        # Validated at the config maximum (100000 pps); multiplied here so the
        # cap never binds on a fast host. Same code path per datagram.
        r["rate_pps"] *= 100
        r["burst"] = r["rate_pps"] // 5
    return cfg


def make_relay(routes_file, own_ip, wdt=None, stats_interval_s=10):
    import relay as relay_mod

    cfg = relay_config(routes_file, stats_interval_s)

    def log(line):
        print(line)

    r = relay_mod.Relay(cfg, nic=StandInNic(own_ip), log=log, wdt=wdt)
    r.open()
    for rt in r.routes:
        bench_queue(rt.sock)
    return r


def ours(routes_file, own_ip):
    r = make_relay(routes_file, own_ip)
    ready()
    r.run()


# -- heap ------------------------------------------------------------------------
def heap_window(n, loop):
    """What loop(n) allocates with the garbage collector off: says READY, runs the
    contender's loop over n datagrams, says "HEAP <bytes> <n>"."""
    gc.collect()
    gc.disable()
    ready()
    before = gc.mem_alloc()
    loop(n)
    say("HEAP %d %d" % (gc.mem_alloc() - before, n))


def heap_recv(group, port, n, bufsize):
    bufsize = int(bufsize)
    recvfrom = seed_socket(group, port).recvfrom
    recvfrom(bufsize)  # first datagram outside the window (warm-up)

    def loop(n):
        for _ in range(n):
            recvfrom(bufsize)

    heap_window(int(n), loop)


def heap_seed(group, port, out_group, out_port, n):
    sock = seed_socket(group, port)
    dst = sockaddr(out_group, out_port)

    def loop(n):
        for _ in range(n):
            message, addr = sock.recvfrom(1024)
            print(f"Received: {message} from {addr}")
            sock.sendto(message, dst)
            print("Data sent.")

    heap_window(int(n), loop)


def heap_bare(group, port, out_group, out_port, n):
    rx = seed_socket(group, port)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = sockaddr(out_group, out_port)

    def loop(n):
        for _ in range(n):
            data, addr = rx.recvfrom(BUF)
            tx.sendto(data, dst)

    heap_window(int(n), loop)


class HeapWatch:
    """A stand-in watchdog: Relay.run() feeds it on every 100 ms tick (outside
    the per-datagram path), so it notes (forwarded so far, heap in use) there,
    in preallocated lists (it allocates nothing itself), and stops the relay
    once n datagrams are through."""

    def __init__(self, n, size=4096):
        import relay as relay_mod

        self.n = n
        self.relay = None
        self.tx_index = relay_mod.COUNTERS.index("tx")
        self.tx = [0] * size
        self.mem = [0] * size
        self.at = 0

    def feed(self):
        tx = 0
        for rt in self.relay.routes:
            tx += rt.totals[self.tx_index]
        i = self.at
        if i < len(self.tx):
            self.tx[i] = tx
            self.mem[i] = gc.mem_alloc()
            self.at = i + 1
        if tx >= self.n:
            self.relay.stop()


def heap_ours(routes_file, own_ip, n):
    """Relay.run() unchanged, a HeapWatch as its watchdog, no stats line (its
    gc.collect() would free what the window counts). The window starts at the
    first tick that saw traffic, so the allow-list cache is outside."""
    watch = HeapWatch(int(n))
    r = make_relay(routes_file, own_ip, wdt=watch, stats_interval_s=0)
    watch.relay = r
    gc.collect()
    gc.disable()
    ready()
    r.run()
    k = watch.at
    first = 0
    while first < k and watch.tx[first] == 0:
        first += 1
    last = k - 1
    idle = [watch.mem[i + 1] - watch.mem[i] for i in range(first, last)
            if watch.tx[i + 1] == watch.tx[i]]
    say("HEAP %d %d" % (watch.mem[last] - watch.mem[first], watch.tx[last] - watch.tx[first]))
    say("TICKS %d idle %s" % (last - first, idle))


MODES = {
    "seed": seed,
    "bare": bare,
    "bare_poll": bare_poll,
    "ours": ours,
    "heap-recv": heap_recv,
    "heap-seed": heap_seed,
    "heap-bare": heap_bare,
    "heap-ours": heap_ours,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
