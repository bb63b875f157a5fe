"""A deliberately bad relay for testing `probe` (CPython, run inside a LAN host):
receives FROM, re-sends to TO with faults injected by sequence number of the
tools/stream.py header: drops seq % 10 == 9, sends seq % 7 == 6 twice, and
swaps each pair (2k+1 goes out before 2k).

    python -m host_tests.fake_relay FROM_GROUP:PORT TO_GROUP:PORT IFACE_IP
Prints "ready" once joined; runs until killed.
"""

import socket
import sys

from tools import stream


def main(src, dst, iface):
    (sg, sp), (dg, dp) = stream.parse_endpoint(src), stream.parse_endpoint(dst)
    rx = stream.open_rx(sg, sp, iface)
    tx = stream.open_tx(iface, ttl=1)
    print("ready", flush=True)
    held = None  # (seq, [datagrams]) of an even seq waiting for its partner
    while True:
        data, _ = rx.recvfrom(65535)
        p = stream.parse_payload(data)
        if p is None:
            continue
        s = p[1]
        copies = [] if s % 10 == 9 else ([data, data] if s % 7 == 6 else [data])
        if s % 2 == 0:
            if held is not None:
                _send(tx, held[1], (dg, dp))
            held = (s, copies)
            continue
        _send(tx, copies, (dg, dp))
        if held is not None:
            _send(tx, held[1], (dg, dp))
            held = None


def _send(tx, datagrams, ep):
    for d in datagrams:
        tx.sendto(d, ep)


if __name__ == "__main__":
    try:
        main(*sys.argv[1:4])
    except (KeyboardInterrupt, socket.error):
        pass
