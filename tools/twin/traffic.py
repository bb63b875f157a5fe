"""Traffic for the twin's LAN: send exact payloads, record exact datagrams.

Run inside a host namespace (`host.popen(traffic.recorder_argv(...))`); both
sides speak JSON lines so a test can compare bytes and source addresses.
"""

import json
import socket
import sys
import time


def recorder_argv(group, port, iface, seconds):
    return [sys.executable, "-m", "tools.twin.traffic", "record", group, str(port), iface,
            str(seconds)]


def sender_argv(group, port, iface, payload_file, interval, loop=False):
    return [sys.executable, "-m", "tools.twin.traffic", "send", group, str(port), iface,
            payload_file, str(interval), "1" if loop else "0"]


def record(group, port, iface, seconds):
    """Print {"src", "data"} per datagram until `seconds` pass with nothing new."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((group, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton(iface))
    s.settimeout(seconds)
    print(json.dumps({"ready": True}), flush=True)
    try:
        while True:
            data, addr = s.recvfrom(65535)
            print(json.dumps({"src": addr[0], "data": data.hex()}), flush=True)
    except (socket.timeout, KeyboardInterrupt):
        pass


def send(group, port, iface, payload_file, interval, loop=False):
    with open(payload_file) as f:
        payloads = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if loop else 0)
    for p in payloads:
        s.sendto(p, (group, port))
        if interval:
            time.sleep(interval)
    print(len(payloads), flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        record(args[0], int(args[1]), args[2], float(args[3]))
    elif cmd == "send":
        send(args[0], int(args[1]), args[2], args[3], float(args[4]), args[5:] == ["1"])
    else:
        raise SystemExit("usage: traffic record|send ...")
