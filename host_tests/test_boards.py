"""The board tests: one set of assertions, run on the twin and on the emulated board (the
official firmware image on rp2040js with the WIZnet chip model; see host_tests/boards.py).
Traffic is paced for the slower of the two (the emulator runs below the chip's speed)."""

import json
import random

import pytest

from host_tests.boards import BOARD_IP, kinds, no_traceback
from host_tests.twinlan import LISTENER_IP, SENDER_IP, Recorder, send_payloads

G_IN, G_OUT, PORT = "224.0.10.1", "224.0.10.2", 50000


@pytest.fixture(params=kinds())
def kind(request):
    return request.param


@pytest.fixture
def pcs(lan):
    return lan.add_host("pc1", SENDER_IP), lan.add_host("pc2", LISTENER_IP)


def up(kind, lan, cfg=None, files=None, **relay):
    """A board on the LAN, running: returns it once its status line is out."""
    board = kind.start(lan, cfg if cfg is not None else kind.config(**relay), files=files)
    try:
        lan.query()  # a querier: the switch snoops strictly from now on
        board.wait_for("| IP ", 40 * kind.slow)
    except BaseException:
        board.stop()
        raise
    return board


def payloads(n, lo, hi, seed):
    rnd = random.Random(seed)
    return [i.to_bytes(4, "big") + rnd.randbytes(rnd.randint(lo, hi) - 4) for i in range(n)]


def test_boots_to_the_status_line(kind, lan, pcs):
    board = up(kind, lan)
    try:
        board.wait_for("stats up", 10 * kind.slow)
    finally:
        board.stop()
    out = no_traceback(board)
    status = next(x for x in board.lines if "| IP " in x)
    assert "WIZNET5K SPI0 20.0 MHz INTN GP21" in status, status
    assert "IP %s/15 gw 0.0.0.0 (static) | link up" % BOARD_IP in status, status
    assert "relay: 1 route(s): route0 224.0.10.1:50000 -> 224.0.10.2:50000" in out


def test_forwards_byte_identical_from_the_board_address(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    board = up(kind, lan)
    try:
        rec = Recorder(pc2, G_OUT, PORT)
        data = payloads(150, 10, 1472, seed=1)
        data[-1] = data[-1] + bytes(1472 - len(data[-1]))
        assert send_payloads(pc1, G_IN, PORT, data, tmp_path, interval=kind.pace) == 150
        got = rec.wait()
        board.wait_for("route0 rx 150 tx 150", 10 * kind.slow)
    finally:
        board.stop()
    assert [d for _, d in got] == data
    assert {src for src, _ in got} == {BOARD_IP}
    no_traceback(board)


def test_two_routes_no_crosstalk(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    cfg = kind.config()
    cfg["routes"] = [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000"},
                     {"from": "224.0.10.3:50001", "to": "224.0.10.4:50001"}]
    board = up(kind, lan, cfg)
    try:
        rec_a = Recorder(pc2, "224.0.10.2", 50000)
        rec_b = Recorder(pc2, "224.0.10.4", 50001)
        a = [b"A" + i.to_bytes(2, "big") for i in range(40)]
        b = [b"B" + i.to_bytes(2, "big") for i in range(50)]
        send_payloads(pc1, "224.0.10.1", 50000, a, tmp_path, interval=kind.pace)
        send_payloads(pc1, "224.0.10.3", 50001, b, tmp_path, interval=kind.pace)
        got_a = [d for _, d in rec_a.wait()]
        got_b = [d for _, d in rec_b.wait()]
    finally:
        board.stop()
    assert got_a == a and got_b == b


def test_oversize_dropped_never_truncated(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    board = up(kind, lan)
    try:
        rec = Recorder(pc2, G_OUT, PORT)
        rnd = random.Random(7)
        small = [b"s" + rnd.randbytes(rnd.randint(10, 1400)) for _ in range(20)]
        big = [b"B" + rnd.randbytes(rnd.randint(1473, 4000)) for _ in range(20)]
        mixed = [p for pair in zip(small, big, strict=True) for p in pair]
        send_payloads(pc1, G_IN, PORT, mixed, tmp_path, interval=4 * kind.pace)
        got = [d for _, d in rec.wait()]
        board.wait_for("big 20", 10 * kind.slow)
    finally:
        board.stop()
    assert got == small


def ask(board, kind, code, answer, timeout=20):
    """Type `code` at the board's REPL until a line containing `answer` comes back (the REPL
    may still be busy starting); returns that line."""
    import time

    end = time.monotonic() + timeout * kind.slow
    while True:
        n = len(board.lines)
        board.send(code + "\r\n")
        try:
            return board.wait_for(answer, min(3 * kind.slow, max(0.1, end - time.monotonic())),
                                  start=n)
        except TimeoutError:
            if time.monotonic() >= end:
                raise


def test_bad_config_is_listed_and_the_repl_stays(kind, lan, pcs):
    cfg = kind.config()
    bad = json.loads(json.dumps(cfg))
    bad["nic"]["sck"] = 5
    bad["routes"][0]["to"] = "10.1.2.3:50000"
    board = kind.start(lan, cfg, files={"config.json": json.dumps(bad).encode()})
    try:
        ask(board, kind, "print('REPL', board.problem)", "REPL no valid config")
        # what a user types to see the errors again (a console opened after the boot missed them)
        line = ask(board, kind, "import config; print('ERR' + 'ORS', config.load('config.json')[1])",
                   "ERRORS")
    finally:
        board.stop()
    no_traceback(board)
    assert "routes[0].to" in line and "nic.sck" in line, line


def test_cable_pull_groups_relearned_and_forwarding_back(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    board = up(kind, lan)
    try:
        assert lan.wait_mdb(("board", G_IN), timeout=5 * kind.slow), lan.mdb()
        board.cable(False)
        board.wait_for("link DOWN", 10 * kind.slow)
        assert lan.wait_mdb(("board", G_IN), present=False, timeout=3), lan.mdb()
        n = len(board.lines)
        board.cable(True)
        board.wait_for("link up again", 10 * kind.slow, start=n)
        assert lan.wait_mdb(("board", G_IN), timeout=5 * kind.slow), lan.mdb()
        rec = Recorder(pc2, G_OUT, PORT)
        data = [b"after%d" % i for i in range(30)]
        send_payloads(pc1, G_IN, PORT, data, tmp_path, interval=kind.pace)
        got = [d for _, d in rec.wait()]
    finally:
        board.stop()
    assert got == data
    no_traceback(board)
