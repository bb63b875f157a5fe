"""End to end: the real boot.py/main.py under MicroPython on the private LAN."""

import random

import pytest

from host_tests.twinlan import (
    Recorder,
    load_default_config,
    running_board,
    send_payloads,
    wait_running,
)
from tools.twin.lan import BOARD_IP

PERSONALITIES = ["lwip", "unix"]




def _payloads(n, lo, hi, seed):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        size = rnd.randint(lo, hi)
        head = i.to_bytes(4, "big")
        out.append(head + rnd.randbytes(size - 4))
    return out


@pytest.mark.parametrize("personality", PERSONALITIES)
def test_default_route_forwards_byte_identical(net, tmp_path, personality):
    lan, board_host, pc1, pc2 = net
    with running_board(board_host, personality=personality) as board:
        rec = Recorder(pc2, "224.0.10.2", 50000)
        payloads = _payloads(300, 10, 1472, seed=1)
        payloads[0] = payloads[0][:10]
        payloads[-1] = payloads[-1] + bytes(1472 - len(payloads[-1]))
        # 5 ms apart: the socket queue (4 datagrams) rides out a 20 ms stall of a busy machine
        assert send_payloads(pc1, "224.0.10.1", 50000, payloads, tmp_path, interval=0.005) == 300
        got = rec.finish()
    assert [d for _, d in got] == payloads
    assert {src for src, _ in got} == {BOARD_IP}
    out = board.output()
    assert "Traceback" not in out, out
    assert "route0 rx 300 tx 300" in out, out


def test_two_routes_no_crosstalk(net, tmp_path):
    lan, board_host, pc1, pc2 = net
    cfg = load_default_config()
    cfg["routes"] = [
        {"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"},
        {"from": "224.0.10.3:50001", "to": "224.0.10.4:50001"},
    ]
    with running_board(board_host, cfg):
        rec_a = Recorder(pc2, "224.0.10.2", 50000)
        rec_b = Recorder(pc2, "224.0.10.4", 50001)
        a = [b"A" + i.to_bytes(2, "big") for i in range(50)]
        b = [b"B" + i.to_bytes(2, "big") for i in range(70)]
        send_payloads(pc1, "224.0.10.1", 50000, a, tmp_path)
        send_payloads(pc1, "224.0.10.3", 50001, b, tmp_path)
        got_a = [d for _, d in rec_a.finish()]
        got_b = [d for _, d in rec_b.finish()]
    assert got_a == a
    assert got_b == b


def test_own_address_not_forwarded(net, tmp_path):
    """A datagram whose source is the board's own address is a loop: dropped."""
    lan, board_host, pc1, pc2 = net
    with running_board(board_host, personality="unix") as board:
        rec = Recorder(pc2, "224.0.10.2", 50000)
        # Sent from inside the board's namespace with loopback on: the relay's
        # socket sees datagrams whose source is its own address.
        send_payloads(board_host, "224.0.10.1", 50000, [b"own%d" % i for i in range(20)],
                      tmp_path, loop=True)
        send_payloads(pc1, "224.0.10.1", 50000, [b"pc%d" % i for i in range(20)], tmp_path)
        got = [d for _, d in rec.finish()]
        board.wait_for("own 20", timeout=5)
    assert got == [b"pc%d" % i for i in range(20)]


@pytest.mark.parametrize("personality", PERSONALITIES)
def test_oversize_dropped_never_truncated(net, tmp_path, personality):
    lan, board_host, pc1, pc2 = net
    with running_board(board_host, personality=personality) as board:
        rec = Recorder(pc2, "224.0.10.2", 50000)
        rnd = random.Random(7)
        small = [b"s" + rnd.randbytes(rnd.randint(10, 1400)) for _ in range(30)]
        big = [b"B" + rnd.randbytes(rnd.randint(1473, 8000)) for _ in range(30)]
        mixed = [p for pair in zip(small, big, strict=True) for p in pair]
        send_payloads(pc1, "224.0.10.1", 50000, mixed, tmp_path, interval=0.005)
        got = [d for _, d in rec.finish()]
        board.wait_for("big 30", timeout=5)
    assert got == small  # every small one, in order; nothing cut
    assert all(len(d) <= 1472 for d in got)


def test_dhcp_address_and_forwarding(net, tmp_path):
    """network: {"dhcp": true}: the board takes the lease the LAN offers and
    forwards from that address."""
    lan, board_host, pc1, pc2 = net
    cfg = load_default_config()
    cfg["network"] = {"dhcp": True}
    from tools.twin.runner import Board, twin_config

    b = Board(board_host, twin_config(cfg, BOARD_IP, watchdog_ms=0, stats_interval_s=1),
              extra_env={"TWIN_DHCP": "198.18.0.11/15"})
    b.start()
    try:
        line = wait_running(b)
        assert "IP 198.18.0.11/15" in line and "(dhcp)" in line, line
        rec = Recorder(pc2, "224.0.10.2", 50000)
        send_payloads(pc1, "224.0.10.1", 50000, [b"d%d" % i for i in range(20)], tmp_path)
        got = rec.finish()
    finally:
        b.stop()
    assert [d for _, d in got] == [b"d%d" % i for i in range(20)]
    assert {s for s, _ in got} == {"198.18.0.11"}
