"""The traffic programs run inside the twin LAN's host namespaces: each is a
function here, run as `python3 tools/twin/traffic.py PROGRAM ARGS...` (argv()
builds that command line). Plain python3, nothing imported from this
repository, so they start anywhere. Each prints "ready" once its socket is
set up (where a caller waits for it) and one line per event.

    query    PKT_HEX DST IFACE             one raw IGMP packet (a querier's query)
    send     G PORT COUNT INTERVAL TTL LOOP IFACE PAYLOAD_HEX
                                           COUNT datagrams (payload, or the index as ASCII)
    send-file G PORT IFACE FILE INTERVAL LOOP
                                           the payloads of FILE, one hex line each ("-": empty)
    listen   G PORT JOIN IFACE             "rx LEN SRC SPORT HEX64" per datagram; stdin
                                           "join"/"leave" commands, answered "ok CMD"/"err CMD ERRNO"
    record   G PORT IFACE QUIET_S          JSON {"src", "data"} per datagram until QUIET_S of silence
    capture  IFNAME DST DPORT PROTO OUT    "pkt PROTO SRC DST SPORT DPORT LEN in|out" per IPv4 frame
    stream   G PORT IFACE RATE SECONDS SIZE FIRST
                                           numbered datagrams (u32 seq, f64 send time, padding)
    receive  G PORT IFACE each|count       "r SEQ SENT ARRIVED LEN SRC" per datagram, or
                                           "c SECOND COUNT" per wall-clock second
    flood    DST PORT N INTERVAL LISTEN_S IFACE
                                           N discovery queries, then JSON of the replies heard
"""

import json
import os
import selectors
import socket
import struct
import sys
import time

HERE = os.path.abspath(__file__)


def argv(program, *args):
    """The command line that runs `program` with `args` (any values, as str)."""
    return [sys.executable, HERE, program, *[str(a) for a in args]]


def say(*parts):
    print(*parts, flush=True)


def _tx(iface, ttl, loop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, int(ttl))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if int(loop) else 0)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    return s


def _rx(group, port, iface, rcvbuf=0, join=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((group, int(port)))
    if join:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(group) + socket.inet_aton(iface))
    return s


def query(pkt_hex, dst, iface):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x94\x04\x00\x00")  # Router Alert
    s.sendto(bytes.fromhex(pkt_hex), (dst, 0))


def send(group, port, count, interval, ttl, loop, iface, payload_hex):
    s = _tx(iface, ttl, loop)
    payload, interval = bytes.fromhex(payload_hex), float(interval)
    sent = 0
    for i in range(int(count)):
        try:
            s.sendto(payload or b"%d" % i, (group, int(port)))
            sent += 1
        except OSError:
            pass
        if interval:
            time.sleep(interval)
    say(sent)


def send_file(group, port, iface, path, interval, loop, ttl=8):
    with open(path) as f:
        payloads = [b"" if line.strip() == "-" else bytes.fromhex(line.strip())
                    for line in f if line.strip()]
    s = _tx(iface, ttl, loop)
    interval = float(interval)
    for p in payloads:
        s.sendto(p, (group, int(port)))
        if interval:
            time.sleep(interval)
    say(len(payloads))


def listen(group, port, join, iface):
    s = _rx(group, port, iface, join=join == "1")
    mreq = socket.inet_aton(group) + socket.inet_aton(iface)
    say("ready")
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ, "s")
    sel.register(0, selectors.EVENT_READ, "c")
    buf = b""
    while True:
        for key, _ in sel.select():
            if key.data == "s":
                data, addr = s.recvfrom(65535)
                say("rx", len(data), addr[0], addr[1], data[:64].hex() or "-")
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd = line.strip().decode()
                opt = socket.IP_ADD_MEMBERSHIP if cmd == "join" else socket.IP_DROP_MEMBERSHIP
                try:
                    if cmd in ("join", "leave"):
                        s.setsockopt(socket.IPPROTO_IP, opt, mreq)
                    say("ok", cmd)
                except OSError as e:
                    say("err", cmd, e.errno)


def record(group, port, iface, quiet_s):
    s = _rx(group, port, iface, rcvbuf=4 << 20)
    s.settimeout(float(quiet_s))
    say(json.dumps({"ready": True}))
    try:
        while True:
            data, addr = s.recvfrom(65535)
            say(json.dumps({"src": addr[0], "data": data.hex()}))
    except (socket.timeout, KeyboardInterrupt):
        pass


def capture(ifname, dst, dport, proto, outgoing):
    dst = socket.inet_aton(dst) if dst != "-" else None
    dport, proto, outgoing = int(dport), int(proto), outgoing == "1"
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    s.bind((ifname, 0x0800))
    say("ready")
    while True:
        ip, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING and not outgoing:
            continue
        if len(ip) < 20 or (proto >= 0 and ip[9] != proto) or (dst and ip[16:20] != dst):
            continue
        ihl = (ip[0] & 15) * 4
        sport = dp = 0
        if ip[9] in (6, 17) and len(ip) >= ihl + 4:
            sport, dp = struct.unpack("!HH", ip[ihl:ihl + 4])
        if dport >= 0 and dp != dport:
            continue
        say("pkt", ip[9], socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dp,
            len(ip), "out" if addr[2] == socket.PACKET_OUTGOING else "in")


def stream(group, port, iface, rate, seconds, size, first):
    rate, seconds, size, first = float(rate), float(seconds), int(size), int(first)
    s = _tx(iface, 8, 0)
    pad = bytes(max(size - 12, 0))
    say("ready")
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
            s.sendto(struct.pack("!Id", first + i, time.time()) + pad, (group, int(port)))
        except OSError as e:
            say("err", first + i, e.errno)
        i += 1
        if i % 100 == 0:
            say("sent", first + i)
    say("done", first + i)


def receive(group, port, iface, mode):
    s = _rx(group, port, iface, rcvbuf=8 << 20)
    say("ready")
    if mode == "each":
        while True:
            data, addr = s.recvfrom(65535)
            t = time.time()
            seq, sent = struct.unpack("!Id", data[:12]) if len(data) >= 12 else (-1, 0.0)
            say("r %d %.6f %.6f %d %s" % (seq, sent, t, len(data), addr[0]))
    s.settimeout(0.2)  # "count": datagrams per whole second of wall-clock time
    sec, n = int(time.time()), 0
    while True:
        try:
            s.recvfrom(65535)
            got = 1
        except socket.timeout:
            got = 0
        now = int(time.time())
        if now != sec:
            say("c %d %d" % (sec, n))
            sec, n = now, 0
        n += got


def flood(dst, port, n, interval, listen_s, iface):
    port, n, interval, listen_s = int(port), int(n), float(interval), float(listen_s)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    s.bind((iface, 0))
    t0 = time.monotonic()
    for i in range(n):
        s.sendto(b"MCRELAY?f%d" % i, (dst, port))
        if interval:
            time.sleep(interval)
    sent_s = time.monotonic() - t0
    got = []
    s.settimeout(0.05)
    while time.monotonic() - t0 < listen_s:
        try:
            d, a = s.recvfrom(65535)
        except socket.timeout:
            continue
        got.append([a[0], len(d), round(time.monotonic() - t0, 3)])
    say(json.dumps({"sent_s": sent_s, "elapsed": time.monotonic() - t0, "got": got}))


PROGRAMS = {"query": query, "send": send, "send-file": send_file, "listen": listen,
            "record": record, "capture": capture, "stream": stream, "receive": receive,
            "flood": flood}


def main(args):
    if not args or args[0] not in PROGRAMS:
        raise SystemExit("usage: traffic.py %s ARGS..." % "|".join(PROGRAMS))
    try:
        PROGRAMS[args[0]](*args[1:])
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
